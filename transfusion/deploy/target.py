"""What ``transfusion export`` was pointed at: a checkpoint file, a run folder, or a run id in a
results store — resolved to the checkpoint and the run it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transfusion.harness.store import STORE_NAME, Store
from transfusion.transfer.checkpoint import best_path, load_checkpoint

DEFAULT_STORE = Path("runs") / "quick" / STORE_NAME


@dataclass(frozen=True)
class Target:
    """A resolved export target: the checkpoint, and the run/store it belongs to (if known)."""

    checkpoint: Path
    run_id: str | None
    store_path: Path | None
    run: dict | None = None


def _store_file(path: str | Path) -> Path:
    p = Path(path)
    return p / STORE_NAME if p.is_dir() else p


def _checkpoint_run_id(path: Path) -> str | None:

    try:
        return load_checkpoint(path).get("run_id")
    except ValueError:
        return None


def resolve_target(target: str | Path, store_path: str | Path | None = None) -> Target:
    """A checkpoint file, a run folder holding ``best.pt``, or a run id (or unique prefix of
    one, at least 4 characters) looked up in ``store_path`` (default ``runs/quick/results.sqlite``)."""
    p = Path(target)
    if p.is_file() or (p.is_dir() and best_path(p).is_file()):
        ck = p if p.is_file() else best_path(p)
        run_id = _checkpoint_run_id(ck)
        store = _store_file(store_path) if store_path else ck.parent.parent / STORE_NAME
        run = None
        if store.is_file() and run_id:
            with Store(store) as s:
                run = s.run(run_id)
        if run is None and store_path is None:
            store = None  # no store involved
        return Target(ck, run_id, store if (store_path or run) else None, run)
    store = _store_file(store_path or DEFAULT_STORE)
    if not store.is_file():
        raise FileNotFoundError(f"{target!s} is not a checkpoint file or run folder, and there is no results store at "
                                f"{store} to look it up as a run id (pass --store PATH)")
    text = str(target)
    with Store(store) as s:
        run = s.run(text)
        if run is None and len(text) >= 4:
            hits = [r for r in s.runs() if r["run_id"].startswith(text)]
            if len(hits) > 1:
                raise ValueError(f"run id prefix {text!r} is ambiguous in {store}: "
                                 f"{', '.join(r['run_id'] for r in hits[:5])}")
            run = hits[0] if hits else None
    if run is None:
        raise ValueError(f"no run {text!r} in {store} (and no file of that name)")
    if run["status"] != "done":
        raise ValueError(f"run {run['run_id']} is {run['status']}, not done; only finished runs can be exported")
    candidates = [best_path(run["out_dir"])] if run.get("out_dir") else []
    candidates.append(best_path(store.parent / run["run_id"]))
    ck = next((c for c in candidates if c.is_file()), None)
    if ck is None:
        raise FileNotFoundError(f"run {run['run_id']} has no checkpoint (looked at {', '.join(map(str, candidates))})")
    return Target(ck, run["run_id"], store, run)
