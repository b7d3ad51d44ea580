"""Classification metrics, bootstrap intervals and paired comparisons for every task kind.

Shapes and units (see :mod:`transfusion.data.base` for the data conventions):

- ``scores``: binary → (N,) P(positive); multiclass → (N, C) class probabilities;
  multilabel → (N, L) independent per-label probabilities. Make them with
  :func:`scores_from_logits`.
- ``targets``: binary/multiclass → int (N,) class indices; multilabel → (N, L) 0/1.
- ``mask``: multilabel only, bool (N, L); False = uncertain label, ignored everywhere.
- Every metric (AUC, AUPRC, accuracy) is a fraction in [0, 1]; differences and margins are
  in the same units: 0.5 "AUC points" (as reports print them) is ``0.005`` here.

Rules:

- AUC and AUPRC (average precision) come from scikit-learn. Binary: one AUC. Multiclass:
  one-vs-rest AUC per class, macro mean (scikit-learn's ``multi_class="ovr"``). Multilabel:
  AUC per label on its unmasked rows, macro mean. A class/label whose evaluated rows hold a
  single class has no AUC: it is listed in ``skipped`` and left out of the mean. If nothing is
  left, the metric is ``None`` with ``auc_reason`` saying why — never a silent NaN.
- Accuracy: binary predicts positive when P(positive) > 0.5 (the argmax of the two logits,
  ties to the negative class); multiclass argmax; multilabel predicts a label when its
  probability > 0.5 and averages the per-label accuracies over unmasked entries.
- Bootstrap: rows (test images) are resampled with replacement. Replicates are computed by
  a vectorised, tie-exact rank formula from the resampling counts (equal to scikit-learn's
  AUC / average precision on the resampled rows). A replicate in which a class/label that is
  evaluable on the full data becomes single-class (or, for accuracy, has no unmasked rows)
  is *degenerate*: it is skipped and counted, so every kept replicate averages over the same
  labels as the point estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
from scipy import special, stats
from sklearn.metrics import average_precision_score, roc_auc_score

from transfusion.data.base import TaskSpec

Metric = Literal["auc", "auprc", "acc"]
METRICS: tuple[str, ...] = ("auc", "auprc", "acc")
Verdict = Literal["equivalent", "better", "worse", "inconclusive"]

# Bootstrap replicates are processed in chunks of about this many (replicate × row) counts,
# which bounds memory at a few tens of MB whatever N and n_boot are.
_CHUNK_CELLS = 1_000_000


class UndefinedMetricError(ValueError):
    """The requested metric is undefined on these targets (e.g. AUC with a single class)."""


# --------------------------------------------------------------------------- conversion


def _to_numpy(x: Any) -> np.ndarray:
    """A numpy array from a numpy array, a sequence or a torch tensor (any device, any dtype)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        t = x.detach().cpu()
        if t.dtype.is_floating_point:
            t = t.double()  # bfloat16/float16 have no numpy view
        return t.numpy()
    return np.asarray(x)


def scores_from_logits(task: TaskSpec, logits: Any) -> np.ndarray:
    """Turn a model's raw outputs into scores (float64 numpy) per the task's rule.

    ``logits``: (N, K) numpy array or torch tensor, K = ``task.num_outputs``.
    Returns binary → (N,) P(class 1) = softmax(logits)[:, 1], computed as
    sigmoid(l1 − l0) so large logits do not overflow; multiclass → (N, C) softmax (shifted by
    the row max inside scipy); multilabel → (N, L) elementwise sigmoid (``scipy.special.expit``,
    stable for any magnitude).
    """
    z = _to_numpy(logits).astype(np.float64, copy=False)
    k = task.num_outputs
    if z.ndim != 2 or z.shape[1] != k:
        raise ValueError(
            f"{task.kind} task with {k} outputs expects logits (N, {k}), got shape {z.shape}"
        )
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain NaN or inf (did training diverge?)")
    if task.kind == "binary":
        return special.expit(z[:, 1] - z[:, 0])
    if task.kind == "multiclass":
        return special.softmax(z, axis=1)
    return special.expit(z)


# --------------------------------------------------------------------------- validation


