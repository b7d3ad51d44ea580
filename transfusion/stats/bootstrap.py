"""Bootstrap over test images: intervals of one model's metric, and paired differences of two
models scored on the same images.

Rows (test images) are resampled with replacement. Replicates are computed by a vectorised,
tie-exact rank formula from the resampling counts (equal to scikit-learn's AUC / average
precision on the resampled rows). A replicate in which a class/label that is evaluable on the
full data becomes single-class (or, for accuracy, has no unmasked rows) is *degenerate*: it is
skipped and counted, so every kept replicate averages over the same labels as the point
estimate. Metrics and differences are in metric units (AUC 0..1: 0.005 = 0.5 AUC points).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from transfusion.data.base import TaskSpec

from .delong import delong_test
from .metrics import (
    Metric,
    UndefinedMetricError,
    _acc_columns,
    _binary_problems,
    _check_inputs,
    _check_level,
    _check_metric,
    _point_estimate,
    _single_class_reason,
)

# Bootstrap replicates are processed in chunks of about this many (replicate × row) counts,
# which bounds memory at a few tens of MB whatever N and n_boot are.
_CHUNK_CELLS = 1_000_000


@dataclass(frozen=True)
class _RankColumn:
    """One binary ranking problem (a class vs rest, or one label) prepared for bootstrap.

    Scores are sorted ascending once and grouped by equal value so ties are exact.
    """

    name: str
    take: np.ndarray  # (n,) row indices (into the N rows) in ascending-score order
    starts: np.ndarray  # (K,) first position (in sorted order) of each distinct score
    positive_sorted: np.ndarray  # (n,) bool, targets in sorted order


def _rank_column(
    name: str, score: np.ndarray, positive: np.ndarray, rows: np.ndarray | None
) -> _RankColumn:
    order = np.argsort(score, kind="stable")
    starts = np.concatenate(([0], np.flatnonzero(np.diff(score[order])) + 1))
    take = order if rows is None else rows[order]
    return _RankColumn(name, take, starts, positive[order])


# --------------------------------------------------------------------------- vectorised replicates


def _rank_auc_from_counts(
    column_counts: np.ndarray, starts: np.ndarray, positive_sorted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Tie-exact AUC of B weighted resamples of one binary ranking problem.

    ``column_counts`` (B, n) int: how often each row (in ascending-score order) is drawn;
    ``starts`` (K,): first sorted position of each distinct score; ``positive_sorted`` (n,)
    bool. AUC = Σ_k P_k (N_<k + N_k / 2) / (P · N) with P_k, N_k the positive/negative
    weight at the k-th distinct score — the Mann–Whitney statistic, ties counted one half,
    in exact integer arithmetic. Returns (auc (B,), degenerate (B,) bool).
    """
    pos_w = np.add.reduceat(column_counts * positive_sorted, starts, axis=1)
    neg_w = np.add.reduceat(column_counts * ~positive_sorted, starts, axis=1)
    neg_below = np.cumsum(neg_w, axis=1) - neg_w
    twice_num = np.sum(pos_w * (2 * neg_below + neg_w), axis=1)
    p_tot, n_tot = pos_w.sum(axis=1), neg_w.sum(axis=1)
    degenerate = (p_tot == 0) | (n_tot == 0)
    denom = np.where(degenerate, 1, 2 * p_tot * n_tot)
    return twice_num / denom, degenerate


