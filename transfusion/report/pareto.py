"""Accuracy-versus-cost Pareto fronts and the "cheapest model within δ of the best" rule.

Costs are minimised (MACs, parameters, latency in ms — any unit, one unit per call) and scores
are maximised (AUC, accuracy — any unit, ``delta`` in the same unit as the scores).
Entries with a NaN cost or a NaN score are never on the front and never recommended;
an infinite cost is an ordinary (very high) cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    are on it together. A point whose gap to another lies near δ can still move on or off it
    with noise: :func:`front_borderline` says which.
    Points with a NaN cost or score are excluded (False) and dominate nothing; identical points
    do not dominate each other. An empty input gives an empty mask.
    """
    c, s, idx = _scored(costs, scores, tolerance)
    front = np.zeros(c.shape, dtype=bool)
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


def _scored(costs: Any, scores: Any, tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Costs and scores as float arrays, and the indices of the points that have both."""
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a finite number >= 0 (in score units), got {tolerance}")
    c, s = _as_pair(costs, scores)
    return c, s, np.flatnonzero(~(np.isnan(c) | np.isnan(s)))


def _gap_matrix(gap_se: Any, n: int) -> np.ndarray:
    """``gap_se`` (a scalar or (n, n)) as an (n, n) array of standard errors, NaN read as 0."""
    e = np.asarray(gap_se, dtype=np.float64)
    e = np.full((n, n), float(e)) if e.ndim == 0 else e
    if e.shape != (n, n) or np.any(np.nan_to_num(e) < 0):
        raise ValueError(f"gap_se must be a scalar or an ({n}, {n}) array of standard errors >= 0, got shape {e.shape}")
    return np.nan_to_num(e)


def front_borderline(
    costs: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, gap_se: Any,
    *, tolerance: float = 0.0, z: float = 2.0,
) -> np.ndarray:
    """Mask (n,) bool of the points whose place on or off :func:`pareto_front` (same
    ``tolerance``) turns on a score gap within ``z`` standard errors of its threshold.

    ``gap_se`` (n, n): the standard error of each gap ``score_j − score_i`` (symmetric; a scalar
    applies to every pair). A point is *clearly dominated* when some point dominates it by more
    than ``z`` SEs of their gap, *clearly on the front* when every other point falls short of
    dominating it by more than that; anything else is borderline: a rerun's noise can move it.
    Costs are taken as exact. Points with a NaN cost or score are not borderline.
    """
    c, s, idx = _scored(costs, scores, tolerance)
    e = _gap_matrix(gap_se, c.size)
    out = np.zeros(c.shape, dtype=bool)
    if idx.size == 0:
        return out
    cc, ss = c[idx], s[idx]
    band = z * e[np.ix_(idx, idx)]
    tol = tolerance + _DELTA_TOL if tolerance > 0 else 0.0
    # row i, column j: by how much j clears the bar to dominate i (> 0: it does), for each rule
    cheaper = cc[None, :] < cc[:, None]
    no_dearer = (cc[None, :] <= cc[:, None]) & ~np.eye(idx.size, dtype=bool)
    by_cheaper = np.where(cheaper, ss[None, :] - (ss[:, None] - tol), -np.inf)
    by_equal_or_cheaper = np.where(no_dearer, ss[None, :] - (ss[:, None] + tol), -np.inf)
    clear = np.maximum(by_cheaper, by_equal_or_cheaper)
    relevant = cheaper | no_dearer
    clearly_dominated = np.any(relevant & (clear > band), axis=1)
    clearly_on = np.all(~relevant | (clear < -band), axis=1)
    out[idx] = ~clearly_dominated & ~clearly_on
    return out


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


def recommendation_alternatives(
    costs: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, delta: float, gap_se: Any,
    *, prefer: Sequence[bool] | np.ndarray | None = None, z: float = 2.0,
) -> np.ndarray:
    """Mask (n,) bool of the rows that :func:`cheapest_within` could pick instead of its pick if
    every score gap moved by up to ``z`` of its standard errors (``gap_se``: scalar or (n, n)).

    A row is an alternative when it is possibly within ``delta`` of the best (its gap to the best
    row exceeds ``delta`` by less than ``z`` SEs) and would win the pick's order against the pick
    (cheaper; or equal cost and preferred; or equal cost and preference with a score within ``z``
    SEs of the pick's). When the pick itself is only possibly within ``delta``, every possibly
    eligible row is an alternative. The pick is always marked.
    """
    c, s = _as_pair(costs, scores)
    rec = cheapest_within(c, s, delta, prefer=prefer)
    band = z * _gap_matrix(gap_se, c.size)
    pref = np.zeros(c.shape, dtype=bool) if prefer is None else np.asarray(prefer, dtype=bool)
    ok = ~(np.isnan(c) | np.isnan(s))
    best = int(np.flatnonzero(ok)[np.argmax(s[ok])])
    possible = ok & (s >= s[best] - delta - band[:, best] - _DELTA_TOL)
    surely = ok & (s >= s[best] - delta + band[:, best] - _DELTA_TOL)
    if not surely[rec]:
        out = possible.copy()
    else:
        wins = (c < c[rec]) | ((c == c[rec]) & pref & ~pref[rec]) | (
            (c == c[rec]) & (pref == pref[rec]) & (s >= s[rec] - band[:, rec]))
        out = possible & wins
    out[rec] = True
    return out



def recommendation_stability(
    costs: Sequence[float] | np.ndarray, scores: Sequence[float] | np.ndarray, delta: float, reruns: np.ndarray,
    *, prefer: Sequence[bool] | np.ndarray | None = None,
) -> float:
    """The share of simulated reruns whose :func:`cheapest_within` pick is the same row as on
    ``scores``. ``reruns`` (R, n): the scores of R simulated reruns (a NaN where a row's rerun
    score is unknown counts as the row missing from that rerun)."""
    c, s = _as_pair(costs, scores)
    r = np.asarray(reruns, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != c.size:
        raise ValueError(f"reruns must be (R, {c.size}), got shape {r.shape}")
    pick = cheapest_within(c, s, delta, prefer=prefer)
    same = [cheapest_within(c, row, delta, prefer=prefer) == pick for row in r if not np.isnan(row).all()]
    return float(np.mean(same)) if same else float("nan")