def _check_inputs(
    task: TaskSpec, scores: Any, targets: Any, mask: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated float64 scores, targets (int (N,) or bool (N, L)) and mask (bool (N, L) or None)."""
    s = _to_numpy(scores).astype(np.float64, copy=False)
    t = _to_numpy(targets)
    m = None if mask is None else _to_numpy(mask).astype(bool, copy=False)
    n = len(t)
    if n == 0:
        raise ValueError("no rows to evaluate (empty targets)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or inf (did training diverge?)")
    k = task.num_outputs
    if task.kind == "binary":
        if s.ndim == 2 and s.shape[1] == 1:
            s = s[:, 0]
        if s.shape != (n,):
            raise ValueError(
                f"binary scores must be (N,) = ({n},) P(positive), got shape {s.shape}"
            )
    elif s.shape != (n, k):
        raise ValueError(f"{task.kind} scores must be (N, {k}) = ({n}, {k}), got shape {s.shape}")
    if task.kind == "multilabel":
        if t.shape != (n, k):
            raise ValueError(f"multilabel targets must be (N, {k}), got shape {t.shape}")
        if m is not None and m.shape != t.shape:
            raise ValueError(f"mask shape {m.shape} != targets shape {t.shape}")
        observed = t if m is None else t[m]
        if not np.all((observed == 0) | (observed == 1)):
            raise ValueError("multilabel targets must be 0/1 on unmasked entries")
        tb = np.zeros(t.shape, dtype=bool)
        valid = np.ones(t.shape, dtype=bool) if m is None else m
        tb[valid] = t[valid] == 1
        return s, tb, m
    if m is not None:
        raise ValueError(f"a mask is only meaningful for multilabel tasks, not {task.kind}")
    if t.ndim != 1:
        raise ValueError(f"{task.kind} targets must be (N,) class indices, got shape {t.shape}")
    if not np.all((t >= 0) & (t < k) & (t == np.round(t))):
        raise ValueError(
            f"{task.kind} targets must be integers in [0, {k}), got values {np.unique(t)[:10]}"
        )
    return s, t.astype(np.int64), None


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}")


# --------------------------------------------------------------------------- units


@dataclass(frozen=True)
class _RankColumn:
    """One binary ranking problem (a class vs rest, or one label) prepared for bootstrap.

    Scores are sorted ascending once and grouped by equal value so ties are exact.
    """

    name: str
    take: np.ndarray  # (n,) row indices (into the N rows) in ascending-score order
    starts: np.ndarray  # (K,) first position (in sorted order) of each distinct score
    positive_sorted: np.ndarray  # (n,) bool, targets in sorted order


@dataclass(frozen=True)
class _AccColumn:
    """Per-row correctness (n,) of one accuracy unit on ``rows`` (None = all rows)."""

    name: str
    rows: np.ndarray | None
    correct: np.ndarray


def _rank_column(
    name: str, score: np.ndarray, positive: np.ndarray, rows: np.ndarray | None
) -> _RankColumn:
    order = np.argsort(score, kind="stable")
    starts = np.concatenate(([0], np.flatnonzero(np.diff(score[order])) + 1))
    take = order if rows is None else rows[order]
    return _RankColumn(name, take, starts, positive[order])


def _binary_problems(
    task: TaskSpec, s: np.ndarray, t: np.ndarray, m: np.ndarray | None
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """(name, score (n,), positive (n,) bool, rows or None) for each class/label ranking problem."""
    if task.kind == "binary":
        return [(task.labels[1], s, t == 1, None)]
    if task.kind == "multiclass":
        return [(name, s[:, c], t == c, None) for c, name in enumerate(task.labels)]
    out = []
    for j, name in enumerate(task.labels):
        if m is None:
            out.append((name, s[:, j], t[:, j], None))
        else:
            rows = np.flatnonzero(m[:, j])
            out.append((name, s[rows, j], t[rows, j], rows))
    return out


def _acc_columns(
    task: TaskSpec, s: np.ndarray, t: np.ndarray, m: np.ndarray | None
) -> list[_AccColumn]:
    """Accuracy units: one over all rows (binary/multiclass) or one per label with unmasked rows."""
    if task.kind == "binary":
        return [_AccColumn("all", None, (s > 0.5) == (t == 1))]
    if task.kind == "multiclass":
        return [_AccColumn("all", None, np.argmax(s, axis=1) == t)]
    cols = []
    correct = (s > 0.5) == t
    for j, name in enumerate(task.labels):
        rows = None if m is None else np.flatnonzero(m[:, j])
        if rows is not None and rows.size == 0:
            continue  # no observed entry: this label has no accuracy
        cols.append(_AccColumn(name, rows, correct[:, j] if rows is None else correct[rows, j]))
    return cols


def _single_class_reason(positive: np.ndarray) -> str | None:
    if positive.size == 0:
        return "no unmasked rows"
    n_pos = int(positive.sum())
    if n_pos == 0:
        return f"no positives among {positive.size} rows"
    if n_pos == positive.size:
        return f"no negatives among {positive.size} rows"
    return None


# --------------------------------------------------------------------------- evaluate


def evaluate(task: TaskSpec, scores: Any, targets: Any, mask: Any = None) -> dict[str, Any]:
    """AUC, AUPRC and accuracy of ``scores`` against ``targets`` per the task's rule.

    Shapes: see the module docstring. Returns a JSON-ready dict:

    - ``auc``, ``auprc``: macro means over evaluable classes/labels (float in [0, 1]), or
      ``None`` when no class/label is evaluable — then ``auc_reason`` says why;
    - ``acc``: accuracy in [0, 1] (``None`` only if no entry is observed);
    - ``per_label_auc``, ``per_label_auprc``: class/label name → value or ``None``
      (binary: a single entry under the positive class name);
    - ``skipped``: names left out of the AUC/AUPRC mean; ``skip_reasons``: name → reason;
    - ``auc_reason``: ``None`` when ``auc`` is defined; ``n``: number of rows.
    """
    s, t, m = _check_inputs(task, scores, targets, mask)
    per_auc: dict[str, float | None] = {}
    per_ap: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for name, score, positive, _rows in _binary_problems(task, s, t, m):
        why = _single_class_reason(positive)
        if why is not None:
            per_auc[name] = per_ap[name] = None
            reasons[name] = why
            continue
        per_auc[name] = float(roc_auc_score(positive, score))
        per_ap[name] = float(average_precision_score(positive, score))
    defined_auc = [v for v in per_auc.values() if v is not None]
    defined_ap = [v for v in per_ap.values() if v is not None]
    auc_reason = None
    if not defined_auc:
        auc_reason = "AUC is undefined: " + "; ".join(f"{k}: {v}" for k, v in reasons.items())
    acc_cols = _acc_columns(task, s, t, m)
    acc = float(np.mean([c.correct.mean() for c in acc_cols])) if acc_cols else None
    return {
        "auc": float(np.mean(defined_auc)) if defined_auc else None,
        "auprc": float(np.mean(defined_ap)) if defined_ap else None,
        "acc": acc,
        "per_label_auc": per_auc,
        "per_label_auprc": per_ap,
        "skipped": [k for k, v in per_auc.items() if v is None],
        "skip_reasons": reasons,
        "auc_reason": auc_reason,
        "n": len(t),
    }


def _point_estimate(
    task: TaskSpec, s: np.ndarray, t: np.ndarray, m: np.ndarray | None, metric: str
) -> float:
    res = evaluate(task, s, t, m)
    value = res[metric]
    if value is None:
        raise UndefinedMetricError(
            res["auc_reason"] or f"{metric} is undefined: no observed entries"
        )
    return float(value)


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


def _resample_counts(rng: np.random.Generator, n_rows: int, n_boot: int) -> Any:
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


class DeLongResult(NamedTuple):
    """AUC(a) − AUC(b), its standard error, a normal ``level`` interval and two-sided p-value."""

    diff: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` (k, n) along the last axis, ties given the mean of their ranks."""
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
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = float(2 * stats.norm.sf(abs(diff) / se))
    return DeLongResult(diff, se, diff - z * se, diff + z * se, p)


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


# --------------------------------------------------------------------------- convergence


def steps_to_target(
    steps: Sequence[int], values: Sequence[float | None], target: float
) -> int | None:
    """The first step (in increasing step order) whose validation metric is >= ``target``.

    ``steps`` and ``values`` are parallel (one entry per evaluation); ``None``/NaN values
    never count as reached. Returns None if the target is never reached.
    """
    if len(steps) != len(values):
        raise ValueError(f"{len(steps)} steps but {len(values)} values")
    if not math.isfinite(target):
        raise ValueError(f"target must be finite, got {target}")
    for step, value in sorted(zip(steps, values), key=lambda sv: sv[0]):
        if value is not None and not math.isnan(value) and value >= target:
            return int(step)
    return None
