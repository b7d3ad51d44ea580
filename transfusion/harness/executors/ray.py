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
from typing import Any

from ..execute import EventHook, Outcome, execute_logged, ready_runs, record
from ..grid import Grid
from ..store import Store, worker_id


def _task(row: dict, out_root: str, threads: int, device: str) -> Outcome:
    """One run as a Ray task: trained and logged (``OUT/<run id>/log.txt``) on the worker, its
    outcome returned to the driver, which records it."""
    return execute_logged(row, out_root, threads=threads, device=device)


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
                _Drive(ray, remote, store, grid, out, capacity, threads, device, on_event).run()
        finally:
            if started_here:
                ray.shutdown()


class _Drive:
    """One drive of a grid through Ray: the claims this driver holds, the tasks in flight."""

    def __init__(self, ray: Any, remote: Any, store: Store, grid: Grid, out: Path, capacity: int, threads: int,
                 device: str, on_event: EventHook | None) -> None:
        self.ray, self.remote, self.store, self.grid, self.out = ray, remote, store, grid, out
        self.capacity, self.threads, self.device, self.on_event = capacity, threads, device, on_event
        self.ids, self.me = set(grid.ids), worker_id()
        self.in_flight: dict = {}  # ObjectRef -> claimed row

    def run(self) -> None:
        try:
            while self.step():
                pass
        except KeyboardInterrupt:  # cancel what is in flight and hand its claims back: the rerun resumes them
            for ref, row in self.in_flight.items():
                self.ray.cancel(ref, force=True)
                self.store.release(row["run_id"], self.me)
            raise

    def submit(self) -> None:
        """Claim and submit ready runs up to the cluster's capacity."""
        while len(self.in_flight) < self.capacity:
            row = self.store.claim(self.ids, who=self.me, ready=ready_runs(self.store, self.ids, self.grid.depends))
            if row is None:
                return
            if self.on_event:
                self.on_event("start", row)
            self.in_flight[self.remote.remote(row, str(self.out), self.threads, self.device)] = row

    def step(self) -> bool:
        """Submit, wait for one result, record what returned; False when nothing is left to run."""
        self.submit()
        if not self.in_flight:
            c = self.store.counts(self.ids)
            if c["pending"] == 0 and c["running"] == 0:
                return False
            time.sleep(1.0)  # waiting on runs held by other processes
            return True
        done, _ = self.ray.wait(list(self.in_flight), num_returns=1, timeout=5.0)
        for ref in self.in_flight:
            self.store.heartbeat(self.in_flight[ref]["run_id"], self.me)
        for ref in done:
            row = self.in_flight.pop(ref)
            try:
                outcome = self.ray.get(ref)
            except Exception as exc:  # the worker died more than max_retries times
                outcome = Outcome(False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            after = record(self.store, row["run_id"], outcome)
            if self.on_event:
                self.on_event("end", after)
        return True
