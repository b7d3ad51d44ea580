"""Executing one run wherever it runs (this process, a worker process, a Ray task): train it into
``OUT/<run id>/`` and record the outcome in the store — ``done`` with its summary, curve and test
predictions, or ``failed`` with the error and traceback. A run killed half-way stays ``running``
with a dead claim; the next claim recovers it and the trainer resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from transfusion.train.spec import RunSpec
from transfusion.train.summary import RunSummary
from transfusion.transfer import source_arch
from transfusion.transfer.checkpoint import best_path

from .store import Store, worker_id

if TYPE_CHECKING:  # pragma: no cover
    from transfusion.transfer.sources import SourceWeights

EventHook = Callable[[str, dict], None]


def _log(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}\n")


def resolve_source(spec: RunSpec, out_root: Path) -> SourceWeights | None:
    """``run:ID`` → the weights of that pretraining run's best checkpoint under ``out_root``;
    ``None`` for any other source (the trainer resolves ``imagenet`` and ``file:PATH`` itself)."""
    if not spec.source or not spec.source.startswith("run:"):
        return None
    rid = spec.source[4:]
    path = best_path(out_root / rid)
    if not path.exists():
        raise FileNotFoundError(f"pretraining run {rid} has no checkpoint at {path}; re-run the suite")
    from transfusion.transfer.sources import load_source  # torch: only where a run executes

    weights = load_source(f"file:{path}", source_arch(spec.model, spec.init))
    weights.origin = f"run:{rid}"
    return weights


def execute_spec(spec_dict: dict, out_root: str | Path, *, threads: int | None = None, device: str = "cpu",
                 on_eval: Callable[[dict], None] | None = None) -> tuple[RunSummary, dict[str, np.ndarray]]:
    """Train one run (spec as stored) into ``out_root/<run_id>/``; returns its summary and test
    predictions."""
    from transfusion.train.loop import train_run  # the trainer loads torch: only where runs execute

    out_root = Path(out_root)
    spec = RunSpec.from_dict(spec_dict)
    rid = spec.run_id
    spec = spec.with_(train=replace(spec.train, threads=threads, device=device))
    summary = train_run(spec, out_root / rid, source=resolve_source(spec, out_root), on_eval=on_eval)
    if summary.run_id != rid:
        raise RuntimeError(f"run id drifted: store {rid}, trainer {summary.run_id}")
    pred = np.load(out_root / rid / "predictions.npz")
    return summary, {k: pred[k] for k in pred.files}


def _rounded(value: Any) -> Any:
    """Floats (also inside dicts and lists) to 5 significant digits, for log lines."""
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


@dataclass
class Outcome:
    """What executing one run gave, wherever it ran: ``summary`` and test ``predictions`` when
    ``ok``, else the ``error`` line and its ``traceback``."""

    ok: bool
    summary: RunSummary | None = None
    predictions: dict[str, np.ndarray] | None = None
    error: str = ""
    traceback: str = ""


def execute_logged(row: dict, out_root: str | Path, *, threads: int | None = None, device: str = "cpu",
                   on_eval: Callable[[dict], None] | None = None) -> Outcome:
    """Execute one claimed run (a store row) and write its ``OUT/<run id>/log.txt`` — start, each
    evaluation, done or failed — wherever it runs (this process, a worker process, a Ray task on
    another node: ``OUT`` is shared). Never raises for a failing run: the failure is the outcome."""
    rid = row["run_id"]
    log = Path(out_root) / rid / "log.txt"
    _log(log, f"start {row.get('claimed_by') or worker_id()} attempt {row.get('attempts')}: "
              f"{json.dumps(row['spec'], sort_keys=True)}")

    def eval_hook(r: dict) -> None:
        _log(log, "eval " + json.dumps(_rounded(r)))
        if on_eval:
            on_eval(r)

    try:
        summary, predictions = execute_spec(row["spec"], out_root, threads=threads, device=device, on_eval=eval_hook)
    except Exception as exc:  # a failing run is an outcome; the grid goes on
        tb = traceback.format_exc()
        _log(log, f"failed: {tb}")
        return Outcome(False, error=f"{type(exc).__name__}: {exc}", traceback=tb)
    _log(log, f"done test_auc={_rounded(summary.test_auc)}")
    return Outcome(True, summary, predictions)


def record(store: Store, run_id: str, outcome: Outcome) -> dict:
    """Record ``outcome`` in the store (``done`` with summary and predictions, or ``failed`` with
    the error) — the one place every executor records runs; returns the store row afterwards."""
    if outcome.ok:
        try:
            store.finish(run_id, outcome.summary, predictions=outcome.predictions)
        except Exception as exc:  # a run trained but not recorded (a full disk, say) is a failed run
            store.fail(run_id, f"{type(exc).__name__}: {exc} (while recording the finished run)",
                       traceback.format_exc())
    else:
        store.fail(run_id, outcome.error, outcome.traceback)
    return store.run(run_id)


def run_one(store: Store, row: dict, out_root: Path, *, threads: int | None = None, device: str = "cpu",
            on_eval: Callable[[dict], None] | None = None) -> dict:
    """Execute one claimed run in this process and record its outcome; returns the store row afterwards."""
    rid = row["run_id"]
    me = row.get("claimed_by") or worker_id()

    def heartbeat(r: dict) -> None:
        store.heartbeat(rid, me)
        if on_eval:
            on_eval(r)

    return record(store, rid, execute_logged(row, out_root, threads=threads, device=device, on_eval=heartbeat))


def ready_runs(store: Store, grid_ids: set[str], depends: dict[str, str]) -> set[str]:
    """Grid runs whose pretraining dependency is done; runs whose dependency failed are marked
    failed here (with the dependency's error)."""
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
                threads: int | None = None, device: str = "cpu", on_event: EventHook | None = None,
                poll: float = 1.0) -> int:
    """Claim and execute runs until none is left; returns how many this worker executed.
    ``on_event(kind, row)`` is told ``start``, ``eval`` and ``end`` of each run."""
    store = Store(store_path)
    ids = set(grid_ids)
    executed = 0
    row = None
    try:
        while True:
            row = store.claim(ids, ready=ready_runs(store, ids, depends))
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
            row = None  # recorded: nothing in hand to give back
            executed += 1
            if on_event:
                on_event("end", after)
    except KeyboardInterrupt:  # Ctrl-C: the run in hand goes back to pending (a finished one stays done)
        if row is not None:
            store.release(row["run_id"], row.get("claimed_by"))
            _log(Path(out_root) / row["run_id"] / "log.txt", "interrupted; released")
        raise
    finally:
        store.close()
