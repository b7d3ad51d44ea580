"""Small aggregations over study rows (dicts): means that skip undefined values, and per-stage
curves of the stage-wise studies (rows with ``stage`` and ``stage_index``)."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

__all__ = ["mean_by_stage", "mean_defined", "stage_ends", "std_defined"]


def mean_defined(vals: list) -> float | None:
    """Mean of the values that are neither ``None`` nor NaN; ``None`` if there is none."""
    v = [x for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def std_defined(vals: list) -> float | None:
    """Sample standard deviation (ddof 1) of the values that are not ``None``; 0 for one value,
    ``None`` for none."""
    v = [x for x in vals if x is not None]
    return float(np.std(v, ddof=1)) if len(v) > 1 else (0.0 if v else None)


def mean_by_stage(rows: list[dict], col: str = "similarity") -> tuple[list[str], np.ndarray]:
    """Stages in order and the mean of ``col`` over rows per stage (NaN where none is defined)."""
    stages: dict[str, int] = {}
    vals: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        stages.setdefault(r["stage"], r["stage_index"])
        if r[col] is not None:
            vals[r["stage"]].append(r[col])
    names = sorted(stages, key=stages.get)
    return names, np.array([np.mean(vals[s]) if vals[s] else np.nan for s in names])


def stage_ends(rows: list[dict], col: str = "similarity") -> tuple[float, float]:
    """Mean of ``col`` at each model's lowest and at its highest stage before the head (NaN if none)."""
    top: dict[str, int] = {}
    for r in rows:
        if r["stage"] != "head":
            top[r["model"]] = max(top.get(r["model"], 0), r["stage_index"])
    lo = [r[col] for r in rows if r["stage_index"] == 0 and r[col] is not None]
    hi = [r[col] for r in rows if r["stage"] != "head" and r["stage_index"] == top.get(r["model"])
          and r[col] is not None]
    return (float(np.mean(lo)) if lo else float("nan"), float(np.mean(hi)) if hi else float("nan"))
