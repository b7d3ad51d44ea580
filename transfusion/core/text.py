"""Numbers as text, the same way in every table, card and report: a missing or non-finite
value is an em dash (—), never "None" or "nan"."""

from __future__ import annotations

import math
from typing import Any

MISSING = "—"


def num(value: Any, spec: str = ".3f", *, scale: float = 1.0) -> str:
    """``format(value / scale, spec)``, or :data:`MISSING` for ``None``, NaN or ±inf.

    >>> num(0.91234), num(None), num(23_510_000, ".2f", scale=1e6)
    ('0.912', '—', '23.51')
    """
    if value is None or value == "":
        return MISSING
    try:
        v = float(value) / scale
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return MISSING
    if spec.endswith("d"):
        return format(int(round(v)), spec)
    return format(v, spec)


def points(value: float | None, spec: str = "+.2f") -> str:
    """An AUC difference (AUC units, 0.005) as AUC points (``+0.50``)."""
    return num(value, spec, scale=0.01)


def interval(low: float | None, high: float | None, spec: str = ".3f", *, scale: float = 1.0,
             sep: str = "–") -> str:
    """``low–high`` (or :data:`MISSING` when either end is missing)."""
    if low is None or high is None:
        return MISSING
    return f"{num(low, spec, scale=scale)}{sep}{num(high, spec, scale=scale)}"
