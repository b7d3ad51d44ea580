"""Intervals that cover training randomness: several seeds of one cell, scored on the same test
images.

A seed's AUC varies with the test sample (resampling the images) and with training
(initialisation, data order, bf16 rounding); :func:`two_level_interval` resamples both.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transfusion.data.base import TaskSpec

from .bootstrap import bootstrap


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


def two_level_interval(replicates: np.ndarray, *, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of a mean over seeds from aligned bootstrap replicates.

    ``replicates``: (S, B) — replicate b of seed s, all seeds scored on the *same* resampled
    test rows b. Each of the B outputs averages seeds drawn with replacement (S draws) at that
    replicate, so the interval reflects both test-set sampling and seed-to-seed spread.
    One seed reduces to the plain percentile interval of its replicates.
    """
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
