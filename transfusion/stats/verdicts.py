"""Verdicts on a difference: equivalent within a margin, better, worse or inconclusive — or
unjudged, when too few seeds measured the training variance. Verdicts of one family (the
comparisons of one report section) are read from simultaneous intervals (:func:`family_level`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .seeds import MIN_SEEDS, SeedEstimate

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




UNJUDGED = "unjudged"


def family_level(k: int, alpha: float = 0.05) -> float:
    """Level of each of ``k`` simultaneous intervals (Bonferroni): ``1 − alpha / k``, so that all
    ``k`` cover their true differences together with probability ≥ ``1 − alpha`` — every verdict
    of a family then holds together at ``alpha``."""
    if int(k) < 1:
        raise ValueError(f"a family needs at least one comparison, got k={k}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return 1.0 - alpha / int(k)


@dataclass(frozen=True)
class Judgement:
    """A verdict on a seed-averaged difference (a − b), metric units: the interval it was read
    from (at ``level``), and why a comparison was left unjudged."""

    verdict: str
    ci_low: float
    ci_high: float
    level: float
    reason: str = ""


def judge(estimate: SeedEstimate, margin: float, *, level: float = 0.95, min_seeds: int = MIN_SEEDS) -> Judgement:
    """:func:`equivalence_verdict` on ``estimate``'s interval at ``level`` — when it has at least
    ``min_seeds`` seeds. With fewer, training variance is not (well enough) measured: the verdict
    is ``unjudged`` and ``reason`` says so (the interval is still given, for information)."""
    lo, hi = estimate.interval(level)
    if estimate.n_seeds < min_seeds:
        what = "training variance not measured" if estimate.n_seeds == 1 else "training variance barely measured"
        return Judgement(UNJUDGED, lo, hi, level, f"n seeds {estimate.n_seeds} < {min_seeds}: {what}")
    return Judgement(equivalence_verdict(lo, hi, margin), lo, hi, level)


def non_inferior(task, scores, reference_scores, targets, mask=None, *, margin: float, n_boot: int = 1000,
                 seed: int = 0) -> dict:
    """Is a variant of a model (int8, fp16) no worse than the model it was made from, on the same
    test rows? ``scores`` are the variant's, ``reference_scores`` the original's.

    Returns ``test_auc`` (the variant's), ``auc_diff`` (variant − original), its 95%
    paired-bootstrap interval ``auc_diff_low`` / ``auc_diff_high``, ``margin`` and ``passed``:
    the interval's lower end is above −``margin`` (AUC units; 0.005 = 0.5 AUC points; 0 tolerates
    no loss at all).
    """
    from .bootstrap import paired_difference
    from .metrics import evaluate

    if not 0.0 <= float(margin) < 1.0:
        raise ValueError(f"margin is in AUC units (0.005 = 0.5 AUC points) and must be in [0, 1), got {margin}")
    auc = evaluate(task, scores, targets, mask)["auc"]
    d = paired_difference(task, scores, reference_scores, targets, mask, n_boot=n_boot, seed=seed)
    return {"test_auc": auc, "auc_diff": d.diff, "auc_diff_low": d.ci_low, "auc_diff_high": d.ci_high,
            "margin": float(margin), "passed": bool(d.ci_low > -float(margin))}
