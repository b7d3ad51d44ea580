"""Calibration of probability scores: the debiased calibration error, the plug-in ECE, Brier score
and negative log-likelihood, with intervals over test images (and seeds), the noise floor of the
calibration error, the reliability curve, and temperature scaling fitted on the validation split.

Scores are those of :func:`~transfusion.stats.metrics.scores_from_logits`: binary (N,)
P(positive); multiclass (N, C) softmax; multilabel (N, L) sigmoids, with an optional (N, L)
boolean mask of the labels that are known. Every measure is in probability units (CE, ECE: a
probability gap; Brier: squared probability; NLL: nats per image).

- Binary: the measures of P(positive) against the 0/1 target. Multilabel: those of each label's
  column over its known rows, then the macro mean over labels (for CE: the mean of CE²).
- Multiclass: CE and ECE of the top-label confidence against "top label is right"; Brier
  ``mean_i Σ_k (p_ik − y_ik)²`` (Brier's original multi-class score); NLL ``−mean log p_iy``.
- Bins are equal-mass: rank r of N sorted scores is in bin ⌊r · k / N⌋, so no bin is nearly empty.
- **CE** (the headline measure): the debiased squared ℓ2 calibration error of Kumar, Liang & Ma
  (NeurIPS 2019, "Verified uncertainty calibration"),

      CE² = Σ_b (n_b / N) · [(ȳ_b − p̄_b)² − ȳ_b (1 − ȳ_b) / (n_b − 1)]

  (ȳ_b, p̄_b the bin's mean outcome and mean score; k = min(bins, ⌊N / 2⌋) bins so that n_b ≥ 2).
  The subtracted term is the binomial noise of ȳ_b, so CE² is unbiased for the binned squared
  calibration error (it can come out negative on well-calibrated scores); reported as the
  root-mean-square calibration error ``CE = sqrt(max(0, CE²))``. Intervals are computed on CE²
  (normal, from the test-image bootstrap and the seeds: :func:`summarize`), cut at 0, then
  square-rooted — they always contain their estimate.
- **ECE** (plug-in, kept for comparison): ``Σ_b (n_b / N) · |ȳ_b − p̄_b|`` with ``bins`` bins. It
  is biased upward by the binomial noise of every bin (perfectly calibrated scores of 1050 test
  images average 0.033 with 15 bins), and a bootstrap adds the bias again, so it gets no interval.
- **Noise floor** (consistency resampling, Bröcker & Smith 2007): outcomes drawn from the scores
  themselves, y* ~ Bernoulli(p), are perfectly calibrated by construction; the 95th percentile of
  CE over such draws is the CE a perfectly calibrated model stays under at this test size
  (:func:`consistency_ce2`, :func:`noise_floor`).
- Probabilities are clipped to [1e−15, 1 − 1e−15] inside the logarithms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from transfusion.data.base import TaskSpec

from .seeds import seed_estimate

EPS = 1e-15
DEFAULT_BINS = 15
#: draws of the consistency resampling behind the noise floor
FLOOR_DRAWS = 1000
#: the reported measures (keys of :func:`calibration` and of each run's stored ``calibration``)
MEASURES = ("ece", "ce", "brier", "nll")
#: the columns of :func:`calibration_replicates`: CE enters squared (the debiased, additive estimate)
COLUMNS = ("ece", "ce2", "brier", "nll")
_CHUNK = 250  # resamples / draws at a time: bounds the memory


@dataclass(frozen=True)
class Interval:
    """A point estimate with its interval (``low``/``high`` are ``None`` without one: the plug-in
    ECE, or no bootstrap)."""

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
        keep = _known(mask, len(scores), j)
        cols.append((scores[keep, j], targets[keep, j].astype(np.float64)))
    return cols


def _known(mask: np.ndarray | None, n: int, j: int) -> np.ndarray:
    """Rows whose label ``j`` is known (every row without a mask)."""
    return np.ones(n, bool) if mask is None or not np.size(mask) else np.asarray(mask)[:, j].astype(bool)


def _bin_starts(n: int, n_bins: int) -> np.ndarray:
    """First rank of each equal-mass bin over ``n`` sorted scores: rank r is in bin
    ⌊r · n_bins / n⌋ (bins differ in size by at most one image)."""
    k = max(1, min(n_bins, n))
    return np.unique(np.ceil(np.arange(k) * n / k).astype(np.int64))


def _ce_bins(n: int, n_bins: int) -> int:
    """Bins of the debiased CE over ``n`` scores: at most ``n // 2`` so that every bin holds ≥ 2."""
    return max(1, min(n_bins, n // 2))


def _ece_sorted(ps: np.ndarray, ys: np.ndarray, n_bins: int) -> np.ndarray:
    """Plug-in ECE of each row of ``ps`` / ``ys`` (R, N), already sorted by score."""
    n = ps.shape[1]
    return np.abs(np.add.reduceat(ys - ps, _bin_starts(n, n_bins), axis=1)).sum(axis=1) / n


def _ce2_sorted(ps: np.ndarray, ys: np.ndarray, n_bins: int) -> np.ndarray:
    """Debiased CE² of each row of ``ps`` / ``ys`` (R, N) (or ``ps`` (N,) shared by every row of
    ``ys``), already sorted by score; NaN when N < 2 (module docstring)."""
    n = ys.shape[-1]
    if n < 2:
        return np.full(ys.shape[0], np.nan)
    starts = _bin_starts(n, _ce_bins(n, n_bins))
    counts = np.diff(np.append(starts, n)).astype(np.float64)
    p_bar = np.add.reduceat(ps, starts, axis=-1) / counts
    y_bar = np.add.reduceat(ys, starts, axis=1) / counts
    return np.sum(counts / n * ((y_bar - p_bar) ** 2 - y_bar * (1.0 - y_bar) / (counts - 1.0)), axis=1)


def _sorted_rows(p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(p, axis=1, kind="stable")
    return np.take_along_axis(p, order, axis=1), np.take_along_axis(y, order, axis=1)


def ece_binary(p: np.ndarray, y: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """Plug-in expected calibration error (probability units) of ``p`` (N,) against outcomes ``y``
    (N,) 0/1, with ``n_bins`` equal-mass bins (fewer when N < n_bins); biased upward (module
    docstring)."""
    if len(p) == 0:
        return float("nan")
    ps, ys = _sorted_rows(np.asarray(p, np.float64)[None], np.asarray(y, np.float64)[None])
    return float(_ece_sorted(ps, ys, n_bins)[0])


def ce2_binary(p: np.ndarray, y: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """Debiased squared calibration error CE² (squared probability units; may be < 0) of ``p``
    (N,) against 0/1 outcomes ``y`` (N,), equal-mass bins (module docstring); NaN when N < 2."""
    ps, ys = _sorted_rows(np.asarray(p, np.float64)[None], np.asarray(y, np.float64)[None])
    return float(_ce2_sorted(ps, ys, n_bins)[0])


def ce_binary(p: np.ndarray, y: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """Root-mean-square calibration error ``sqrt(max(0, CE²))`` (probability units) of
    :func:`ce2_binary`."""
    return ce_from_ce2(ce2_binary(p, y, n_bins))


def ce_from_ce2(ce2: float) -> float:
    """CE (probability units) from a debiased CE²: ``sqrt(max(0, CE²))`` (NaN stays NaN)."""
    return float("nan") if math.isnan(ce2) else math.sqrt(max(0.0, ce2))


def reliability_curve(p: np.ndarray, y: np.ndarray, n_bins: int = DEFAULT_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(mean predicted probability, observed frequency) of each equal-mass bin: the points of a
    reliability diagram (the diagonal is perfect calibration)."""
    p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
    order = np.argsort(p, kind="stable")
    starts = _bin_starts(len(p), n_bins)
    counts = np.diff(np.append(starts, len(p)))
    return np.add.reduceat(p[order], starts) / counts, np.add.reduceat(y[order], starts) / counts


def _binary_rows(p: np.ndarray, y: np.ndarray, n_bins: int) -> np.ndarray:
    """(ECE, CE², Brier, NLL) of each row of ``p`` / ``y`` (R, N): (R, 4)."""
    q = np.clip(p, EPS, 1 - EPS)
    nll = -np.mean(y * np.log(q) + (1 - y) * np.log1p(-q), axis=1)
    ps, ys = _sorted_rows(p, y)
    return np.stack([_ece_sorted(ps, ys, n_bins), _ce2_sorted(ps, ys, n_bins), np.mean((p - y) ** 2, axis=1), nll],
                    axis=1)


def _resampled_rows(p: np.ndarray, y: np.ndarray, index: np.ndarray, n_bins: int) -> np.ndarray:
    """:func:`_binary_rows` of the resamples ``index`` (R, N) of ``p`` / ``y`` (N,), without an
    argsort per resample: the rows are ranked by score once, and each resample's ranks are sorted
    as small integers (numpy's radix sort: linear in N). Ties in score keep the order of the
    first ranking."""
    n = len(p)
    if n > np.iinfo(np.uint32).max:
        return _binary_rows(p[index], y[index], n_bins)
    order = np.argsort(p, kind="stable")
    rank = np.empty(n, np.uint16 if n <= np.iinfo(np.uint16).max else np.uint32)
    rank[order] = np.arange(n)
    sorted_ranks = np.sort(rank[index], axis=1, kind="stable")
    ps, ys = p[order][sorted_ranks], y[order][sorted_ranks]
    q = np.clip(ps, EPS, 1 - EPS)
    nll = -np.mean(ys * np.log(q) + (1 - ys) * np.log1p(-q), axis=1)
    return np.stack([_ece_sorted(ps, ys, n_bins), _ce2_sorted(ps, ys, n_bins), np.mean((ps - ys) ** 2, axis=1), nll],
                    axis=1)


def _multiclass_rows(scores: np.ndarray, targets: np.ndarray, index: np.ndarray, n_bins: int) -> np.ndarray:
    """(ECE, CE², Brier, NLL) of each resample ``index`` (R, N) of a multiclass task: (R, 4)."""
    y = targets.astype(np.int64)[index]
    s = scores[index]  # (R, N, C)
    conf, top = s.max(axis=2), s.argmax(axis=2)
    ps, ys = _sorted_rows(conf, (top == y).astype(np.float64))
    p_true = np.clip(np.take_along_axis(s, y[..., None], axis=2)[..., 0], EPS, 1.0)
    onehot = np.eye(scores.shape[1])[y]
    return np.stack([_ece_sorted(ps, ys, n_bins), _ce2_sorted(ps, ys, n_bins),
                     np.mean(np.sum((s - onehot) ** 2, axis=2), axis=1), -np.mean(np.log(p_true), axis=1)], axis=1)


def _measure_rows(task: TaskSpec, scores: np.ndarray, targets: np.ndarray, mask: np.ndarray | None,
                  index: np.ndarray, n_bins: int) -> np.ndarray:
    """(ECE, CE², Brier, NLL) of each resample of the images, ``index`` (R, N) row indices: (R, 4)."""
    if task.kind == "multiclass":
        return _multiclass_rows(scores, targets, index, n_bins)
    if task.kind == "binary":
        p, y = scores.reshape(-1), targets.reshape(-1).astype(np.float64)
        return _resampled_rows(p, y, index, n_bins)
    if mask is None or mask.all():  # multilabel, every label known: each label's column at once
        return np.mean([_resampled_rows(scores[:, j], targets[:, j].astype(np.float64), index, n_bins)
                        for j in range(scores.shape[1])], axis=0)
    out = np.empty((len(index), len(COLUMNS)))  # multilabel with unknown labels: each resample's known rows differ
    for r, rows in enumerate(index):
        per = [_binary_rows(p[None], y[None], n_bins)[0]
               for p, y in _binary_columns(task, scores[rows], targets[rows], mask[rows]) if len(p)]
        out[r] = np.mean(per, axis=0)
    return out


def _arrays(scores: Any, targets: Any, mask: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets)
    m = None if mask is None or not np.size(mask) else np.asarray(mask, bool)
    if len(s) != len(t):
        raise ValueError(f"{len(s)} scores but {len(t)} targets")
    if not len(s):
        raise ValueError("no scores to measure calibration on")
    return s, t, m


def calibration_replicates(task: TaskSpec, scores: Any, targets: Any, mask: Any = None, *,
                           n_bins: int = DEFAULT_BINS, n_boot: int = 1000,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(point (4,), bootstrap replicates (n_boot, 4)) of the :data:`COLUMNS` ECE, CE², Brier and
    NLL. The resamples of the images depend only on ``seed`` and N, so runs scored on the same
    test images (the seeds of one cell, the cells of one dataset) get aligned replicates."""
    s, t, m = _arrays(scores, targets, mask)
    point = _measure_rows(task, s, t, m, np.arange(len(s))[None], n_bins)[0]
    rng = np.random.default_rng(seed)
    chunks = [_measure_rows(task, s, t, m, rng.integers(0, len(s), (min(_CHUNK, n_boot - i), len(s))), n_bins)
              for i in range(0, n_boot, _CHUNK)]
    return point, np.concatenate(chunks) if chunks else np.empty((0, len(COLUMNS)))


def summarize(points: np.ndarray, replicates: np.ndarray | None, level: float = 0.95) -> dict[str, Interval]:
    """The :data:`MEASURES` of a cell from its seeds' :func:`calibration_replicates`: ``points``
    (S, 4) and aligned ``replicates`` (S, B, 4) or ``None``. Each value is the mean over seeds;
    CE's is ``sqrt(max(0, mean CE²))``. Intervals at ``level`` come from
    :func:`~transfusion.stats.seeds.seed_estimate` (seed variance + test-image variance the seeds
    share): CE's on CE², cut at 0, then square-rooted; Brier's and NLL's cut at 0. ECE (plug-in,
    biased) gets none, nor does anything without replicates (or with fewer than 2 defined)."""
    pts = np.atleast_2d(np.asarray(points, np.float64))
    out = {"ece": Interval(float(pts[:, 0].mean()))}
    for j, name in enumerate(COLUMNS[1:], start=1):
        mean = float(pts[:, j].mean())
        lo = hi = None
        reps = None if replicates is None else np.asarray(replicates, np.float64)[:, :, j]
        if reps is not None:  # a resample can leave a measure undefined (a label with < 2 known rows)
            reps = reps[:, np.all(np.isfinite(reps), axis=0)]
        if reps is not None and reps.shape[1] >= 2 and np.all(np.isfinite(pts[:, j])):
            lo, hi = (max(0.0, e) for e in seed_estimate(pts[:, j], reps).interval(level))
        if name == "ce2":
            out["ce"] = Interval(ce_from_ce2(mean), None if lo is None else math.sqrt(lo),
                                 None if hi is None else math.sqrt(hi))
        else:
            out[name] = Interval(mean, lo, hi)
    return out


def calibration(task: TaskSpec, scores: Any, targets: Any, mask: Any = None, *, n_bins: int = DEFAULT_BINS,
                n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, Interval]:
    """ECE (plug-in, no interval), CE (debiased, root-mean-square), Brier and NLL — the keys of
    :data:`MEASURES` — of ``scores`` against ``targets``; CE, Brier and NLL with a normal interval
    at ``level`` from ``n_boot`` bootstrap resamples of the images (rows), which contains its
    estimate (CE's: on CE², cut at 0, square-rooted); ``n_boot=0`` gives point estimates only."""
    point, reps = calibration_replicates(task, scores, targets, mask, n_bins=n_bins, n_boot=max(0, n_boot), seed=seed)
    return summarize(point[None], reps[None] if len(reps) >= 2 else None, level)


# ------------------------------------------------------------------ noise floor

def _consistency_columns(task: TaskSpec, s: np.ndarray,
                         m: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Per binary column (P(positive); each label's known rows; the top-label confidence for
    multiclass): (its scores sorted, their rows in that order, the column of uniforms it uses)."""
    if task.kind == "multilabel":
        cols = [(s[:, j], np.flatnonzero(_known(m, len(s), j)), j) for j in range(s.shape[1])]
    else:
        cols = [(s.max(axis=1) if task.kind == "multiclass" else s.reshape(-1), np.arange(len(s)), 0)]
    out = []
    for p, rows, j in cols:
        order = rows[np.argsort(p[rows], kind="stable")]
        out.append((p[order], order, j))
    return out


def consistency_ce2(task: TaskSpec, scores: Any, mask: Any = None, *, n_bins: int = DEFAULT_BINS,
                    n_draws: int = FLOOR_DRAWS, seed: int = 0) -> np.ndarray:
    """(n_draws,) debiased CE² (squared probability units) of ``scores`` against outcomes drawn
    from the scores themselves — y* = [u < p], u uniform — i.e. of a perfectly calibrated model
    with these scores (consistency resampling, Bröcker & Smith 2007). The uniforms depend only on
    ``seed`` and the test size, one per image (and label): runs scored on the same test images
    draw with the same u, as they share the same real outcomes."""
    s = np.asarray(scores, dtype=np.float64)
    m = None if mask is None or not np.size(mask) else np.asarray(mask, bool)
    cols = [c for c in _consistency_columns(task, s, m) if len(c[0])]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(0, n_draws, _CHUNK):
        u = rng.random((min(_CHUNK, n_draws - i), len(s), s.shape[1] if task.kind == "multilabel" else 1))
        out.append(np.mean([_ce2_sorted(p, (u[:, rows, j] < p).astype(np.float64), n_bins) for p, rows, j in cols],
                           axis=0))
    return np.concatenate(out) if out else np.empty(0)


def noise_floor(draws: np.ndarray, level: float = 0.95) -> float:
    """The CE (probability units) a perfectly calibrated model stays under with probability
    ``level``: ``sqrt(max(0, quantile))`` of the seed mean of :func:`consistency_ce2` draws,
    ``draws`` (n_draws,) for one run or (S, n_draws) for the seeds of a cell (same uniforms)."""
    d = np.atleast_2d(np.asarray(draws, np.float64)).mean(axis=0)
    return ce_from_ce2(float(np.quantile(d, level))) if d.size else float("nan")


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


def nll(task: TaskSpec, scores: Any, targets: Any, mask: Any = None) -> float:
    """Negative log-likelihood (nats per image; multilabel: macro mean over labels of their known
    rows) of ``scores`` against ``targets``."""
    s, t, m = _arrays(scores, targets, mask)
    if task.kind == "multiclass":
        return float(-np.mean(np.log(np.clip(s[np.arange(len(s)), t.astype(np.int64)], EPS, 1.0))))
    per = []
    for p, y in _binary_columns(task, s, t, m):
        if len(p):
            q = np.clip(p, EPS, 1 - EPS)
            per.append(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))
    return float(np.mean(per))


def fit_temperature(task: TaskSpec, scores: Any, targets: Any, mask: Any = None) -> float:
    """The temperature T (one for the whole task, shared by every label) that minimises the NLL
    of ``scores`` — the validation split's — after :func:`apply_temperature`; searched over
    log T in [log 0.05, log 20]. T > 1 softens over-confident scores, T < 1 sharpens."""
    from scipy.optimize import minimize_scalar

    s, t, m = _arrays(scores, targets, mask)

    def objective(log_t: float) -> float:
        return nll(task, apply_temperature(task, s, float(np.exp(log_t))), t, m)

    res = minimize_scalar(objective, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))
