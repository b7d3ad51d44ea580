"""The results store: one SQLite file (WAL mode) per output folder.

Tables:
- ``runs`` — one row per run (training and pretraining): ``run_id`` (hash of the normalised
  spec), ``status`` (``pending`` / ``running`` / ``done`` / ``failed``), the spec as JSON and its
  main axes as columns, the claim (``claimed_by`` host:pid, ``heartbeat``), attempts, the error
  and traceback of a failure, the summary JSON and the headline metrics.
- ``curves`` — the validation curve of each run (step, epoch, train_loss, val_auc, val_acc,
  seconds).
- ``predictions`` — each run's test-split scores, targets and mask (``.npy`` bytes), for
  paired comparisons between runs on the same images.
- ``costs`` — cost profiles (params, MACs, latencies), one per model × resolution × input
  channels × classes × device, with the machine that measured them.
- ``suites`` — every suite run into this store: its name, TOML text and hash.
- ``exports`` — every ONNX export of a run (``transfusion export``): where it went, whether
  parity held, and its model card as JSON.

Claims happen inside ``BEGIN IMMEDIATE`` transactions, so two processes never run the same run;
a claim whose process is dead (same host, pid gone) or whose heartbeat is older than
``stale_after`` seconds is recovered.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from transfusion.core.machine import pid_running
from transfusion.train.summary import RunSummary

STATUSES = ("pending", "running", "done", "failed")
STORE_NAME = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    suite TEXT,
    kind TEXT NOT NULL DEFAULT 'train',
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    model TEXT, dataset TEXT, init TEXT, seed INTEGER, train_size TEXT, source TEXT,
    spec_json TEXT NOT NULL,
    claimed_by TEXT, heartbeat REAL, started_at REAL, finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT, traceback TEXT,
    summary_json TEXT,
    test_auc REAL, test_auprc REAL, test_acc REAL, steps_to_target INTEGER, train_seconds REAL,
    out_dir TEXT
);
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, epoch REAL, train_loss REAL, val_auc REAL,
    val_acc REAL, seconds REAL, PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id TEXT PRIMARY KEY, scores BLOB NOT NULL, targets BLOB NOT NULL, mask BLOB
);
CREATE TABLE IF NOT EXISTS val_predictions (
    run_id TEXT PRIMARY KEY, scores BLOB NOT NULL, targets BLOB NOT NULL, mask BLOB
);
CREATE TABLE IF NOT EXISTS robustness (
    run_id TEXT NOT NULL, corruption TEXT NOT NULL, severity INTEGER NOT NULL, modality TEXT NOT NULL,
    seed INTEGER NOT NULL, auc REAL, scores BLOB NOT NULL, measured_at REAL,
    PRIMARY KEY (run_id, corruption, severity, modality, seed)
);
CREATE TABLE IF NOT EXISTS variants (
    run_id TEXT NOT NULL, variant TEXT NOT NULL, record_json TEXT NOT NULL, measured_at REAL,
    PRIMARY KEY (run_id, variant)
);
CREATE TABLE IF NOT EXISTS costs (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, res INTEGER NOT NULL, in_chans INTEGER NOT NULL,
    num_classes INTEGER NOT NULL, device TEXT NOT NULL, profile_json TEXT NOT NULL,
    machine_json TEXT, measured_at REAL
);
CREATE TABLE IF NOT EXISTS suites (
    name TEXT NOT NULL, hash TEXT NOT NULL, toml TEXT NOT NULL, created_at REAL,
    PRIMARY KEY (name, hash)
);
CREATE TABLE IF NOT EXISTS exports (
    export_id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, checkpoint TEXT NOT NULL,
    out_dir TEXT NOT NULL, onnx_path TEXT NOT NULL, passed INTEGER NOT NULL, card_json TEXT NOT NULL,
    created_at REAL
);
"""


def _npy(a: np.ndarray | None) -> bytes | None:
    if a is None:
        return None
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def _from_npy(b: bytes | None) -> np.ndarray | None:
    return None if b is None else np.load(io.BytesIO(b), allow_pickle=False)


