"""The Ray executor: each run a Ray task with its CPU/GPU needs.

The driver (this process) holds the claims in the store, submits runs whose dependencies are
done, writes each result to the store as it returns, and keeps the claims' heartbeats fresh.
A task whose worker dies is retried by Ray (``max_retries``); one that raises is recorded as
failed. On a multi-node cluster ``OUT`` must be a shared filesystem (checkpoints and
pretraining weights are read from it by the workers).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path

from .runner import _ready, execute_spec
from .store import Store, worker_id
from .suite import Grid


def _task(spec_dict: dict, out_root: str, threads: int, device: str) -> dict:
    try:
        summary, predictions = execute_spec(spec_dict, out_root, threads=threads, device=device)
        return {"ok": True, "summary": summary, "predictions": predictions}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def run_with_ray(store: Store, grid: Grid, out_root: Path, *, address: str | None = None, threads: int = 1,
                 device: str = "cpu", max_retries: int = 2, num_cpus: int | None = None,
                 on_event: Callable[[str, dict], None] | None = None) -> None:
    """Run the grid's pending runs as Ray tasks on the cluster at ``address`` (or a local
    instance started here, with ``num_cpus`` CPUs)."""
    try:
        import ray
    except ImportError:
        raise ValueError("the Ray executor needs Ray: pip install 'transfusion[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        kw = {"address": address} if address else {"num_cpus": num_cpus, "include_dashboard": False}
        ray.init(ignore_reinit_error=True, log_to_driver=False, **kw)
    try:
        remote = ray.remote(num_cpus=threads, num_gpus=1 if device == "cuda" else 0,
                            max_retries=max_retries)(_task)
        capacity = max(1, int(ray.cluster_resources().get("CPU", 1)) // max(1, threads))
        ids = {s.run_id for s in grid.all}
        me = worker_id()
        in_flight: dict = {}  # ObjectRef -> row
        while True:
            while len(in_flight) < capacity:
                row = store.claim(ids, who=me, ready=_ready(store, ids, grid.depends))
                if row is None:
                    break
                if on_event:
                    on_event("start", row)
                in_flight[remote.remote(row["spec"], str(out_root), threads, device)] = row
            if not in_flight:
                c = store.counts(ids)
                if c["pending"] == 0 and c["running"] == 0:
                    return
                time.sleep(1.0)  # waiting on runs held by other processes
                continue
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=5.0)
            for ref in in_flight:
                store.heartbeat(in_flight[ref]["run_id"], me)
            for ref in done:
                row = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # the worker died more than max_retries times
                    result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
                if result["ok"]:
                    s = result["summary"]
                    store.finish(row["run_id"], s, curve=s.get("curve"), predictions=result["predictions"])
                else:
                    store.fail(row["run_id"], result["error"], result["traceback"])
                if on_event:
                    on_event("end", store.run(row["run_id"]))
    finally:
        if started_here:
            ray.shutdown()
