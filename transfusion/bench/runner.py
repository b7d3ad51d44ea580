"""The grid runner: registers a suite's runs in the store, executes what is not done, profiles
costs and summarises.

A run is executed by :func:`run_one` wherever it runs (this process, a worker process, a Ray
task): it trains into ``OUT/<run_id>/`` and records the outcome in the store — ``done`` with
its summary, curve and test predictions, or ``failed`` with the error and traceback. A run
killed half-way is ``running`` with a dead claim; the next ``bench`` recovers it and the
trainer resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .spec import RunSpec
from .store import Store, worker_id
from .suite import Grid, Suite, expand

STORE_NAME = "results.sqlite"


@dataclass
class Progress:
    """Counts over the grid, and the last finished run."""

    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    last: dict | None = None
    started: float = 0.0

    @property
    def remaining(self) -> int:
        return self.total - self.done - self.failed

    def eta_seconds(self, finished_this_session: int) -> float | None:
        if finished_this_session <= 0:
            return None
        per = (time.time() - self.started) / finished_this_session
        return per * self.remaining


def _log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}\n")


def resolve_source(spec: RunSpec, out_root: Path):
    """``run:ID`` → the weights of that pretraining run's best checkpoint under ``out_root``."""
    from transfusion.transfer import load_source, source_arch

    if not spec.source or not spec.source.startswith("run:"):
        return None
    rid = spec.source[4:]
    path = out_root / rid / "best.pt"
    if not path.exists():
        raise FileNotFoundError(f"pretraining run {rid} has no checkpoint at {path}; re-run the suite")
    weights = load_source(f"file:{path}", source_arch(spec.model, spec.init))
    weights.origin = f"run:{rid}"
    return weights


