"""Accuracy-versus-cost Pareto fronts and the "cheapest model within δ of the best" rule.

Costs are minimised (MACs, parameters, latency in ms — any unit, one unit per call) and scores
are maximised (AUC, accuracy — any unit, ``delta`` in the same unit as the scores).
Entries with a NaN cost or a NaN score are never on the front and never recommended;
an infinite cost is an ordinary (very high) cost.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Absolute slack in the "within delta of the best" comparison, so that e.g. 0.95 − 0.01 does
# not exclude a score of exactly 0.94 through floating-point rounding.
_DELTA_TOL = 1e-12


def _as_pair(
    costs: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(costs, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if c.ndim != 1 or s.ndim != 1 or c.shape != s.shape:
        raise ValueError(
            f"costs and scores must be 1-D of equal length, got shapes {c.shape} and {s.shape}"
        )
    if np.isinf(s).any():
        raise ValueError(
            f"scores must be finite (or NaN for a missing score), got {s[np.isinf(s)]}"
        )
    return c, s


def pareto_front(
    costs: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, *, tolerance: float = 0.0
) -> np.ndarray:
    """Mask (n,) bool of the points not dominated by any other point.

    Point j dominates i when it is cheaper and not worse by more than ``tolerance``
    (cost_j < cost_i and score_j >= score_i − tolerance), or no dearer and better by more than
    ``tolerance`` (cost_j <= cost_i and score_j > score_i + tolerance). With ``tolerance = 0``
    this is the usual front (at least as good on both, better on one). A positive tolerance
    (score units, e.g. the report's δ) gives the *δ-front*: a dearer point earns its place only
    by beating every cheaper one by more than δ, and points of equal cost within δ of each other
    are on it together — so noise smaller than δ cannot move a point on or off it.
    Points with a NaN cost or score are excluded (False) and dominate nothing; identical points
    do not dominate each other. An empty input gives an empty mask.
    """
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0 (in score units), got {tolerance}")
    c, s = _as_pair(costs, scores)
    ok = ~(np.isnan(c) | np.isnan(s))
    front = np.zeros(c.shape, dtype=bool)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return front
    cc, ss = c[idx], s[idx]
    # row i, column j: does j dominate i? O(n²) memory, fine for the rows a report holds
    cheaper = cc[None, :] < cc[:, None]
    no_dearer = cc[None, :] <= cc[:, None]
    tol = tolerance + _DELTA_TOL if tolerance > 0 else 0.0
    not_worse = ss[None, :] >= ss[:, None] - tol
    better = ss[None, :] > ss[:, None] + tol
    dominated = np.any((cheaper & not_worse) | (no_dearer & better), axis=1)
    front[idx] = ~dominated
    return front


def cheapest_within(
    costs: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, delta: float,
    *, prefer: Sequence[bool] | np.ndarray | None = None,
) -> int:
    """Index of the cheapest model whose score is >= best score − ``delta``.

    ``delta`` (>= 0) is in score units (AUC: 0.005 = 0.5 AUC points). Ties in cost go to a
    ``prefer``-red row (the report prefers regimes that need no pretrained weights), then to the
    higher score, then to the lower index; without ``prefer`` the result is always on the Pareto
    front. Rows with a NaN cost or score are ignored. Raises ``ValueError`` on empty input or
    when no row has both a cost and a score.
    """
    c, s = _as_pair(costs, scores)
    if c.size == 0:
        raise ValueError("cheapest_within needs at least one model; got empty costs and scores")
    if not np.isfinite(delta) or delta < 0:
        raise ValueError(f"delta must be a finite number >= 0 (in score units), got {delta}")
    ok = ~(np.isnan(c) | np.isnan(s))
    if not ok.any():
        raise ValueError(f"none of the {c.size} models has both a cost and a score (all NaN)")
    best = s[ok].max()
    eligible = np.flatnonzero(ok & (s >= best - delta - _DELTA_TOL))
    pref = np.zeros(c.shape, dtype=bool) if prefer is None else np.asarray(prefer, dtype=bool)
    if pref.shape != c.shape:
        raise ValueError(f"prefer must have the shape of costs {c.shape}, got {pref.shape}")
    # lexsort: last key is primary — cost ascending, then preferred first, then score descending, then index
    order = np.lexsort((eligible, -s[eligible], ~pref[eligible], c[eligible]))
    return int(eligible[order[0]])
