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

With one seed there is no training variance to measure: only the test-image interval exists, and
a verdict needs :data:`MIN_SEEDS` seeds (:mod:`.verdicts`).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class SeedEstimate:
    """The mean over seeds of a per-seed quantity (AUC, or a paired AUC difference), in metric
    units, with its uncertainty. ``sd_seeds`` is ``None`` for one seed; ``se`` and ``df`` then
    cover the test sample only (``training_measured`` is False)."""

    mean: float
    n_seeds: int
    per_seed: tuple[float, ...]
    sd_seeds: float | None
    se_test: float
    se: float
    df: float

    @property
    def training_measured(self) -> bool:
        return self.n_seeds >= 2

    @property
    def min(self) -> float:
        return min(self.per_seed)

    @property
    def max(self) -> float:
        return max(self.per_seed)

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """``mean ± t_{df}((1 + level) / 2) · se`` (a normal quantile when ``df`` is infinite)."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}")
        from scipy import stats as _sp

        q = (1.0 + level) / 2.0
        z = float(_sp.norm.ppf(q)) if math.isinf(self.df) else float(_sp.t.ppf(q, self.df))
        return self.mean - z * self.se, self.mean + z * self.se


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
    seed_var = sd * sd / n
    se = math.sqrt(seed_var + se_test * se_test)
    df = math.inf if seed_var == 0.0 else se ** 4 * (n - 1) / seed_var ** 2
    return SeedEstimate(float(x.mean()), n, tuple(float(v) for v in x), sd, se_test, se, df)


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


class ReplicateCache:
    """AUC bootstrap replicates of each run over its test images, computed once and shared by the
    summary rows and the paired comparisons. ``predictions``: run id → record with ``scores``,
    ``targets``, ``mask`` (or ``None`` when the store lacks them). Every run uses the same
    resampling seed, so runs scored on the same test rows get aligned replicates."""

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
                self._reps[rid] = bootstrap(task, p["scores"], p["targets"], p["mask"], metric="auc",
                                            n_boot=self.n_boot, seed=self.seed).replicates
        reps = [self._reps[r] for r in run_ids]
        if len({len(r) for r in reps}) != 1:
            raise ValueError("bootstrap replicates do not line up across runs (different test targets?)")
        return np.stack(reps)
