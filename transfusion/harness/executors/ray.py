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
from pathlib import Path

from ..execute import EventHook, execute_spec, ready_runs
from ..grid import Grid
from ..store import Store, worker_id


def _task(spec_dict: dict, out_root: str, threads: int, device: str) -> dict:
    try:
        summary, predictions = execute_spec(spec_dict, out_root, threads=threads, device=device)
        return {"ok": True, "summary": summary, "predictions": predictions}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


class RayExecutor:
    """Runs on the Ray cluster at ``address``, or on a local instance started here with
    ``num_cpus`` CPUs."""

    def __init__(self, address: str | None = None, *, max_retries: int = 2, num_cpus: int | None = None) -> None:
        self.address, self.max_retries, self.num_cpus = address, max_retries, num_cpus

    def run(self, store_path: Path, grid: Grid, out: Path, *, threads: int, device: str,
            on_event: EventHook | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("the Ray executor needs Ray: pip install 'transfusion[ray]'") from None
        started_here = not ray.is_initialized()
        if started_here:
            kw = {"address": self.address} if self.address else {"num_cpus": self.num_cpus, "include_dashboard": False}
            ray.init(ignore_reinit_error=True, log_to_driver=False, **kw)
        try:
            remote = ray.remote(num_cpus=threads, num_gpus=1 if device == "cuda" else 0,
                                max_retries=self.max_retries)(_task)
            capacity = max(1, int(ray.cluster_resources().get("CPU", 1)) // max(1, threads))
            with Store(store_path) as store:
                self._drive(ray, remote, store, grid, out, capacity, threads, device, on_event)
        finally:
            if started_here:
                ray.shutdown()

    @staticmethod
    def _drive(ray, remote, store: Store, grid: Grid, out: Path, capacity: int, threads: int, device: str,
               on_event: EventHook | None) -> None:
        ids, me = set(grid.ids), worker_id()
        in_flight: dict = {}  # ObjectRef -> row
        try:
            RayExecutor._loop(ray, remote, store, ids, me, in_flight, grid, out, capacity, threads, device, on_event)
        except KeyboardInterrupt:  # cancel what is in flight and hand its claims back: the rerun resumes them
            for ref, row in in_flight.items():
                ray.cancel(ref, force=True)
                store.release(row["run_id"], me)
            raise

    @staticmethod
    def _loop(ray, remote, store: Store, ids: set[str], me: str, in_flight: dict, grid: Grid, out: Path,
              capacity: int, threads: int, device: str, on_event: EventHook | None) -> None:
        while True:
            while len(in_flight) < capacity:
                row = store.claim(ids, who=me, ready=ready_runs(store, ids, grid.depends))
                if row is None:
                    break
                if on_event:
                    on_event("start", row)
                in_flight[remote.remote(row["spec"], str(out), threads, device)] = row
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
                    store.finish(row["run_id"], result["summary"], predictions=result["predictions"])
                else:
                    store.fail(row["run_id"], result["error"], result["traceback"])
                if on_event:
                    on_event("end", store.run(row["run_id"]))
