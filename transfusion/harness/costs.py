"""Cost profiles of a suite's models, measured once per model × resolution × channels × head
size and cached in the store's ``costs`` table with the machine that measured them."""

from __future__ import annotations

from collections.abc import Callable

from transfusion.core.machine import machine_info
from transfusion.cost import CostKey
from transfusion.train.summary import RunSummary

from .store import Store
from .suite import CostOptions


def cost_model(model: str, scheme: str) -> str:
    """The name a network's cost rows go under: the model's, or ``"cbr_small · truncate:2"`` for
    the network a training scheme makes of it (a new head, fewer stages, a kNN head)."""
    return model if scheme in ("", "finetune") else f"{model} · {scheme}"


def cost_key_of(summary: RunSummary, options: CostOptions) -> CostKey:
    """The key of the cost profile that belongs to a run measured as ``options`` says."""
    return CostKey(cost_model(summary.model, summary.spec.scheme), summary.res, summary.in_chans,
                   summary.num_classes, options.device, options.batch, options.onnx, options.int8)


def match_costs(costs: list[dict], inputs: tuple[str, int, int, int],
                want: CostKey | None = None) -> tuple[dict | None, dict | None]:
    """(CPU cost row, GPU cost row) among the store's ``costs`` for ``inputs`` = (model, res,
    in_chans, num_classes): the row under ``want`` first, else the latest measured on that kind
    of device."""
    cands = [c for c in costs if (c.get("model"), c.get("res"), c.get("in_chans", 3), c.get("num_classes"))
             == tuple(inputs)]
    cpu = [c for c in cands if str(c.get("device", "cpu")).startswith("cpu")]
    gpu = [c for c in cands if c.get("gpu_ms") is not None]
    want_text = str(want) if want is not None else None
    pick = next((c for c in cpu if c["cost_key"] == want_text), cpu[-1] if cpu else None)
    gpick = next((c for c in gpu if c["cost_key"] == want_text), gpu[-1] if gpu else None)
    return pick, gpick


def profile_costs(store: Store, options: CostOptions, run_ids: list[str], *, threads: int | None = None,
                  on_row: Callable[[dict], None] | None = None) -> list[dict]:
    """Profile the models of the done runs among ``run_ids`` that the store has no profile for;
    returns every matching profile row (with ``cost_key``). ``on_row`` sees each new row."""
    rows, seen = [], set()
    for r in store.runs(status="done", run_ids=run_ids):
        s: RunSummary = r["summary"]
        key = cost_key_of(s, options)
        if key in seen:
            continue
        seen.add(key)
        cached = store.cost(str(key))
        if cached is None:
            from transfusion.cost.profile import (
                profile_model,  # torch, fvcore, onnx: only when measuring
            )

            network = None
            if s.spec.scheme != "finetune":  # the scheme's own network, as the run trained it
                from transfusion.transfer.checkpoint import (
                    best_path,
                    load_checkpoint,
                    model_from_checkpoint,
                )

                network = model_from_checkpoint(load_checkpoint(best_path(r["out_dir"])))
            cached = profile_model(key.model, res=s.res, batch=options.batch, num_classes=s.num_classes,
                                   in_chans=s.in_chans, device=options.device, onnx=options.onnx,
                                   repeats=options.repeats, threads=threads, int8=options.int8, model=network)
            store.put_cost(str(key), cached, machine_info())
            if on_row:
                on_row(cached)
        rows.append({**cached, "cost_key": str(key)})
    return rows
