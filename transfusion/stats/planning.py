"""Planning a suite: what a family of comparisons can detect at a given number of seeds, and how
many seeds a margin needs — with the same intervals and rules the comparison engine judges by
(:mod:`.comparisons`, :mod:`.seeds`).

A comparison's noise is two numbers (metric units, AUC 0..1): ``seed_sd``, the SD of one seed
pair's difference (training noise and each seed's own test noise; ``diff_sd`` in ``paired.csv``),
and ``test_se``, the SD of the test error every seed shares (``se_shared``). At ``n`` seeds the
mean difference is drawn as ``N(d, seed_sd²/n + test_se²)`` and its seed SD as
``seed_sd · sqrt(χ²(n−1)/(n−1))``; a draw is judged like the engine judges a family of ``k``.
Probabilities are Monte Carlo averages over ``draws`` seeded draws (common random numbers across
differences, so the power curve is smooth and the search stable).

- **Minimum detectable difference** (MDD): the smallest true difference declared *better* with
  probability ≥ ``power``.
- **Reachable margin**: the smallest margin within which a true difference of 0 is declared
  within the margin (equivalent) with probability ≥ ``power``.
- **Seeds for a margin**: the fewest seeds at which a true difference ``assume`` (default 0) is
  declared within ``margin`` with probability ≥ ``power``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .comparisons import ALPHA, levels
from .seeds import quantile

#: the most seeds :func:`seeds_for_margin` searches
MAX_SEEDS = 200


@dataclass(frozen=True)
class Noise:
    """A comparison's noise, metric units: ``seed_sd`` of one seed pair's difference, ``test_se``
    of the test error every seed shares."""

    seed_sd: float
    test_se: float

    def __post_init__(self) -> None:
        for name in ("seed_sd", "test_se"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and 0 <= v < 1):
                raise ValueError(f"{name} is an SD in metric units (AUC 0..1; 1 AUC point = 0.01), a number in "
                                 f"[0, 1); got {v!r}")


def _draws(n: int, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, n, 0x91A4])
    return rng.standard_normal(draws), rng.chisquare(max(n - 1, 1), draws) / max(n - 1, 1)


def _half_widths(noise: Noise, n: int, k: int, w: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    sup, eq = levels(k, alpha)
    v = noise.seed_sd ** 2 * w / n
    c = noise.test_se ** 2
    return (np.sqrt(quantile(sup, math.inf) ** 2 * c + quantile(sup, n - 1) ** 2 * v),
            np.sqrt(quantile(eq, math.inf) ** 2 * c + quantile(eq, n - 1) ** 2 * v))


def _check(n: int, k: int, power: float) -> None:
    if int(n) != n or n < 2:
        raise ValueError(f"seeds must be a whole number >= 2 (one seed measures no training variance), got {n}")
    if int(k) != k or k < 1:
        raise ValueError(f"a family needs at least one comparison, got k={k}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), e.g. 0.8; got {power}")


def power_better(d: float, noise: Noise, n: int, k: int, *, alpha: float = ALPHA, draws: int = 20000,
                 seed: int = 0) -> float:
    """Probability that a true difference ``d`` is declared better at ``n`` seeds in a family of ``k``."""
    _check(n, k, 0.5)
    z, w = _draws(n, draws, seed)
    hs, _ = _half_widths(noise, n, k, w, alpha)
    mean = d + z * math.sqrt(noise.seed_sd ** 2 / n + noise.test_se ** 2)
    return float(np.mean(mean - hs > 0))


def power_within(margin: float, noise: Noise, n: int, k: int, *, d: float = 0.0, alpha: float = ALPHA,
                 draws: int = 20000, seed: int = 0) -> float:
    """Probability that a true difference ``d`` is declared within ±``margin`` at ``n`` seeds."""
    _check(n, k, 0.5)
    z, w = _draws(n, draws, seed)
    _, he = _half_widths(noise, n, k, w, alpha)
    mean = d + z * math.sqrt(noise.seed_sd ** 2 / n + noise.test_se ** 2)
    return float(np.mean((mean - he > -margin) & (mean + he < margin)))


def detectable_difference(noise: Noise, n: int, k: int, *, power: float = 0.8, alpha: float = ALPHA,
                          draws: int = 20000, seed: int = 0) -> float:
    """The minimum detectable difference (metric units) at ``n`` seeds in a family of ``k``."""
    _check(n, k, power)
    z, w = _draws(n, draws, seed)
    hs, _ = _half_widths(noise, n, k, w, alpha)
    spread = z * math.sqrt(noise.seed_sd ** 2 / n + noise.test_se ** 2)
    # better ⇔ d > hs − spread: the power-quantile of (hs − spread) is the smallest d detected that often
    return float(max(0.0, np.quantile(hs - spread, power)))


def reachable_margin(noise: Noise, n: int, k: int, *, power: float = 0.8, d: float = 0.0, alpha: float = ALPHA,
                     draws: int = 20000, seed: int = 0) -> float:
    """The smallest margin within which a true difference ``d`` is declared with probability ≥ ``power``."""
    _check(n, k, power)
    z, w = _draws(n, draws, seed)
    _, he = _half_widths(noise, n, k, w, alpha)
    mean = d + z * math.sqrt(noise.seed_sd ** 2 / n + noise.test_se ** 2)
    return float(np.quantile(np.abs(mean) + he, power))


def seeds_for_margin(margin: float, noise: Noise, k: int, *, power: float = 0.8, d: float = 0.0,
                     alpha: float = ALPHA, draws: int = 20000, seed: int = 0) -> int | None:
    """The fewest seeds (2..:data:`MAX_SEEDS`) at which a true difference ``d`` is declared within
    ±``margin`` with probability ≥ ``power``; ``None`` when no number of seeds reaches it (the
    shared test error alone is too large for the margin, or |d| is too close to it)."""
    if not 0.0 < margin < 1.0:
        raise ValueError(f"margin is in metric units (AUC 0..1; 1 AUC point = 0.01), in (0, 1); got {margin}")
    _check(2, k, power)
    if reachable_margin(noise, MAX_SEEDS, k, power=power, d=d, alpha=alpha, draws=draws, seed=seed) >= margin:
        return None
    lo, hi = 2, MAX_SEEDS  # reachable_margin decreases with n: bisect for the first n that reaches the margin
    while lo < hi:
        mid = (lo + hi) // 2
        if reachable_margin(noise, mid, k, power=power, d=d, alpha=alpha, draws=draws, seed=seed) < margin:
            hi = mid
        else:
            lo = mid + 1
    return lo


def sd_upper_bound(sd: float, n: int, confidence: float = 0.8) -> float:
    """One-sided upper confidence bound of a seed SD measured on ``n`` seeds (χ² on n − 1 df): a
    pilot's SD rests on few seeds, and planning on the bound protects the power."""
    from scipy import stats as _sp

    if n < 2:
        raise ValueError(f"an SD needs at least two seeds, got {n}")
    return float(sd * math.sqrt((n - 1) / _sp.chi2.ppf(1.0 - confidence, n - 1)))
