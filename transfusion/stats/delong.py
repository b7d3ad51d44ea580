"""DeLong's test for two correlated binary AUCs on the same test images."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from .metrics import UndefinedMetricError, _check_level, _to_numpy


class DeLongResult(NamedTuple):
    """AUC(a) − AUC(b), its standard error, a normal ``level`` interval and two-sided p-value."""

    diff: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` (k, n) along the last axis, ties given the mean of their ranks."""
    from scipy import stats

    return stats.rankdata(x, method="average", axis=-1)


def delong_test(scores_a: Any, scores_b: Any, targets: Any, *, level: float = 0.95) -> DeLongResult:
    """DeLong's test for two correlated binary AUCs on the same rows (DeLong et al. 1988).

    ``scores_a``, ``scores_b``: (N,) scores; ``targets``: (N,) 0/1. Uses the fast midrank
    algorithm of Sun & Xu (2014, IEEE SPL 21:1389): with m positives and n negatives, the
    structural components are V10_i = (R_i − R^pos_i) / n for each positive (R = midrank in
    all rows, R^pos = midrank among positives) and V01_j = 1 − (R_j − R^neg_j) / m for each
    negative; Var(AUC_a − AUC_b) = c' (S10 / m + S01 / n) c with S the sample covariances
    (ddof 1) across the two models and c = (1, −1). Interval diff ± z·se; p from the normal.
    If se = 0 (e.g. identical models) the interval is (diff, diff) and p = 1 if diff = 0.
    """
    _check_level(level)
    a = _to_numpy(scores_a).astype(np.float64).ravel()
    b = _to_numpy(scores_b).astype(np.float64).ravel()
    y = _to_numpy(targets).ravel()
    if not (a.shape == b.shape == y.shape):
        raise ValueError(
            f"scores_a {a.shape}, scores_b {b.shape} and targets {y.shape} must all be (N,)"
        )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("scores contain NaN or inf (did training diverge?)")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("DeLong's test needs 0/1 targets")
    pos = y == 1
    m, n = int(pos.sum()), int((~pos).sum())
    if m < 2 or n < 2:
        raise UndefinedMetricError(
            f"DeLong's test needs >= 2 positives and >= 2 negatives, got {m} and {n}"
        )
    x = np.stack([a, b])  # (2, N)
    r_all = _midranks(x)
    r_pos = _midranks(x[:, pos])
    r_neg = _midranks(x[:, ~pos])
    v10 = (r_all[:, pos] - r_pos) / n  # (2, m)
    v01 = 1.0 - (r_all[:, ~pos] - r_neg) / m  # (2, n)
    aucs = v10.mean(axis=1)
    cov = np.cov(v10) / m + np.cov(v01) / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    se = math.sqrt(max(var, 0.0))
    if se <= 1e-15:
        return DeLongResult(diff, 0.0, diff, diff, 1.0 if abs(diff) <= 1e-15 else 0.0)
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + level / 2))
    p = float(2 * stats.norm.sf(abs(diff) / se))
    return DeLongResult(diff, se, diff - z * se, diff + z * se, p)


