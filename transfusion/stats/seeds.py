"""Estimates over seeds that account for training randomness as well as the test sample.

Several seeds of one cell (or seed pairs of a comparison) are scored on the same test images. The
per-seed value ``x_s`` (an AUC, a paired AUC difference, a calibration error) is then

    x_s = μ + a_s + e_s,        e_s = e_shared + e_own,s

with ``a_s`` the training noise of seed s (initialisation, data order, another CPU's rounding),
``e_shared`` the part of the test-sample error every seed shares (the same hard images hurt every
seed), and ``e_own,s`` the part that differs from seed to seed. The seed-to-seed variance ``s²``
(ddof 1) estimates ``Var(a) + Var(e_own)`` with ``n − 1`` degrees of freedom; the shared part
does not vary between seeds, so no number of seeds averages it away, and it is measured by the
test-image bootstrap: with aligned replicates (the same resampled rows for every seed,
:func:`aligned_replicates`) it is the mean **between-seed covariance** of the replicates, ``c̄``.
The variance of the seed mean is therefore, without counting any part twice,

    Var(x̄) = s² / n + c̄

(the earlier ``s² / n + SE_test²`` counted ``Var(e_own) / n`` twice: 5–17% too wide for CBR-Small
and 38–69% for ResNet18 on the quick suite's predictions). A difference of two cells that do not
share seeds has one seed part per cell.

**Interval.** The seed part is estimated with ``n − 1`` degrees of freedom, the shared test part
is known (1000 resamples). The half-width combines each part's own quantile in quadrature,

    H = sqrt(z² · c̄ + Σ_k t²(df_k) · v_k)           (v_k = s_k² / n_k, df_k = n_k − 1)

— exact when either part vanishes (Student's t when training noise dominates, the normal when
the test sample does) and conservative in between: simulated error rates 0.5–1.0× nominal for 3
and 5 seeds at every ratio of the two parts (``docs/report.md``). Two plug-in alternatives
under-cover: Welch–Satterthwaite degrees of freedom grow without bound when ``s²`` is small by
chance (a 3-seed cell showed df ≈ 462) — exactly when the interval is already too narrow — and
``t(n − 1) · sqrt(s²/n + c̄)`` is needlessly wide when the test part dominates.

With one seed there is no training variance to measure: the interval covers the test sample only,
and a verdict needs :data:`MIN_SEEDS` seeds (:mod:`.comparisons`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from transfusion.data.base import TaskSpec

from .bootstrap import bootstrap

#: seeds a cell or comparison needs before a better / worse / equivalent verdict is given
MIN_SEEDS = 3


def same_targets(preds: Sequence[dict]) -> bool:
    """Whether every prediction record (``targets``, ``mask``) was scored on the same test rows."""
    t0, m0 = preds[0]["targets"], preds[0]["mask"]
    for p in preds[1:]:
        if not np.array_equal(p["targets"], t0):
            return False
        if (p["mask"] is None) != (m0 is None) or (m0 is not None and not np.array_equal(p["mask"], m0)):
            return False
    return True


def aligned_replicates(task: TaskSpec, preds: Sequence[dict], *, n_boot: int, seed: int) -> np.ndarray:
    """(S, B) AUC replicates of several runs on the same resampled test rows.

    :func:`~transfusion.stats.bootstrap` with one seed draws the same resamples for every run
    of a dataset, and which replicates are degenerate depends on the targets only, so the kept
    replicates line up run by run. ``preds``: records with ``scores``, ``targets``, ``mask``."""
    reps = [bootstrap(task, p["scores"], p["targets"], p["mask"], metric="auc", n_boot=n_boot, seed=seed).replicates
            for p in preds]
    if len({len(r) for r in reps}) != 1:
        raise ValueError("bootstrap replicates do not line up across runs (different test targets?)")
    return np.stack(reps)


@functools.lru_cache(maxsize=4096)
def quantile(level: float, df: float) -> float:
    """Two-sided quantile ``(1 + level) / 2`` of Student's t on ``df`` (the normal when ``df`` is
    infinite)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}")
    from scipy import stats as _sp

    q = (1.0 + level) / 2.0
    return float(_sp.norm.ppf(q)) if math.isinf(df) else float(_sp.t.ppf(q, df))


