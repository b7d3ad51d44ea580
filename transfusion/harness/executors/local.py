"""The local executor: the grid's runs in this process, or in N spawned worker processes that
claim runs from the store (workers × threads should not exceed the cores)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import time
from pathlib import Path

from ..execute import EventHook, worker_loop
from ..grid import Grid
from ..store import Store


def _die_with_parent() -> None:
    """Linux: have the kernel send this process SIGTERM when its parent dies (a killed bench
    leaves no orphan workers training; their claims are recovered by the next run). Elsewhere
    a no-op."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _worker_main(args: tuple) -> None:  # entry point of a spawned worker process
    store_path, grid_ids, depends, out_root, threads, device = args
    _die_with_parent()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    # Ctrl-C reaches the whole process group: the worker released its run; the parent reports it
    with contextlib.suppress(KeyboardInterrupt):
        worker_loop(store_path, grid_ids, depends, out_root, threads=threads, device=device)


class LocalExecutor:
    """``workers`` = 1: run in this process; more: spawned worker processes, whose finished runs
    are read from the store each second (``end`` events, no ``start`` / ``eval``)."""

    def __init__(self, workers: int = 1) -> None:
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers)

    def run(self, store_path: Path, grid: Grid, out: Path, *, threads: int, device: str,
            on_event: EventHook | None = None) -> None:
        if self.workers == 1:
            worker_loop(store_path, grid.ids, grid.depends, out, threads=threads, device=device, on_event=on_event)
            return
        ctx = mp.get_context("spawn")
        args = (store_path, grid.ids, grid.depends, out, threads, device)
        procs = [ctx.Process(target=_worker_main, args=(args,), daemon=True) for _ in range(self.workers)]
        for p in procs:
            p.start()
        try:
            self._watch(store_path, grid, procs, on_event)
        except KeyboardInterrupt:  # the workers got it too: let them give their runs back first
            for p in procs:
                p.join(timeout=30)
            raise
        for p in procs:
            p.join()

    @staticmethod
    def _watch(store_path: Path, grid: Grid, procs: list, on_event: EventHook | None) -> None:
        with Store(store_path) as store:
            finished = {r["run_id"] for r in store.runs(run_ids=grid.ids) if r["status"] in ("done", "failed")}
            while True:
                alive = any(p.is_alive() for p in procs)
                for row in store.runs(run_ids=grid.ids):  # report what the workers finished since
                    if row["status"] in ("done", "failed") and row["run_id"] not in finished:
                        finished.add(row["run_id"])
                        if on_event:
                            on_event("end", row)
                if not alive:
                    break
                time.sleep(1.0)