#: SQLite ``application_id`` of a results store ("TFS1"): a store is told from other databases by it
APPLICATION_ID = 0x54465331
_STORE_TABLES = {"runs", "curves", "predictions", "costs", "suites"}


class NotAStoreError(ValueError):
    """A file that is not a transfusion results store (another SQLite database, or not SQLite)."""


def _header(con: sqlite3.Connection, path: Path) -> tuple[int, set[str]]:
    """(application_id, table names) of an SQLite file, read without writing."""
    try:
        app = con.execute("PRAGMA application_id").fetchone()[0]
        return app, {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise NotAStoreError(f"{path} is not a transfusion results store (not an SQLite database: {exc}); "
                             "point at a store written by `transfusion bench` or a new path") from None


def _refuse_foreign(path: Path, app: int, tables: set[str], *, allow_empty: bool) -> None:
    """Raise :class:`NotAStoreError` unless (app, tables) are a store's — ours, one from before
    application ids (all the store's tables, id 0), or with ``allow_empty`` an empty database."""
    if app == APPLICATION_ID or (app == 0 and (tables >= _STORE_TABLES or (allow_empty and not tables))):
        return
    found = ", ".join(sorted(tables)[:6]) or "none"
    raise NotAStoreError(f"{path} is an SQLite database of another application (tables: {found}), not a "
                         "transfusion results store; it was not modified")


def store_file(path: str | Path) -> Path:
    """The SQLite file behind ``path``: the file itself, or ``DIR/results.sqlite`` for a run
    folder. Raises ``FileNotFoundError`` saying what was expected when there is none."""
    p = Path(path)
    if p.is_dir():
        p = p / STORE_NAME
    if not p.is_file():
        raise FileNotFoundError(f"no results store at {p}: give a store file or the folder holding {STORE_NAME} "
                                "(`transfusion bench` writes runs/<suite>/results.sqlite)")
    _check_existing_store(p)
    return p


def _check_existing_store(p: Path) -> None:
    """Raise :class:`NotAStoreError` unless the existing file ``p`` is a results store; read-only,
    so a file that is not one is left exactly as it was."""
    if p.stat().st_size == 0:
        raise NotAStoreError(f"{p} is an empty file, not a results store (`transfusion bench` writes one)")
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise NotAStoreError(f"{p} cannot be opened as a results store: {exc}") from None
    try:
        app, tables = _header(con, p)
    finally:
        con.close()
    _refuse_foreign(p, app, tables, allow_empty=False)


def worker_id() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Store:
    """A results store at ``path`` (created on first use). An existing file that is not a results
    store raises :class:`NotAStoreError` before anything is written to it."""

    def __init__(self, path: str | Path, *, stale_after: float = 1800.0) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise NotAStoreError(f"{self.path} is a folder, not a results store file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stale_after = stale_after
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        try:
            self._claim_file()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._db.close()
            raise

    def _claim_file(self) -> None:
        """Check that the file is empty, a store, or a store from before application ids (then
        stamp it); a foreign database or a non-SQLite file is refused untouched."""
        app, tables = _header(self._db, self.path)
        _refuse_foreign(self.path, app, tables, allow_empty=True)
        if app != APPLICATION_ID:
            self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locking) transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ suites and runs

    def add_suite(self, name: str, toml_text: str, digest: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO suites VALUES (?, ?, ?, ?)", (name, digest, toml_text, time.time()))

    def suites(self) -> list[dict]:
        return [dict(r) for r in self._db.execute("SELECT * FROM suites ORDER BY created_at")]

    def add_runs(self, rows: Iterable[dict], *, suite: str | None = None) -> int:
        """Register runs as ``pending`` unless already present. Each row: ``run_id``, ``spec``
        (dict) and optional ``kind``, ``out_dir``. Returns how many were new."""
        new = 0
        with self.transaction() as db:
            for r in rows:
                spec = r["spec"]
                cur = db.execute(
                    "INSERT OR IGNORE INTO runs (run_id, suite, kind, status, model, dataset, init, seed, "
                    "train_size, source, spec_json, out_dir) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r["run_id"], suite, spec.get("kind", "train"), spec["model"], spec["data"], spec["init"],
                     spec["seed"], str(spec["train_size"]), spec.get("source"), json.dumps(spec, sort_keys=True),
                     r.get("out_dir")),
                )
                new += cur.rowcount
        return new

    def reset(self, run_ids: Iterable[str], *, statuses: tuple[str, ...]) -> int:
        """Set runs whose status is in ``statuses`` back to ``pending`` (``--rerun-failed``,
        ``--force``)."""
        ids = list(run_ids)
        n = 0
        with self.transaction() as db:
            for rid in ids:
                n += db.execute(
                    f"UPDATE runs SET status='pending', claimed_by=NULL, error=NULL, traceback=NULL "
                    f"WHERE run_id=? AND status IN ({','.join('?' * len(statuses))})",
                    (rid, *statuses),
                ).rowcount
        return n

    def _stale(self, row: sqlite3.Row, now: float) -> bool:
        who = row["claimed_by"] or ""
        host, _, pid = who.rpartition(":")
        if host == socket.gethostname() and pid.isdigit() and not pid_running(int(pid)):
            return True
        return row["heartbeat"] is None or now - row["heartbeat"] > self.stale_after

    def claim(self, run_ids: Iterable[str] | None = None, *, who: str | None = None,
              ready: Iterable[str] | None = None) -> dict | None:
        """Atomically take one runnable run: ``pending``, or ``running`` with a stale claim.

        ``run_ids`` limits the choice (a suite's grid); ``ready`` further limits it to runs whose
        dependencies are done. Returns the row as a dict (with ``spec`` parsed) or ``None``.
        """
        who = who or worker_id()
        allowed = None if run_ids is None else set(run_ids)
        if ready is not None:
            allowed = set(ready) if allowed is None else allowed & set(ready)
        now = time.time()
        with self.transaction() as db:
            rows = db.execute(
                "SELECT run_id, status, claimed_by, heartbeat FROM runs WHERE status IN ('pending', 'running') "
                "ORDER BY CASE kind WHEN 'pretrain' THEN 0 ELSE 1 END, rowid"
            ).fetchall()
            for row in rows:
                if allowed is not None and row["run_id"] not in allowed:
                    continue
                if row["status"] == "running" and not self._stale(row, now):
                    continue
                db.execute(
                    "UPDATE runs SET status='running', claimed_by=?, heartbeat=?, started_at=?, "
                    "attempts=attempts+1, error=NULL, traceback=NULL WHERE run_id=?",
                    (who, now, now, row["run_id"]),
                )
                return self.run(row["run_id"])
        return None

    def heartbeat(self, run_id: str, who: str | None = None) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET heartbeat=? WHERE run_id=? AND claimed_by=?",
                       (time.time(), run_id, who or worker_id()))

    def finish(self, run_id: str, summary: RunSummary, *,
               predictions: dict[str, np.ndarray] | None = None) -> None:
        """Record a finished run: status ``done``, its summary and curve, and its predictions
        (``scores``/``targets``/``mask`` of the test split, ``val_*`` of the validation split)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status='done', finished_at=?, summary_json=?, test_auc=?, test_auprc=?, "
                "test_acc=?, steps_to_target=?, train_seconds=?, error=NULL, traceback=NULL WHERE run_id=?",
                (time.time(), json.dumps(summary.to_dict(), default=str), summary.test_auc, summary.test_auprc,
                 summary.test_acc, summary.steps_to_target, summary.train_seconds, run_id),
            )
            db.execute("DELETE FROM curves WHERE run_id=?", (run_id,))
            for row in summary.curve:
                db.execute("INSERT INTO curves VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (run_id, row["step"], row["epoch"], row["train_loss"], row["val_auc"],
                            row["val_acc"], row["seconds"]))
            for table, prefix in (("predictions", ""), ("val_predictions", "val_")):
                if predictions is None or predictions.get(prefix + "scores") is None:
                    continue
                mask = predictions.get(prefix + "mask")
                db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?)",
                           (run_id, _npy(predictions[prefix + "scores"]), _npy(predictions[prefix + "targets"]),
                            _npy(mask) if mask is not None and np.size(mask) else None))

    def release(self, run_id: str, who: str | None = None) -> None:
        """Give a claimed run back (``pending``) when its worker stops it — Ctrl-C — so that no run
        is left ``running`` by a live process; the next claim resumes it from its checkpoint."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET status='pending', claimed_by=NULL WHERE run_id=? AND status='running' "
                       "AND claimed_by=?", (run_id, who or worker_id()))

    def fail(self, run_id: str, error: str, tb: str = "") -> None:
        """Record a failed run with its error and traceback."""
        with self.transaction() as db:
            db.execute("UPDATE runs SET status='failed', finished_at=?, error=?, traceback=? WHERE run_id=?",
                       (time.time(), error, tb, run_id))

    # ------------------------------------------------------------------ reading

    def run(self, run_id: str) -> dict | None:
        row = self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return None if row is None else _row(row)

    def runs(self, *, status: str | None = None, kind: str | None = None, suite: str | None = None,
             run_ids: Iterable[str] | None = None) -> list[dict]:
        """Runs as dicts, in insertion order: the columns of ``runs``, with ``spec`` (a dict) and
        ``summary`` (a :class:`~transfusion.train.summary.RunSummary`, ``None`` until done)
        parsed; ``regime`` is the init regime, ``scheme`` the training scheme and ``init`` the
        arm's label (the regime, with `` · SCHEME`` unless the scheme is ``finetune``)."""
        q, args = "SELECT * FROM runs WHERE 1=1", []
        for col, val in (("status", status), ("kind", kind), ("suite", suite)):
            if val is not None:
                q += f" AND {col}=?"
                args.append(val)
        rows = [_row(r) for r in self._db.execute(q + " ORDER BY rowid", args)]
        if run_ids is not None:
            keep = set(run_ids)
            rows = [r for r in rows if r["run_id"] in keep]
        return rows

    def fingerprint(self) -> str:
        """A short hash of everything a summary or report is computed from (runs and their
        statuses and finish times, costs, exports, suites, robustness and variant rows): equal fingerprints,
        equal results."""
        import hashlib

        h = hashlib.sha256()
        for query in ("SELECT run_id, status, finished_at, attempts FROM runs ORDER BY run_id",
                      "SELECT key, measured_at FROM costs ORDER BY key",
                      "SELECT export_id, created_at FROM exports ORDER BY export_id",
                      "SELECT name, hash FROM suites ORDER BY name, hash",
                      "SELECT run_id, corruption, severity, modality, seed, measured_at FROM robustness "
                      "ORDER BY run_id, corruption, severity, modality, seed",
                      "SELECT run_id, variant, measured_at FROM variants ORDER BY run_id, variant"):
            for row in self._db.execute(query):
                h.update(repr(tuple(row)).encode())
        return h.hexdigest()[:16]

    def counts(self, run_ids: Iterable[str] | None = None) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for r in self.runs(run_ids=run_ids):
            out[r["status"]] += 1
        return out

    def curve(self, run_id: str) -> list[dict]:
        return [dict(r) for r in self._db.execute(
            "SELECT step, epoch, train_loss, val_auc, val_acc, seconds FROM curves WHERE run_id=? ORDER BY step",
            (run_id,))]

    def predictions(self, run_id: str, split: str = "test") -> dict[str, np.ndarray | None] | None:
        """A finished run's scores, targets and mask on ``split`` (``test``, or ``val``: stored
        since calibration was added; ``None`` for older runs)."""
        if split not in ("test", "val"):
            raise ValueError(f"split must be 'test' or 'val', got {split!r}")
        table = "predictions" if split == "test" else "val_predictions"
        row = self._db.execute(f"SELECT * FROM {table} WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        return {"scores": _from_npy(row["scores"]), "targets": _from_npy(row["targets"]),
                "mask": _from_npy(row["mask"])}

    # ------------------------------------------------------------------ robustness

    def put_robustness(self, run_id: str, corruption: str, severity: int, modality: str, seed: int,
                       auc: float | None, scores: np.ndarray) -> None:
        """Record a run's test scores under one corruption × severity (see :mod:`.robustness`)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO robustness VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (run_id, corruption, int(severity), modality, int(seed), auc, _npy(scores), time.time()))

    def robustness(self, run_ids: Iterable[str] | None = None) -> list[dict]:
        """Robustness rows (``run_id``, ``corruption``, ``severity``, ``modality``, ``seed``,
        ``auc``, ``scores``), of ``run_ids`` when given."""
        rows = [dict(r) | {"scores": _from_npy(r["scores"])}
                for r in self._db.execute("SELECT * FROM robustness ORDER BY rowid")]
        if run_ids is not None:
            keep = set(run_ids)
            rows = [r for r in rows if r["run_id"] in keep]
        return rows

    def robustness_keys(self) -> set[tuple[str, str, int, str, int]]:
        """(run_id, corruption, severity, modality, seed) of every stored robustness row."""
        return {tuple(r) for r in self._db.execute(
            "SELECT run_id, corruption, severity, modality, seed FROM robustness")}

    # ------------------------------------------------------------------ deployment variants

    def put_variant(self, run_id: str, variant: str, record: dict) -> None:
        """Record how a deployment variant (``int8-static``) of a run's model scored against the
        model itself (see :mod:`.int8`)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO variants VALUES (?, ?, ?, ?)",
                       (run_id, variant, json.dumps(record, default=float), time.time()))

    def variants(self, variant: str | None = None, run_ids: Iterable[str] | None = None) -> list[dict]:
        """Variant records (``run_id``, ``variant`` and the record's keys), of ``variant`` and
        ``run_ids`` when given, in insertion order."""
        keep = None if run_ids is None else set(run_ids)
        return [{"run_id": r["run_id"], "variant": r["variant"], **json.loads(r["record_json"])}
                for r in self._db.execute("SELECT * FROM variants ORDER BY rowid")
                if (variant is None or r["variant"] == variant) and (keep is None or r["run_id"] in keep)]

    # ------------------------------------------------------------------ costs

    def put_cost(self, key: str, row: dict, machine: dict | None = None) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO costs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (key, row["model"], row["res"], row.get("in_chans", 3), row["num_classes"],
                        row.get("device") or "cpu", json.dumps(row, default=str),
                        json.dumps(machine or {}), time.time()))

    def cost(self, key: str) -> dict | None:
        row = self._db.execute("SELECT profile_json FROM costs WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row["profile_json"])

    def costs(self) -> list[dict]:
        out = []
        for r in self._db.execute("SELECT * FROM costs ORDER BY rowid"):
            d = json.loads(r["profile_json"])
            d["machine"] = json.loads(r["machine_json"] or "{}")
            d["cost_key"] = r["key"]
            out.append(d)
        return out

    # ------------------------------------------------------------------ exports

    def put_export(self, run_id: str | None, *, checkpoint: str | Path, out_dir: str | Path,
                   onnx_path: str | Path, passed: bool, card: dict) -> int:
        """Record an ONNX export (its model card as JSON); returns the export's id."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO exports (run_id, checkpoint, out_dir, onnx_path, passed, card_json, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, str(checkpoint), str(out_dir), str(onnx_path), int(bool(passed)),
                 json.dumps(card, default=str), time.time()))
            return int(cur.lastrowid)

    def exports(self) -> list[dict]:
        """Recorded exports, oldest first, with ``card`` parsed and ``passed`` a bool."""
        out = []
        for r in self._db.execute("SELECT * FROM exports ORDER BY export_id"):
            d = dict(r)
            d["card"] = json.loads(d.pop("card_json"))
            d["passed"] = bool(d["passed"])
            out.append(d)
        return out


def _row(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["spec"] = json.loads(d.pop("spec_json"))
    # a training scheme other than finetune makes its own arm of a comparison: "transfer · linear"
    d["scheme"] = d["spec"].get("scheme") or "finetune"
    d["regime"] = d["init"]
    if d["scheme"] != "finetune":
        d["init"] = f"{d['init']} · {d['scheme']}"
    s = d.pop("summary_json")
    d["summary"] = RunSummary.from_dict(json.loads(s)) if s else None
    return d
