"""Running a suite: register its runs in the store, execute what is not done (see
:mod:`.executors`), profile the costs and summarise (:mod:`.summary`)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from transfusion.core.files import write_csv, write_text
from transfusion.train.spec import RunSpec

from .costs import profile_costs
from .execute import EventHook
from .executors import make_executor
from .grid import Grid, expand
from .int8 import evaluate_int8
from .robustness import evaluate_robustness
from .store import STORE_NAME, Store
from .suite import Suite
from .weights import check_weights

SUMMARY_NAME = "summary.csv"
_SUMMARY_STAMP = ".summary-fingerprint"


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
    phases: dict[str, float]


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


def todo_specs(grid: Grid, out_dir: str | Path, *, rerun_failed: bool = False, force: bool = False) -> list[RunSpec]:
    """The grid's run specs that a bench into ``out_dir`` would run: all with ``force`` or no
    store yet, else those the store does not hold as done (or failed, unless ``rerun_failed``)."""
    path = Path(out_dir) / STORE_NAME
    if force or not path.is_file():
        return grid.all
    with Store(path) as store:
        finished = {r["run_id"] for status in ("done",) + (() if rerun_failed else ("failed",))
                    for r in store.runs(status=status, run_ids=grid.ids)}
    return [s for s in grid.all if s.run_id not in finished]


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
    """Run every run of ``suite`` not yet done, then profile costs, check int8 variants (``[cost]
    int8``), score the corrupted test splits (``[robustness]``) and summarise.

    ``on_event(kind, row)``: ``start`` / ``eval`` / ``end`` of a run (only ``end`` with several
    worker processes), ``cost`` for each new cost profile, ``int8`` for each int8 check and
    ``robustness`` for each corrupted split scored."""
    t0 = time.time()
    out = Path(out_dir)
    run_executor = make_executor(executor, workers=workers, address=ray_address)
    grid = grid or expand(suite)
    # every missing weight file at once, before any work (ImageNet files are downloaded here when allowed)
    check_weights(todo_specs(grid, out, rerun_failed=rerun_failed, force=force), fetch=True)
    store, grid = prepare_store(suite, out, rerun_failed=rerun_failed, force=force, grid=grid)
    asked_threads = threads
    threads = threads or default_threads(workers)
    phases: dict[str, float] = {}
    try:
        counts = store.counts(grid.ids)
        if on_event:
            on_event("plan", {"todo": counts["pending"] + counts["running"], "total": len(grid.ids),
                              "finished": counts["done"] + counts["failed"]})
        t = time.time()
        if counts["pending"] + counts["running"]:
            run_executor.run(store.path, grid, out, threads=threads, device=device, on_event=on_event)
        phases["runs"] = time.time() - t
        train_ids = [s.run_id for s in grid.runs]
        t = time.time()
        costs = []
        if suite.cost.enabled:
            # after the workers: the threads asked for (--threads or the suite's [run] table, steadier on a
            # shared machine), else every core the machine's load leaves free
            costs = profile_costs(store, suite.cost, train_ids, threads=asked_threads,
                                  on_row=(lambda r: on_event("cost", r)) if on_event else None)
        phases["costs"] = time.time() - t
        if suite.cost.enabled and suite.cost.int8:
            t = time.time()
            evaluate_int8(store, suite.cost, train_ids, margin=suite.report.margin, threads=default_threads(1),
                          on_row=(lambda r: on_event("int8", r)) if on_event else None)
            phases["int8"] = time.time() - t
        t = time.time()
        if suite.robustness.enabled:
            # inference over whole splits, after the workers have finished: every core
            evaluate_robustness(store, suite.robustness, train_ids, threads=default_threads(1),
                                on_row=(lambda r: on_event("robustness", r)) if on_event else None)
            phases["robustness"] = time.time() - t
        t = time.time()
        summary = _summary(store, suite, train_ids, out)
        phases["summary"] = time.time() - t
        counts = store.counts(grid.ids)
        phases.update(_run_phases(store, grid.ids))
    finally:
        store.close()
    return BenchResult(out / STORE_NAME, grid, counts, summary, costs, time.time() - t0, phases)


def _summary(store: Store, suite: Suite, train_ids: list[str], out: Path) -> list[dict]:
    """The summary rows, written to ``OUT/summary.csv``; read back from it when the store has not
    changed since it was written (a rerun of a finished suite recomputes nothing)."""
    from .summary import SUMMARY_COLUMNS, read_summary_csv

    path, stamp = out / SUMMARY_NAME, out / _SUMMARY_STAMP
    fingerprint = f"{store.fingerprint()} {suite.digest}"
    if path.is_file() and stamp.is_file() and stamp.read_text().strip() == fingerprint:
        return read_summary_csv(path)
    from .summary import (  # the statistics stack: only when computing
        load_predictions,
        summary_table,
    )

    runs = store.runs(run_ids=train_ids)
    rows = summary_table(runs, store.costs(), suite.cost, load_predictions(store, runs), variants=store.variants())
    write_csv(path, SUMMARY_COLUMNS, rows)
    write_text(stamp, fingerprint + "\n")
    return rows


def _run_phases(store: Store, ids: list[str]) -> dict[str, float]:
    """Seconds spent in pretraining and training runs (claim to finish of each run's last
    attempt), and of those the part outside the training loop (data generation or loading, model
    build and initialisation, test scoring) — read from the store, so a resumed suite counts
    every run once."""
    out = {"pretraining": 0.0, "training": 0.0, "outside_loop": 0.0}
    for r in store.runs(run_ids=ids):
        if r["status"] != "done" or r["started_at"] is None or r["finished_at"] is None:
            continue
        total = r["finished_at"] - r["started_at"]
        out["pretraining" if r["kind"] == "pretrain" else "training"] += total
        if r["summary"] is not None:
            out["outside_loop"] += max(0.0, total - r["summary"].wall_seconds)
    return out
