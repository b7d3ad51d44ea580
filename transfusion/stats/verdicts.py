"""Verdicts on a difference: equivalent within a margin, better, worse or inconclusive."""

from __future__ import annotations

import math
from typing import Literal

Verdict = Literal["equivalent", "better", "worse", "inconclusive"]


def equivalence_verdict(ci_low: float, ci_high: float, margin: float) -> Verdict:
    """Verdict on a difference (a − b) from its interval and an equivalence margin.

    All three numbers are in metric units: for AUC, a margin of 0.5 AUC points is
    ``margin=0.005``. Rules, checked in this order:

    - ``"equivalent"``: −margin < ci_low and ci_high < margin (the whole interval strictly
      inside the margin) — even if it also excludes 0: a real but smaller-than-margin
      difference is, for practical purposes, no difference;
    - ``"better"``: ci_low > 0; ``"worse"``: ci_high < 0;
    - ``"inconclusive"``: anything else (the interval reaches past the margin and covers 0).

    Convention: the report passes its 95% interval. "better"/"worse" are then a two-sided
    test at α = 0.05, and "equivalent" is TOST (two one-sided tests) at α = 0.025 per side —
    slightly stricter than the textbook TOST, which uses the 90% interval (α = 0.05); pass a
    90% interval for that.
    """
    for name, v in (("ci_low", ci_low), ("ci_high", ci_high), ("margin", margin)):
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v}")
    if ci_low > ci_high:
        raise ValueError(f"ci_low {ci_low} > ci_high {ci_high}")
    if not 0.0 < margin < 1.0:
        raise ValueError(
            f"margin is in metric units (AUC 0..1; 0.5 AUC points = 0.005) and must be in (0, 1), got {margin}"
        )
    if -margin < ci_low and ci_high < margin:
        return "equivalent"
    if ci_low > 0:
        return "better"
    if ci_high < 0:
        return "worse"
    return "inconclusive"