@dataclass(frozen=True)
class SeedEstimate:
    """A mean over seeds (or a difference of such means) in the units of its values, with its
    uncertainty split into what seeds can average away and what they cannot (module docstring).

    ``components``: the seed parts ``(v, df)`` — variance of the mean contributed by one group of
    seeds (``s² / n``) and its degrees of freedom (``n − 1``); empty for one seed. ``var_shared``:
    the test variance every seed shares (``c̄``; for one seed, the whole test variance).
    ``se_test``: the bootstrap SD of the mean over test resamples (shared and own parts together:
    informative, not added). ``sd_seeds``: the seed-to-seed SD of the values (of the paired
    differences; ``None`` for one seed or a difference of two cells)."""

    mean: float
    n_seeds: int
    per_seed: tuple[float, ...]
    sd_seeds: float | None
    se_test: float
    var_shared: float
    components: tuple[tuple[float, int], ...] = ()

    @property
    def training_measured(self) -> bool:
        return bool(self.components)

    @property
    def var_seed(self) -> float:
        """Variance of the mean from the seeds (training and seed-specific test noise)."""
        return float(sum(v for v, _ in self.components))

    @property
    def se(self) -> float:
        """Standard error of the mean: ``sqrt(Σ v_k + c̄)``."""
        return math.sqrt(self.var_seed + self.var_shared)

    @property
    def df(self) -> float:
        """The smallest seed degrees of freedom (``n − 1``); infinite when no seed part exists."""
        return float(min(d for _, d in self.components)) if self.components else math.inf

    @property
    def min(self) -> float:
        return min(self.per_seed) if self.per_seed else self.mean

    @property
    def max(self) -> float:
        return max(self.per_seed) if self.per_seed else self.mean

    def half_width(self, level: float = 0.95) -> float:
        """``sqrt(z² c̄ + Σ t²(df_k) v_k)`` at ``level`` (module docstring)."""
        z = quantile(level, math.inf)
        return math.sqrt(z * z * self.var_shared + sum(quantile(level, d) ** 2 * v for v, d in self.components))

    def interval(self, level: float = 0.95, within: tuple[float, float] | None = None) -> tuple[float, float]:
        """``mean ± half_width(level)``, cut to ``within`` = (low, high) when given: the range the
        quantity cannot leave (an AUC's [0, 1]); cutting loses no coverage."""
        h = self.half_width(level)
        lo, hi = self.mean - h, self.mean + h
        if within is not None:
            lo, hi = max(lo, within[0]), min(hi, within[1])
        return lo, hi


