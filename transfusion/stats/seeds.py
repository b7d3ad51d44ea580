"""Estimates over seeds that account for training randomness as well as the test sample.

Several seeds of one cell (or seed pairs of a comparison) are scored on the same test images. A
seed-averaged quantity varies with training — initialisation, data order, the bf16 rounding of
another CPU — and with the test sample. :func:`seed_estimate` combines the two:

    SE² = s² / n + SE_test²

with ``s`` the seed-to-seed standard deviation (ddof 1) of the per-seed values, ``n`` the number
of seeds and ``SE_test`` the bootstrap standard error of the seed mean over resampled test images
(the same rows for every seed: :func:`aligned_replicates`). The interval is ``mean ± t·SE`` with
Welch–Satterthwaite degrees of freedom ``df = SE⁴ (n − 1) / (s² / n)²`` (the bootstrap part taken
as known), between ``n − 1`` when training variance dominates and ∞ when the test sample does.
The per-seed spread already holds the part of the test noise that differs between seeds, so the
sum counts it twice: the interval errs on the wide side.

With three seeds ``s`` rests on two degrees of freedom: the t quantile is large and the interval's
width is itself noisy, so a verdict read from it could flip on a rerun. :func:`pool_seed_variance`
replaces each ``s²`` by the variance pooled over comparisons whose training noise is alike (the
regimes of one model on one dataset): ``s_p² = Σ (n_k − 1) s_k² / Σ (n_k − 1)`` with
``Σ (n_k − 1)`` degrees of freedom in the Welch–Satterthwaite formula — the residual variance of a
one-way layout, which assumes that the seed-to-seed spread of a difference does not depend on the
regime.

With one seed there is no training variance to measure: only the test-image interval exists, and
a verdict needs :data:`MIN_SEEDS` seeds (:mod:`.verdicts`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class SeedEstimate:
    """The mean over seeds of a per-seed quantity (AUC, or a paired AUC difference), in metric
    units, with its uncertainty. ``sd_seeds`` is ``None`` for one seed; ``se`` and ``df`` then
    cover the test sample only (``training_measured`` is False). ``sd_used`` is the seed SD that
    ``se`` was computed from: ``sd_seeds``, or the pooled SD after :func:`pool_seed_variance`
    (``pooled_over`` estimates, ``df_seed`` its degrees of freedom)."""

    mean: float
    n_seeds: int
    per_seed: tuple[float, ...]
    sd_seeds: float | None
    se_test: float
    se: float
    df: float
    sd_used: float | None = None
    df_seed: int = 0
    pooled_over: int = 1

    @property
    def training_measured(self) -> bool:
        return self.n_seeds >= 2

    @property
    def min(self) -> float:
        return min(self.per_seed)

    @property
    def max(self) -> float:
        return max(self.per_seed)

    def interval(self, level: float = 0.95, within: tuple[float, float] | None = None) -> tuple[float, float]:
        """``mean ± t_{df}((1 + level) / 2) · se`` (a normal quantile when ``df`` is infinite),
        cut to ``within`` = (low, high) when given: the range the quantity cannot leave (an AUC's
        [0, 1]). Cutting loses no coverage, as the true value lies inside that range."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}")
        from scipy import stats as _sp

        q = (1.0 + level) / 2.0
        z = float(_sp.norm.ppf(q)) if math.isinf(self.df) else float(_sp.t.ppf(q, self.df))
        lo, hi = self.mean - z * self.se, self.mean + z * self.se
        if within is not None:
            lo, hi = max(lo, within[0]), min(hi, within[1])
        return lo, hi


def seed_estimate(per_seed: Sequence[float], replicates: np.ndarray) -> SeedEstimate:
    """The seed mean of ``per_seed`` (S,) values with ``replicates`` (S, B): the same values on B
    aligned bootstrap resamples of the test images (see the module docstring)."""
    x = np.asarray(per_seed, dtype=np.float64)
    r = np.asarray(replicates, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"per_seed must be a non-empty (S,) array, got shape {x.shape}")
    if r.ndim != 2 or r.shape[0] != x.size or r.shape[1] < 2:
        raise ValueError(f"replicates must be (S, B) = ({x.size}, B ≥ 2), got shape {r.shape}")
    n = x.size
    se_test = float(np.std(r.mean(axis=0), ddof=1))
    if n == 1:
        return SeedEstimate(float(x[0]), 1, (float(x[0]),), None, se_test, se_test, math.inf)
    sd = float(np.std(x, ddof=1))
    se, df = _combine(sd, n, n - 1, se_test)
    return SeedEstimate(float(x.mean()), n, tuple(float(v) for v in x), sd, se_test, se, df, sd, n - 1)


def _combine(sd: float, n: int, df_seed: int, se_test: float) -> tuple[float, float]:
    """SE² = sd² / n + SE_test² and its Welch–Satterthwaite degrees of freedom."""
    seed_var = sd * sd / n
    se = math.sqrt(seed_var + se_test * se_test)
    return se, (math.inf if seed_var == 0.0 else se ** 4 * df_seed / seed_var ** 2)


def pool_seed_variance(estimates: Sequence[SeedEstimate]) -> list[SeedEstimate]:
    """``estimates`` with their seed variance replaced by the pooled one (see the module
    docstring); estimates of one seed, which measured none, are returned unchanged and do not
    contribute. Use it on estimates whose training noise is alike (one model, one dataset)."""
    measured = [e for e in estimates if e.n_seeds >= 2]
    df_seed = sum(e.n_seeds - 1 for e in measured)
    if len(measured) < 2:
        return list(estimates)
    sd_p = math.sqrt(sum((e.n_seeds - 1) * e.sd_seeds ** 2 for e in measured) / df_seed)
    out = []
    for e in estimates:
        if e.n_seeds < 2:
            out.append(e)
            continue
        se, df = _combine(sd_p, e.n_seeds, df_seed, e.se_test)
        out.append(replace(e, se=se, df=df, sd_used=sd_p, df_seed=df_seed, pooled_over=len(measured)))
    return out


def two_level_interval(replicates: np.ndarray, *, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of a mean over seeds from aligned bootstrap replicates (S, B), resampling
    the seeds with replacement inside each test replicate. Kept for comparison with
    :func:`seed_estimate`: with 3 seeds a bootstrap over seeds has only 10 distinct resamples and
    its interval is too narrow, which is why the report uses the t interval."""
    r = np.asarray(replicates, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] == 0:
        raise ValueError(f"replicates must be (seeds, replicates) with replicates > 0, got shape {r.shape}")
    s, b = r.shape
    if s == 1:
        vals = r[0]
    else:
        pick = np.random.default_rng([seed, 0x5EED]).integers(0, s, size=(b, s))
        vals = r[pick, np.arange(b)[:, None]].mean(axis=1)
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


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
