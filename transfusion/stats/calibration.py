"""Calibration of probability scores: expected calibration error, Brier score and negative
log-likelihood with bootstrap intervals over test images, the reliability curve, and temperature
scaling fitted on the validation split.

Scores are those of :func:`~transfusion.stats.metrics.scores_from_logits`: binary (N,)
P(positive); multiclass (N, C) softmax; multilabel (N, L) sigmoids, with an optional (N, L)
boolean mask of the labels that are known.

- Binary: the measures of P(positive) against the 0/1 target. Multilabel: those of each label's
  column over its known rows, then the macro mean over labels.
- Multiclass: ECE of the top-label confidence against "top label is right"; Brier
  ``mean_i Σ_k (p_ik − y_ik)²`` (Brier's original multi-class score); NLL ``−mean log p_iy``.
- ECE uses equal-mass bins (``n_bins``, default 15; rank r of N sorted scores is in bin
  ⌊r · n_bins / N⌋, so no bin is nearly empty): ``Σ_b (n_b / N) · |mean(y_b) − mean(p_b)|``.
- Probabilities are clipped to [1e−15, 1 − 1e−15] inside the logarithms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from transfusion.data.base import TaskSpec

EPS = 1e-15
DEFAULT_BINS = 15
MEASURES = ("ece", "brier", "nll")


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval (``low``/``high`` are ``None``
    without a bootstrap)."""

    value: float
    low: float | None = None
    high: float | None = None