def _ap_from_counts(
    column_counts: np.ndarray, starts: np.ndarray, positive_sorted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Average precision (scikit-learn's step-wise definition) of B weighted resamples.

    Thresholds run over distinct scores in descending order; AP = Σ_k (P_k / P) · precision_k
    with precision_k = TP_k / (TP_k + FP_k) at threshold k. Returns (ap (B,), degenerate (B,)).
    """
    pos_w = np.add.reduceat(column_counts * positive_sorted, starts, axis=1)[:, ::-1]
    neg_w = np.add.reduceat(column_counts * ~positive_sorted, starts, axis=1)[:, ::-1]
    tp, fp = np.cumsum(pos_w, axis=1), np.cumsum(neg_w, axis=1)
    called = tp + fp
    precision = np.divide(tp, called, out=np.zeros(tp.shape), where=called > 0)
    p_tot, n_tot = tp[:, -1], fp[:, -1]
    degenerate = (p_tot == 0) | (n_tot == 0)
    ap = np.sum(pos_w * precision, axis=1) / np.where(degenerate, 1, p_tot)
    return ap, degenerate


class _Prepared:
    """Everything about (task, targets, mask, metric) needed to score resamples of one model."""

    def __init__(
        self, task: TaskSpec, s: np.ndarray, t: np.ndarray, m: np.ndarray | None, metric: str
    ):
        self.metric = metric
        if metric == "acc":
            self.acc_cols = _acc_columns(task, s, t, m)
            self.rank_cols: list[_RankColumn] = []
        else:
            self.acc_cols = []
            self.rank_cols = [
                _rank_column(name, score, positive, rows)
                for name, score, positive, rows in _binary_problems(task, s, t, m)
                if _single_class_reason(positive) is None
            ]

    def replicates(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Metric (B,) and degenerate flag (B,) for resampling counts (B, N)."""
        b = counts.shape[0]
        total = np.zeros(b)
        degenerate = np.zeros(b, dtype=bool)
        if self.metric == "acc":
            for col in self.acc_cols:
                c = counts if col.rows is None else counts[:, col.rows]
                drawn = c.sum(axis=1)
                degenerate |= drawn == 0
                total += (c @ col.correct.astype(np.int64)) / np.maximum(drawn, 1)
            return total / len(self.acc_cols), degenerate
        fn = _rank_auc_from_counts if self.metric == "auc" else _ap_from_counts
        for col in self.rank_cols:
            value, deg = fn(counts[:, col.take], col.starts, col.positive_sorted)
            total += value
            degenerate |= deg
        return total / len(self.rank_cols), degenerate


def _resample_counts(rng: np.random.Generator, n_rows: int, n_boot: int) -> Iterator[np.ndarray]:
    """Yield chunks of resampling counts (b, N) int64: row i drawn counts[r, i] times."""
    chunk = max(1, _CHUNK_CELLS // n_rows)
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n_rows, size=(b, n_rows))
        idx += (np.arange(b) * n_rows)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n_rows).reshape(b, n_rows)
        done += b


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap distribution of one metric (fractions in [0, 1]) over resampled test rows.

    ``replicates`` holds the non-degenerate replicates only; ``n_skipped`` counts the
    degenerate ones (see the module docstring), ``n_boot`` is the number drawn.
    """

    metric: str
    estimate: float
    replicates: np.ndarray = field(repr=False)
    n_boot: int
    n_skipped: int
    seed: int

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        """Percentile interval: the (1−level)/2 and (1+level)/2 quantiles of the replicates."""
        _check_level(level)
        lo, hi = np.quantile(self.replicates, [(1 - level) / 2, (1 + level) / 2])
        return float(lo), float(hi)


def _check_boot(n_boot: int) -> None:
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")


def bootstrap(
    task: TaskSpec,
    scores: Any,
    targets: Any,
    mask: Any = None,
    *,
    metric: Metric = "auc",
    n_boot: int = 1000,
    seed: int = 0,
) -> BootstrapResult:
    """Bootstrap distribution of ``metric`` over test rows, deterministic by ``seed``.

    Raises :class:`UndefinedMetricError` if the metric is undefined on the full data or every
    replicate is degenerate.
    """
    _check_metric(metric)
    _check_boot(n_boot)
    s, t, m = _check_inputs(task, scores, targets, mask)
    estimate = _point_estimate(task, s, t, m, metric)
    prep = _Prepared(task, s, t, m, metric)
    values, skipped = [], 0
    for counts in _resample_counts(np.random.default_rng(seed), len(t), n_boot):
        v, deg = prep.replicates(counts)
        values.append(v[~deg])
        skipped += int(deg.sum())
    reps = np.concatenate(values)
    if reps.size == 0:
        raise UndefinedMetricError(
            f"all {n_boot} bootstrap resamples were degenerate (single-class) for {metric}"
        )
    return BootstrapResult(metric, estimate, reps, int(n_boot), skipped, seed)


def bootstrap_ci(
    task: TaskSpec,
    scores: Any,
    targets: Any,
    mask: Any = None,
    *,
    metric: Metric = "auc",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) of ``metric`` (units of the metric, e.g. AUC).

    Resamples test rows with replacement ``n_boot`` times (deterministic by ``seed``),
    skipping degenerate resamples; use :func:`bootstrap` to see how many were skipped.
    """
    _check_level(level)
    return bootstrap(task, scores, targets, mask, metric=metric, n_boot=n_boot, seed=seed).ci(level)


# --------------------------------------------------------------------------- paired comparisons


@dataclass(frozen=True)
class PairedDifference:
    """metric(a) − metric(b) on the same test rows, with a ``level`` interval.

    Units are those of the metric (AUC 0..1: 0.005 = 0.5 AUC points). ``method`` is
    ``"paired-bootstrap"`` (percentile interval; ``n_boot`` drawn, ``n_skipped`` degenerate)
    or ``"delong"`` (normal interval from DeLong's variance; ``n_boot`` = 0, ``p_value`` set).
    """

    diff: float
    ci_low: float
    ci_high: float
    n_boot: int
    method: str
    metric: str = "auc"
    level: float = 0.95
    n_skipped: int = 0
    p_value: float | None = None


def paired_difference(
    task: TaskSpec,
    scores_a: Any,
    scores_b: Any,
    targets: Any,
    mask: Any = None,
    *,
    metric: Metric = "auc",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    method: Literal["bootstrap", "delong"] = "bootstrap",
) -> PairedDifference:
    """Difference metric(a) − metric(b) of two models scored on the same test rows.

    ``method="bootstrap"``: each replicate resamples the SAME rows for both models, so the
    interval reflects the paired design (correlated errors cancel); percentile interval at
    ``level``. A model compared with itself gives exactly diff 0 and interval (0, 0).
    ``method="delong"``: binary AUC only, via :func:`delong_test`.
    """
    _check_metric(metric)
    _check_level(level)
    if method == "delong":
        if task.kind != "binary" or metric != "auc":
            raise ValueError(
                f"DeLong's test is for binary AUC; got a {task.kind} task and metric {metric!r}"
            )
        r = delong_test(scores_a, scores_b, targets, level=level)
        return PairedDifference(
            r.diff, r.ci_low, r.ci_high, 0, "delong", metric, level, 0, r.p_value
        )
    if method != "bootstrap":
        raise ValueError(f"method must be 'bootstrap' or 'delong', got {method!r}")
    _check_boot(n_boot)
    sa, t, m = _check_inputs(task, scores_a, targets, mask)
    sb, _, _ = _check_inputs(task, scores_b, targets, mask)
    diff = _point_estimate(task, sa, t, m, metric) - _point_estimate(task, sb, t, m, metric)
    prep_a, prep_b = _Prepared(task, sa, t, m, metric), _Prepared(task, sb, t, m, metric)
    values, skipped = [], 0
    for counts in _resample_counts(np.random.default_rng(seed), len(t), n_boot):
        va, deg = prep_a.replicates(counts)
        vb, _ = prep_b.replicates(counts)  # degeneracy depends on targets only: same for b
        values.append((va - vb)[~deg])
        skipped += int(deg.sum())
    reps = np.concatenate(values)
    if reps.size == 0:
        raise UndefinedMetricError(
            f"all {n_boot} bootstrap resamples were degenerate (single-class) for {metric}"
        )
    lo, hi = np.quantile(reps, [(1 - level) / 2, (1 + level) / 2])
    return PairedDifference(
        float(diff), float(lo), float(hi), int(n_boot), "paired-bootstrap", metric, level, skipped
    )