def execute_spec(spec_dict: dict, out_root: str | Path, *, threads: int | None = None, device: str = "cpu",
                 on_eval: Callable[[dict], None] | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Train one run (spec as stored) into ``out_root/<run_id>/``; returns its summary and test
    predictions. Runs anywhere: this process, a worker process, a Ray task."""
    from .trainer import train_run

    out_root = Path(out_root)
    spec = RunSpec.from_dict(spec_dict)
    rid = spec.run_id
    spec = spec.with_(train=replace(spec.train, threads=threads, device=device))
    source = resolve_source(spec, out_root)
    summary = train_run(spec, out_root / rid, source=source, on_eval=on_eval)
    if summary["run_id"] != rid:
        raise RuntimeError(f"run id drifted: store {rid}, trainer {summary['run_id']}")
    pred = np.load(out_root / rid / "predictions.npz")
    return summary, {k: pred[k] for k in pred.files}


def run_one(store: Store, row: dict, out_root: Path, *, threads: int | None = None, device: str = "cpu",
            on_eval: Callable[[dict], None] | None = None) -> dict:
    """Execute one claimed run and record its outcome; returns the store row afterwards."""
    rid = row["run_id"]
    log = out_root / rid / "log.txt"
    _log(log, f"start {worker_id()} attempt {row.get('attempts')}: {json.dumps(row['spec'], sort_keys=True)}")
    me = row.get("claimed_by") or worker_id()

    def eval_hook(r: dict) -> None:
        _log(log, "eval " + json.dumps(r))
        store.heartbeat(rid, me)
        if on_eval:
            on_eval(r)

    try:
        summary, predictions = execute_spec(row["spec"], out_root, threads=threads, device=device, on_eval=eval_hook)
        store.finish(rid, summary, curve=summary.get("curve"), predictions=predictions)
        _log(log, f"done test_auc={summary['test_auc']}")
    except Exception as exc:  # a failing run is recorded and the grid goes on
        tb = traceback.format_exc()
        store.fail(rid, f"{type(exc).__name__}: {exc}", tb)
        _log(log, f"failed: {tb}")
    return store.run(rid)


def _ready(store: Store, grid_ids: set[str], depends: dict[str, str]) -> set[str]:
    """Grid runs whose pretraining dependency is done; runs whose dependency failed are marked
    failed here."""
    rows = {r["run_id"]: r for r in store.runs(run_ids=grid_ids | set(depends.values()))}
    ready = set()
    for rid in grid_ids:
        dep = depends.get(rid)
        if dep is None or rows.get(dep, {}).get("status") == "done":
            ready.add(rid)
        elif rows.get(dep, {}).get("status") == "failed" and rows[rid]["status"] == "pending":
            store.fail(rid, f"its source pretraining run {dep} failed: {rows[dep]['error']}")
    return ready


def worker_loop(store_path: str | Path, grid_ids: list[str], depends: dict[str, str], out_root: str | Path, *,
                threads: int | None = None, device: str = "cpu", on_event: Callable[[str, dict], None] | None = None,
                poll: float = 1.0) -> int:
    """Claim and execute runs until none is left; returns how many this worker executed."""
    store = Store(store_path)
    ids = set(grid_ids)
    executed = 0
    try:
        while True:
            row = store.claim(ids, ready=_ready(store, ids, depends))
            if row is None:
                c = store.counts(ids)
                if c["pending"] == 0 and c["running"] == 0:
                    return executed
                time.sleep(poll)  # others hold runs (or our dependencies) in progress
                continue
            if on_event:
                on_event("start", row)
            after = run_one(store, row, Path(out_root), threads=threads, device=device,
                            on_eval=(lambda r, row=row: on_event("eval", {**row, "eval": r})) if on_event else None)
            executed += 1
            if on_event:
                on_event("end", after)
    finally:
        store.close()


def _worker_main(args: tuple) -> None:  # entry point of a spawned worker process
    store_path, grid_ids, depends, out_root, threads, device = args
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    worker_loop(store_path, grid_ids, depends, out_root, threads=threads, device=device)


def default_threads(workers: int) -> int:
    """Threads per worker so that workers × threads ≤ cores (oversubscription is ruinous)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def machine_info() -> dict[str, Any]:
    """The machine that measured a cost or trained a run (for reports)."""
    import torch

    from .profile import _cpu_name

    info = {"cpu": _cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__}
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def cost_key(model: str, res: int, in_chans: int, num_classes: int, cost) -> str:
    return (f"{model}|{res}px|{in_chans}ch|{num_classes}cls|{cost.device}|b{cost.batch}|"
            f"{'onnx' if cost.onnx else 'no-onnx'}")


def profile_costs(store: Store, suite: Suite, run_ids: list[str], *, threads: int | None = None,
                  on_row: Callable[[dict], None] | None = None) -> list[dict]:
    """Profile each model × resolution × channels × classes of the done runs once (cached in
    the store's ``costs`` table)."""
    from .profile import profile_model

    rows = []
    seen = set()
    for r in store.runs(status="done", run_ids=run_ids):
        s = r["summary"]
        key = cost_key(s["model"], s["res"], s["in_chans"], len(s["task"]["labels"]), suite.cost)
        if key in seen:
            continue
        seen.add(key)
        cached = store.cost(key)
        if cached is None:
            cached = profile_model(s["model"], res=s["res"], batch=suite.cost.batch,
                                   num_classes=len(s["task"]["labels"]), in_chans=s["in_chans"],
                                   device=suite.cost.device, onnx=suite.cost.onnx, repeats=suite.cost.repeats,
                                   threads=threads)
            store.put_cost(key, cached, machine_info())
            if on_row:
                on_row(cached)
        rows.append({**cached, "cost_key": key})
    return rows


def summary_table(store: Store, run_ids: list[str], suite: Suite) -> list[dict]:
    """One row per dataset × model × init × train size: AUC mean ± std over seeds, joined to
    the cost profile (params, MACs, latencies)."""
    groups: dict[tuple, list[dict]] = {}
    for r in store.runs(run_ids=run_ids):
        s = r["spec"]
        groups.setdefault((s["data"], s["model"], s["init"], str(s["train_size"])), []).append(r)
    out = []
    for (data, model, init, size), rows in groups.items():
        done = [r for r in rows if r["status"] == "done"]
        aucs = [r["test_auc"] for r in done if r["test_auc"] is not None]
        s0 = done[0]["summary"] if done else None
        cost = store.cost(cost_key(model, s0["res"], s0["in_chans"], len(s0["task"]["labels"]), suite.cost)) \
            if s0 else None
        out.append({
            "dataset": data, "model": model, "init": init, "train_size": size,
            "n_seeds": len(aucs), "failed": sum(r["status"] == "failed" for r in rows),
            "auc_mean": float(np.mean(aucs)) if aucs else None,
            "auc_std": float(np.std(aucs, ddof=1)) if len(aucs) > 1 else (0.0 if aucs else None),
            "auprc_mean": _mean([r["test_auprc"] for r in done]),
            "acc_mean": _mean([r["test_acc"] for r in done]),
            "steps_to_target": _mean([r["steps_to_target"] for r in done]),
            "train_seconds": _mean([r["train_seconds"] for r in done]),
            "res": s0["res"] if s0 else None,
            "params": cost and cost.get("params"), "macs": cost and cost.get("macs"),
            "torch_ms": cost and cost.get("torch_ms"), "onnx_ms": cost and cost.get("onnx_ms"),
            "gpu_ms": cost and cost.get("gpu_ms"),
        })
    return out


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


@dataclass
class BenchResult:
    store_path: Path
    grid: Grid
    counts: dict[str, int]
    summary: list[dict]
    costs: list[dict]
    seconds: float


def prepare_store(suite: Suite, out_dir: str | Path, *, rerun_failed: bool = False, force: bool = False) -> tuple[Store, Grid]:
    """Validate and expand the grid, then register the suite and its runs in ``OUT/results.sqlite``."""
    grid = expand(suite)
    out = Path(out_dir)
    store = Store(out / STORE_NAME)
    store.add_suite(suite.name, suite.text, suite.digest)
    store.add_runs(({"run_id": s.run_id, "spec": s.to_dict(), "out_dir": str(out / s.run_id)} for s in grid.pretrain),
                   suite=suite.name)
    store.add_runs(({"run_id": s.run_id, "spec": s.to_dict(), "out_dir": str(out / s.run_id)} for s in grid.runs),
                   suite=suite.name)
    ids = [s.run_id for s in grid.all]
    if force:
        store.reset(ids, statuses=("done", "failed", "pending"))
    elif rerun_failed:
        store.reset(ids, statuses=("failed",))
    return store, grid


def run_suite(
    suite: Suite,
    out_dir: str | Path,
    *,
    executor: str = "local",
    workers: int = 1,
    threads: int | None = None,
    device: str = "cpu",
    rerun_failed: bool = False,
    force: bool = False,
    ray_address: str | None = None,
    on_event: Callable[[str, dict], None] | None = None,
) -> BenchResult:
    """Run every run of ``suite`` not yet done, then profile costs and summarise."""
    t0 = time.time()
    out = Path(out_dir)
    store, grid = prepare_store(suite, out, rerun_failed=rerun_failed, force=force)
    ids = [s.run_id for s in grid.all]
    threads = threads or default_threads(workers)
    if executor == "ray":
        from .ray_executor import run_with_ray

        run_with_ray(store, grid, out, address=ray_address, threads=threads, device=device, on_event=on_event)
    elif executor == "local" and workers <= 1:
        worker_loop(store.path, ids, grid.depends, out, threads=threads, device=device, on_event=on_event)
    elif executor == "local":
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker_main, args=((store.path, ids, grid.depends, out, threads, device),),
                             daemon=True) for _ in range(workers)]
        for p in procs:
            p.start()
        last = None
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            c = store.counts(ids)
            if on_event and c != last:
                on_event("counts", c)
                last = c
        for p in procs:
            p.join()
    else:
        raise ValueError(f"unknown executor {executor!r}; use local or ray")
    costs = []
    if suite.cost.enabled:
        costs = profile_costs(store, suite, [s.run_id for s in grid.runs], threads=threads,
                              on_row=(lambda r: on_event("cost", r)) if on_event else None)
    summary = summary_table(store, [s.run_id for s in grid.runs], suite)
    counts = store.counts(ids)
    store.close()
    return BenchResult(out / STORE_NAME, grid, counts, summary, costs, time.time() - t0)
