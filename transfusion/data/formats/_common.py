"""Helpers shared by the real-format adapters: options, fingerprints, decoding splits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

from .._cache import SplitWriter
from .._images import BAD_IMAGE_POLICIES, FITS, decode_into
from .._registry import SEED_OPTION
from .._spec import Option, ParsedSpec, absolute_path

UNCERTAIN_POLICIES = ("ignore", "ones", "zeros")


def file_options(fit: str, *, val: float | None = 0.15, test: float | None = 0.15) -> dict[str, Option]:
    """Options every image-file format takes (``val``/``test`` where splits are carved)."""
    opts = {
        "res": Option(int, 224, "image side in px after resizing", lo=4, hi=4096),
        "seed": SEED_OPTION,
        "bad_images": Option(str, "fail", "unreadable image: fail (error naming it) | skip (drop and report)", choices=BAD_IMAGE_POLICIES),
        "fit": Option(str, fit, "stretch to square | crop the central square | pad to square", choices=FITS),
    }
    if val is not None:
        opts["val"] = Option(float, val, "validation fraction carved from the training data", lo=0.0, hi=0.9)
    if test is not None:
        opts["test"] = Option(float, test, "test fraction (when the format has no official test split)", lo=0.0, hi=0.9)
    return opts


def absolute_target(parsed: ParsedSpec) -> ParsedSpec:
    """Make the spec's path absolute (the ``finalize`` hook of path-based kinds)."""
    return ParsedSpec(parsed.kind, absolute_path(parsed.target), parsed.options)


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` as a Path; FileNotFoundError saying what was expected there if it is no folder."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist; expected {what}")
    if not p.is_dir():
        raise FileNotFoundError(f"{p} is not a folder; expected {what}")
    return p


def stat_fingerprint(paths: list[Path]) -> str:
    """A digest of the size and mtime of each existing file (missing files count too)."""
    h = hashlib.sha256()
    for p in paths:
        try:
            st = p.stat()
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()


def read_csv(path: Path, required: list[str], expected: list[str]) -> pd.DataFrame:
    """Read a label CSV; a missing file or missing columns get an error listing what is expected."""
    import pandas as pd  # imported here: 0.3 s that spec parsing need not pay

    if not path.is_file():
        raise FileNotFoundError(f"label file {path} not found; expected a CSV with columns {', '.join(expected)}")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot parse {path}: {exc}") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path} is missing column(s) {', '.join(missing)}; expected columns: {', '.join(expected)} "
            f"(found: {', '.join(df.columns)})"
        )
    return df


def parse_int_labels(values: pd.Series, path: Path, column: str, lo: int, hi: int) -> np.ndarray:
    """Integer class labels in [lo, hi]; anything else is rejected naming file, column, row, value."""
    out = np.empty(len(values), np.int64)
    for row, raw in enumerate(values):
        text = str(raw).strip()
        try:
            v = float(text)
            if not v.is_integer():
                raise ValueError
        except ValueError:
            raise ValueError(f"{path}: column {column!r} line {row + 2} has {text!r}; expected an integer {lo}..{hi}") from None
        if not lo <= v <= hi:
            raise ValueError(f"{path}: label out of range in column {column!r} line {row + 2}: {text!r}; expected {lo}..{hi}")
        out[row] = int(v)
    return out


def parse_observations(df: pd.DataFrame, columns: list[str], path: Path) -> tuple[np.ndarray, np.ndarray]:
    """CheXpert-style label columns (1, 0, -1 or blank = not mentioned = 0) → values (N, L)
    float32 in {1, 0} and an uncertain flag (N, L) for the -1 entries. ``df.index`` must be
    the CSV row number (errors name the file line)."""
    import pandas as pd

    vals = np.zeros((len(df), len(columns)), np.float32)
    for j, col in enumerate(columns):
        text = df[col].astype(str).str.strip()
        blank = text.isin(["", "nan", "NaN"])
        num = pd.to_numeric(text.where(~blank, "0"), errors="coerce")
        bad = num.isna() | ~num.isin([1.0, 0.0, -1.0])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            line = int(df.index[row]) + 2  # 1-based file line, after the header
            raise ValueError(
                f"{path}: label out of range in column {col!r} line {line}: {df[col].iloc[row]!r}; "
                "expected 1, 0, -1 or blank"
            )
        vals[:, j] = num.to_numpy(np.float32)
    return np.where(vals < 0, 0.0, vals).astype(np.float32), vals < 0


def apply_uncertain(values: np.ndarray, uncertain: np.ndarray, policy: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Map uncertain entries by policy: ``ones`` → 1, ``zeros`` → 0, ``ignore`` → masked out."""
    values = values.copy()
    if policy == "ones":
        values[uncertain] = 1.0
        return values, None
    values[uncertain] = 0.0
    if policy == "ignore" and uncertain.any():
        return values, ~uncertain
    return values, None


@dataclass
class FileSplit:
    """One split before decoding: image paths (N,), targets, optional mask and ids."""

    paths: list[Path]
    targets: np.ndarray
    mask: np.ndarray | None = None
    ids: np.ndarray | None = None


def write_file_splits(
    writer: SplitWriter,
    splits: dict[str, FileSplit],
    parsed: ParsedSpec,
    channels: int,
    *,
    trim: bool = False,
) -> tuple[list[str], int]:
    """Decode every split into the cache; returns (problems, number of skipped images)."""
    res = parsed["res"]
    problems: list[str] = []
    skipped = 0
    for name, sp in splits.items():
        out = writer.images(name, len(sp.paths), channels, res, res)
        ok, probs = decode_into(sp.paths, out, fit=parsed["fit"], trim=trim, bad_images=parsed["bad_images"])
        problems += probs
        skipped += int((~ok).sum())
        ids = sp.ids if sp.ids is not None else np.array([str(p) for p in sp.paths])
        writer.labels(name, sp.targets, sp.mask, ids)
        writer.keep(name, ok)
    if skipped:
        problems.insert(0, f"skipped {skipped} unreadable image(s) (bad_images=skip)")
    return problems, skipped