def _check(per_seed: Sequence[float], replicates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(per_seed, dtype=np.float64)
    r = np.asarray(replicates, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"per_seed must be a non-empty (S,) array, got shape {x.shape}")
    if r.ndim != 2 or r.shape[0] != x.size or r.shape[1] < 2:
        raise ValueError(f"replicates must be (S, B) = ({x.size}, B ≥ 2), got shape {r.shape}")
    return x, r


def shared_test_variance(replicates: np.ndarray) -> float:
    """``c̄``: the mean covariance between the aligned replicates (S, B) of different seeds, ≥ 0
    (the test noise every seed shares); for one seed, its replicates' variance."""
    r = np.asarray(replicates, dtype=np.float64)
    s = r.shape[0]
    if s == 1:
        return float(np.var(r[0], ddof=1))
    var_mean = float(np.var(r.mean(axis=0), ddof=1))  # = v̄/S + (S − 1)/S · c̄
    v_bar = float(np.mean(np.var(r, axis=1, ddof=1)))
    return max(0.0, (s * var_mean - v_bar) / (s - 1))


def seed_estimate(per_seed: Sequence[float], replicates: np.ndarray) -> SeedEstimate:
    """The seed mean of ``per_seed`` (S,) values with ``replicates`` (S, B): the same values on B
    aligned bootstrap resamples of the test images (see the module docstring)."""
    x, r = _check(per_seed, replicates)
    n = x.size
    se_test = float(np.std(r.mean(axis=0), ddof=1))
    values = tuple(float(v) for v in x)
    if n == 1:
        return SeedEstimate(values[0], 1, values, None, se_test, se_test ** 2)
    sd = float(np.std(x, ddof=1))
    return SeedEstimate(float(x.mean()), n, values, sd, se_test, shared_test_variance(r), ((sd * sd / n, n - 1),))


def difference(a: tuple[Sequence[float], np.ndarray], b: tuple[Sequence[float], np.ndarray]) -> SeedEstimate:
    """mean(a) − mean(b) of two cells whose seeds are *not* paired (other models, say), each given
    as (per-seed values (S,), aligned replicates (S, B)) on the same test resamples. Seed parts:
    one per cell; shared test part: ``c̄_a + c̄_b − 2 c̄_ab`` (``c̄_ab`` the mean covariance
    between a seed of a and a seed of b), the test noise the two means do not share. Cells of
    one seed contribute no seed part (training variance unmeasured)."""
    xa, ra = _check(*a)
    xb, rb = _check(*b)
    if ra.shape[1] != rb.shape[1]:
        raise ValueError(f"replicates do not line up: {ra.shape[1]} vs {rb.shape[1]} resamples")
    da = ra.mean(axis=0) - rb.mean(axis=0)
    cross = float(np.mean((ra - ra.mean(axis=1, keepdims=True)) @ (rb - rb.mean(axis=1, keepdims=True)).T)
                  / (ra.shape[1] - 1))
    shared = max(0.0, shared_test_variance(ra) + shared_test_variance(rb) - 2.0 * cross)
    comps = tuple((float(np.var(x, ddof=1)) / x.size, x.size - 1) for x in (xa, xb) if x.size > 1)
    return SeedEstimate(float(xa.mean() - xb.mean()), min(xa.size, xb.size), (), None,
                        float(np.std(da, ddof=1)), shared, comps)


_REPLICATES: dict[tuple, np.ndarray] = {}  # process-wide: a bench's summary and its report share them


def _replicates_key(task: TaskSpec, p: dict, n_boot: int, seed: int) -> tuple:
    import hashlib

    h = hashlib.blake2b(repr(task).encode(), digest_size=16)
    for k in ("scores", "targets", "mask"):
        if p[k] is None:
            h.update(f"{k}:none".encode())
            continue
        a = np.ascontiguousarray(p[k])
        h.update(f"{k}:{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest(), n_boot, seed


class ReplicateCache:
    """AUC bootstrap replicates of each run over its test images, computed once per process for
    the same predictions and resampling (so a bench's summary and its report share them) and
    shared by the summary rows and the paired comparisons. ``predictions``: run id → record with
    ``scores``, ``targets``, ``mask`` (or ``None`` when the store lacks them). Every run uses the
    same resampling seed, so runs scored on the same test rows get aligned replicates."""

    def __init__(self, predictions: dict[str, dict | None], *, n_boot: int = 1000, seed: int = 0) -> None:
        self.predictions, self.n_boot, self.seed = predictions, int(n_boot), int(seed)
        self._reps: dict[str, np.ndarray] = {}

    def replicates(self, run_ids: Sequence[str], task: TaskSpec) -> np.ndarray:
        """(S, B) aligned replicates of ``run_ids``; ``ValueError`` saying why when predictions are
        missing or the runs were scored on different test images."""
        preds = [self.predictions.get(r) for r in run_ids]
        if any(p is None for p in preds):
            raise ValueError("predictions missing from the store")
        if not same_targets(preds):
            raise ValueError("the runs were scored on different test images")
        for rid, p in zip(run_ids, preds):
            if rid not in self._reps:
                key = _replicates_key(task, p, self.n_boot, self.seed)
                if key not in _REPLICATES:
                    _REPLICATES[key] = bootstrap(task, p["scores"], p["targets"], p["mask"], metric="auc",
                                                 n_boot=self.n_boot, seed=self.seed).replicates
                self._reps[rid] = _REPLICATES[key]
        reps = [self._reps[r] for r in run_ids]
        if len({len(r) for r in reps}) != 1:
            raise ValueError("bootstrap replicates do not line up across runs (different test targets?)")
        return np.stack(reps)