def _binary_columns(task: TaskSpec, scores: np.ndarray, targets: np.ndarray,
                    mask: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(p, y) per binary column: one for a binary task, one per label (known rows) for multilabel."""
    if task.kind == "binary":
        return [(scores.reshape(-1), targets.reshape(-1).astype(np.float64))]
    cols = []
    for j in range(scores.shape[1]):
        keep = np.ones(len(scores), bool) if mask is None or not np.size(mask) else mask[:, j].astype(bool)
        cols.append((scores[keep, j], targets[keep, j].astype(np.float64)))
    return cols


def _bin_starts(n: int, n_bins: int) -> np.ndarray:
    """First rank of each equal-mass bin over ``n`` sorted scores: rank r is in bin
    ⌊r · n_bins / n⌋ (bins differ in size by at most one image)."""
    k = max(1, min(n_bins, n))
    return np.unique(np.ceil(np.arange(k) * n / k).astype(np.int64))


def _ece_rows(p: np.ndarray, y: np.ndarray, n_bins: int) -> np.ndarray:
    """ECE of each row of ``p`` / ``y`` (R, N), equal-mass bins by the rank of ``p`` in its row."""
    n = p.shape[1]
    order = np.argsort(p, axis=1, kind="stable")
    gap = np.take_along_axis(y - p, order, axis=1)  # outcome minus probability, by rank
    return np.abs(np.add.reduceat(gap, _bin_starts(n, n_bins), axis=1)).sum(axis=1) / n


def ece_binary(p: np.ndarray, y: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error of probabilities ``p`` (N,) against outcomes ``y`` (N,) 0/1,
    with ``n_bins`` equal-mass bins (fewer when N < n_bins)."""
    if len(p) == 0:
        return float("nan")
    return float(_ece_rows(np.asarray(p, np.float64)[None], np.asarray(y, np.float64)[None], n_bins)[0])


def reliability_curve(p: np.ndarray, y: np.ndarray, n_bins: int = DEFAULT_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(mean predicted probability, observed frequency) of each equal-mass bin: the points of a
    reliability diagram (the diagonal is perfect calibration)."""
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    order = np.argsort(p, kind="stable")
    starts = _bin_starts(len(p), n_bins)
    counts = np.diff(np.append(starts, len(p)))
    return np.add.reduceat(p[order], starts) / counts, np.add.reduceat(y[order], starts) / counts


def _binary_rows(p: np.ndarray, y: np.ndarray, n_bins: int) -> np.ndarray:
    """(ECE, Brier, NLL) of each row of ``p`` / ``y`` (R, N): (R, 3)."""
    q = np.clip(p, EPS, 1 - EPS)
    nll = -np.mean(y * np.log(q) + (1 - y) * np.log1p(-q), axis=1)
    return np.stack([_ece_rows(p, y, n_bins), np.mean((p - y) ** 2, axis=1), nll], axis=1)


def _measure_rows(task: TaskSpec, scores: np.ndarray, targets: np.ndarray, mask: np.ndarray | None,
                  index: np.ndarray, n_bins: int) -> np.ndarray:
    """(ECE, Brier, NLL) of each resample of the images, ``index`` (R, N) row indices: (R, 3)."""
    if task.kind == "multiclass":
        y = targets.astype(np.int64)[index]
        s = scores[index]  # (R, N, C)
        conf, top = s.max(axis=2), s.argmax(axis=2)
        p_true = np.clip(np.take_along_axis(s, y[..., None], axis=2)[..., 0], EPS, 1.0)
        onehot = np.eye(scores.shape[1])[y]
        return np.stack([_ece_rows(conf, (top == y).astype(np.float64), n_bins),
                         np.mean(np.sum((s - onehot) ** 2, axis=2), axis=1), -np.mean(np.log(p_true), axis=1)], axis=1)
    if task.kind == "binary":
        p, y = scores.reshape(-1), targets.reshape(-1).astype(np.float64)
        return _binary_rows(p[index], y[index], n_bins)
    if mask is None or mask.all():  # multilabel, every label known: each label's column at once
        return np.mean([_binary_rows(scores[:, j][index], targets[:, j].astype(np.float64)[index], n_bins)
                        for j in range(scores.shape[1])], axis=0)
    out = np.empty((len(index), 3))  # multilabel with unknown labels: each resample's known rows differ
    for r, rows in enumerate(index):
        sub = None if mask is None else mask[rows]
        per = [_binary_rows(p[None], y[None], n_bins)[0]
               for p, y in _binary_columns(task, scores[rows], targets[rows], sub) if len(p)]
        out[r] = np.mean(per, axis=0)
    return out


def calibration_replicates(task: TaskSpec, scores: Any, targets: Any, mask: Any = None, *,
                           n_bins: int = DEFAULT_BINS, n_boot: int = 1000,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(point (3,), bootstrap replicates (n_boot, 3)) of ECE, Brier and NLL. The resamples of the
    images depend only on ``seed`` and N, so runs scored on the same test images (the seeds of
    one cell) get aligned replicates that can be averaged."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets)
    m = None if mask is None or not np.size(mask) else np.asarray(mask, bool)
    if len(s) != len(t):
        raise ValueError(f"{len(s)} scores but {len(t)} targets")
    if not len(s):
        raise ValueError("no scores to measure calibration on")
    point = _measure_rows(task, s, t, m, np.arange(len(s))[None], n_bins)[0]
    rng = np.random.default_rng(seed)
    chunks = [_measure_rows(task, s, t, m, rng.integers(0, len(s), (min(250, n_boot - i), len(s))), n_bins)
              for i in range(0, n_boot, 250)]  # 250 resamples at a time bounds the memory
    return point, np.concatenate(chunks) if chunks else np.empty((0, 3))


def intervals(point: np.ndarray, replicates: np.ndarray, level: float = 0.95) -> dict[str, Interval]:
    """Percentile intervals of :func:`calibration_replicates` output, by measure name."""
    if not len(replicates):
        return {k: Interval(float(v)) for k, v in zip(MEASURES, point)}
    a = (1 - level) / 2
    lo, hi = np.nanquantile(replicates, [a, 1 - a], axis=0)
    return {k: Interval(float(v), float(lo[j]), float(hi[j])) for j, (k, v) in enumerate(zip(MEASURES, point))}


def calibration(task: TaskSpec, scores: Any, targets: Any, mask: Any = None, *, n_bins: int = DEFAULT_BINS,
                n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, Interval]:
    """ECE, Brier and NLL (keys of :data:`MEASURES`) of ``scores`` against ``targets``, each with
    a percentile bootstrap interval at ``level`` over ``n_boot`` resamples of the images (rows);
    ``n_boot=0`` gives point estimates only. (ECE's bootstrap interval sits above its estimate
    on well-calibrated scores: resampling adds noise, and |noise| only adds to ECE.)"""
    point, reps = calibration_replicates(task, scores, targets, mask, n_bins=n_bins, n_boot=max(0, n_boot), seed=seed)
    return intervals(point, reps, level)


# ------------------------------------------------------------------ temperature scaling

def logits_from_scores(task: TaskSpec, scores: Any) -> np.ndarray:
    """Logits that reproduce ``scores`` through the task's link: log-odds for binary (N,) and
    multilabel (N, L), log-probabilities for multiclass (N, C) (softmax is shift-invariant)."""
    s = np.clip(np.asarray(scores, dtype=np.float64), EPS, 1 - EPS)
    return np.log(s) if task.kind == "multiclass" else np.log(s) - np.log1p(-s)


def apply_temperature(task: TaskSpec, scores: Any, temperature: float) -> np.ndarray:
    """``scores`` recomputed from their logits divided by ``temperature`` (> 0)."""
    from scipy import special

    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = logits_from_scores(task, scores) / temperature
    return special.softmax(z, axis=1) if task.kind == "multiclass" else special.expit(z)


def fit_temperature(task: TaskSpec, scores: Any, targets: Any, mask: Any = None) -> float:
    """The temperature T (one for the whole task, shared by every label) that minimises the NLL
    of ``scores`` — the validation split's — after :func:`apply_temperature`; searched over
    log T in [log 0.05, log 20]. T > 1 softens over-confident scores, T < 1 sharpens."""
    from scipy.optimize import minimize_scalar

    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets)
    m = None if mask is None or not np.size(mask) else np.asarray(mask, bool)

    whole = np.arange(len(s))[None]

    def nll(log_t: float) -> float:
        return float(_measure_rows(task, apply_temperature(task, s, float(np.exp(log_t))), t, m, whole, 2)[0, 2])

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))
