"""The summary table of a results store: one row per dataset × train size × model × regime,
the AUC over its seeds beside the cost profile. ``transfusion bench`` prints it and writes
``OUT/summary.csv``; the report writes the same rows to ``tables/summary.csv``.

Per row: ``auc_mean`` over seeds; ``auc_std`` (ddof 1) and ``auc_min`` / ``auc_max`` — the
seed-to-seed spread, empty for one seed; a 95% interval ``auc_ci_low`` / ``auc_ci_high`` whose
``ci_method`` says what it covers (one seed: the run's bootstrap over test images; several
seeds: a two-level bootstrap over test images and seeds); cost columns from the profile of the
row's model at its resolution (see :data:`transfusion.cost.COST_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from transfusion import stats
from transfusion.stats.seeds import aligned_replicates, same_targets, two_level_interval
from transfusion.train.summary import RunSummary

from .costs import cost_key_of, match_costs
from .store import Store
from .suite import CostOptions

BASELINE = "random"

SUMMARY_COLUMNS = (
    "dataset", "task", "train_size", "model", "init", "n_seeds", "n_failed", "auc_mean", "auc_std", "auc_min",
    "auc_max", "auc_ci_low", "auc_ci_high", "ci_method", "auprc_mean", "acc_mean", "res_px", "params", "macs",
    "torch_ms", "onnx_ms", "gpu_ms", "gpu_amp_ms", "train_seconds", "steps_to_target", "cost_key",
    "gpu_cost_key", "run_ids",
)


def ordered(values: Iterable[str], first: str | None = None) -> list[str]:
    """Distinct ``values`` in order of appearance, ``first`` moved to the front if present."""
    seen = list(dict.fromkeys(values))
    if first in seen:
        seen.remove(first)
        seen.insert(0, first)
    return seen


def cell_key(run: dict) -> tuple[str, str, str, str]:
    """(dataset, train size, model, init): the cell a training run belongs to."""
    return run["dataset"], str(run["train_size"]), run["model"], run["init"]


def load_predictions(store: Store, runs: Iterable[dict]) -> dict[str, dict | None]:
    """Stored test predictions of the finished training runs, by run id."""
    return {r["run_id"]: store.predictions(r["run_id"]) for r in runs
            if r["status"] == "done" and r["kind"] == "train"}


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summary_table(runs: list[dict], costs: list[dict], cost_options: CostOptions | None,
                  predictions: dict[str, dict | None], *, n_boot: int = 1000, level: float = 0.95,
                  seed: int = 0) -> list[dict]:
    """Rows with the columns of :data:`SUMMARY_COLUMNS` for the training runs among ``runs`` (store
    rows), in grid order: datasets and models as they first appear, ``random`` first."""
    train = [r for r in runs if r["kind"] == "train"]
    cells: dict[tuple, list[dict]] = {}
    for r in train:
        cells.setdefault(cell_key(r), []).append(r)
    datasets = ordered((r["dataset"], str(r["train_size"])) for r in train)
    models = ordered(r["model"] for r in train)
    inits = ordered((r["init"] for r in train), BASELINE)
    out = []
    for data, size in datasets:
        for model in models:
            for init in inits:
                group = cells.get((data, size, model, init))
                if group:
                    out.append(_row(group, costs, cost_options, predictions, n_boot=n_boot, level=level, seed=seed))
    return out


def _row(group: list[dict], costs: list[dict], cost_options: CostOptions | None, predictions: dict, *,
         n_boot: int, level: float, seed: int) -> dict:
    data, size, model, init = cell_key(group[0])
    done = [r for r in group if r["status"] == "done" and r["summary"] is not None]
    aucs = [r["test_auc"] for r in done if r["test_auc"] is not None]
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(dataset=data, train_size=size, model=model, init=init, n_seeds=len(aucs),
               n_failed=sum(r["status"] == "failed" for r in group),
               auc_mean=float(np.mean(aucs)) if aucs else None,
               auc_std=float(np.std(aucs, ddof=1)) if len(aucs) > 1 else None,
               auc_min=min(aucs) if len(aucs) > 1 else None, auc_max=max(aucs) if len(aucs) > 1 else None,
               auprc_mean=_mean(r["test_auprc"] for r in done), acc_mean=_mean(r["test_acc"] for r in done),
               train_seconds=_mean(r["train_seconds"] for r in done),
               steps_to_target=_mean(r["steps_to_target"] for r in done),
               run_ids=" ".join(r["run_id"] for r in done), ci_method="")
    if not done:
        return row
    s0: RunSummary = done[0]["summary"]
    row.update(task=s0.task.kind, res_px=s0.res)
    want = cost_key_of(s0, cost_options) if cost_options is not None else None
    cpu, gpu = match_costs(costs, (model, s0.res, s0.in_chans, s0.num_classes), want)
    base = cpu or gpu
    if base is not None:
        row.update(params=base.get("params"), macs=base.get("macs"))
    if cpu is not None:
        row.update(torch_ms=cpu.get("torch_ms"), onnx_ms=cpu.get("onnx_ms"), cost_key=cpu["cost_key"])
    if gpu is not None:
        row.update(gpu_ms=gpu.get("gpu_ms"), gpu_amp_ms=gpu.get("gpu_amp_ms"), gpu_cost_key=gpu["cost_key"])
    row.update(_interval([r for r in done if r["test_auc"] is not None], predictions, n_boot=n_boot, level=level,
                         seed=seed))
    return row


def _interval(with_auc: list[dict], predictions: dict, *, n_boot: int, level: float, seed: int) -> dict:
    """``auc_ci_low``, ``auc_ci_high`` and ``ci_method`` of a cell's runs."""
    if not with_auc:
        return {}
    task = with_auc[0]["summary"].task
    if len(with_auc) == 1:
        r = with_auc[0]
        ci = r["summary"].test_auc_ci
        if ci:
            return {"auc_ci_low": ci[0], "auc_ci_high": ci[1], "ci_method": "run's bootstrap over test images"}
        p = predictions.get(r["run_id"])
        if p is None:
            return {"ci_method": "unavailable: predictions missing"}
        lo, hi = stats.bootstrap_ci(task, p["scores"], p["targets"], p["mask"], n_boot=n_boot, level=level, seed=seed)
        return {"auc_ci_low": lo, "auc_ci_high": hi, "ci_method": f"bootstrap over test images ({n_boot})"}
    ps = [predictions.get(r["run_id"]) for r in with_auc]
    if any(p is None for p in ps):
        return {"ci_method": "unavailable: predictions missing"}
    if not same_targets(ps):
        return {"ci_method": "unavailable: seeds scored on different test images"}
    try:
        lo, hi = two_level_interval(aligned_replicates(task, ps, n_boot=n_boot, seed=seed), level=level, seed=seed)
    except (stats.UndefinedMetricError, ValueError) as exc:
        return {"ci_method": f"unavailable: {exc}"}
    return {"auc_ci_low": lo, "auc_ci_high": hi, "ci_method": f"two-level bootstrap: test images × seeds ({n_boot})"}
