"""Running a suite: register its runs in the store, execute what is not done (see
:mod:`.executors`), profile the costs and summarise (:mod:`.summary`)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .costs import profile_costs
from .execute import EventHook
from .executors import make_executor
from .grid import Grid, expand
from .store import STORE_NAME, Store
from .suite import Suite
from .summary import load_predictions, summary_table


def default_threads(workers: int) -> int:
    """Threads per worker so that workers × threads ≤ cores (oversubscription is ruinous)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@dataclass
class BenchResult:
    """What :func:`run_suite` did: the store, the grid, status counts, the summary table and cost
    rows, and the wall time in seconds."""

    store_path: Path
    grid: Grid
    counts: dict[str, int]
    summary: list[dict]
    costs: list[dict]
    seconds: float


def prepare_store(suite: Suite, out_dir: str | Path, *, rerun_failed: bool = False, force: bool = False,
                  grid: Grid | None = None) -> tuple[Store, Grid]:
    """Expand the grid (unless given), then register the suite and its runs in
    ``OUT/results.sqlite``; ``force`` / ``rerun_failed`` set finished / failed runs pending again."""
    grid = grid or expand(suite)
    out = Path(out_dir)
    store = Store(out / STORE_NAME)
    store.add_suite(suite.name, suite.text, suite.digest)
    for specs in (grid.pretrain, grid.runs):
        store.add_runs(({"run_id": s.run_id, "spec": s.to_dict(), "out_dir": str(out / s.run_id)} for s in specs),
                       suite=suite.name)
    if force:
        store.reset(grid.ids, statuses=("done", "failed", "pending"))
    elif rerun_failed:
        store.reset(grid.ids, statuses=("failed",))
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
    grid: Grid | None = None,
    on_event: EventHook | None = None,
) -> BenchResult:
    """Run every run of ``suite`` not yet done, then profile costs and summarise.

    ``on_event(kind, row)``: ``start`` / ``eval`` / ``end`` of a run (or ``counts`` with several
    worker processes) and ``cost`` for each new cost profile."""
    t0 = time.time()
    out = Path(out_dir)
    run_executor = make_executor(executor, workers=workers, address=ray_address)
    store, grid = prepare_store(suite, out, rerun_failed=rerun_failed, force=force, grid=grid)
    threads = threads or default_threads(workers)
    try:
        counts = store.counts(grid.ids)
        if on_event:
            on_event("plan", {"todo": counts["pending"] + counts["running"], "total": len(grid.ids),
                              "finished": counts["done"] + counts["failed"]})
        if counts["pending"] + counts["running"]:
            run_executor.run(store.path, grid, out, threads=threads, device=device, on_event=on_event)
        train_ids = [s.run_id for s in grid.runs]
        costs = []
        if suite.cost.enabled:
            costs = profile_costs(store, suite.cost, train_ids, threads=threads,
                                  on_row=(lambda r: on_event("cost", r)) if on_event else None)
        runs = store.runs(run_ids=train_ids)
        summary = summary_table(runs, store.costs(), suite.cost, load_predictions(store, runs))
        counts = store.counts(grid.ids)
    finally:
        store.close()
    return BenchResult(out / STORE_NAME, grid, counts, summary, costs, time.time() - t0)
