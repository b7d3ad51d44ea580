"""Label efficiency: the training-set size from which a from-scratch model is as good as the
best transfer regime — the *crossover*.

At each training size n the gap is AUC(transfer) − AUC(random), mean over seeds (paired by seed
where both regimes ran the same seeds). The crossover is the smallest size from which the gap
stays within the margin: between the last size where it exceeds the margin and the next one, the
crossing is interpolated linearly in log n (learning curves are roughly straight in log n). Its
interval comes from a parametric bootstrap over seeds at every size: each replicate draws the
gap at every size independently as mean + SE × t (SE from the seed pairs, Student's t on n − 1
degrees of freedom — a plain resampling of three to five seeds is too narrow: 85% coverage for
a nominal 95% with five seeds on constructed curves, against about 95% this way) and crosses it
again; +∞ when the replicate's gap has not closed by the largest size.

Three outcomes, as ``state``:

- ``crosses``: the gap closes inside the sizes tried, at ``size`` (interpolated);
- ``from-start``: within the margin already at the smallest size (``size`` = that size: the
  crossover is there or below — the sizes do not bracket it);
- ``not-reached``: still above the margin at the largest size (``size`` None: beyond the sizes
  tried).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Crossover:
    """A crossover estimate (see the module docstring). ``sizes`` and ``gaps`` are the curve
    (training images, AUC units); ``low`` / ``high`` bound the ``level`` bootstrap interval of
    ``size`` (``high`` is ``inf`` when more than the upper tail of replicates never close the gap);
    ``n_boot`` replicates were drawn."""

    state: str
    size: float | None
    low: float | None
    high: float | None
    sizes: tuple[float, ...]
    gaps: tuple[float, ...]
    margin: float
    n_boot: int
    level: float


def crossing_size(sizes: Sequence[float], gaps: Sequence[float], margin: float) -> tuple[str, float | None]:
    """(state, size) of one gap curve: ``sizes`` ascending, ``gaps`` (AUC units) at each."""
    s, g = np.asarray(sizes, dtype=float), np.asarray(gaps, dtype=float)
    within = g <= margin
    if within.all():
        return "from-start", float(s[0])
    if not within[-1]:
        return "not-reached", None
    i = int(np.flatnonzero(~within)[-1])  # the last size above the margin; every later one is within
    t = (g[i] - margin) / (g[i] - g[i + 1])
    return "crosses", float(math.exp(math.log(s[i]) + t * (math.log(s[i + 1]) - math.log(s[i]))))


def _gap(random: Mapping[int, float], transfer: Mapping[int, float]) -> float:
    """Mean gap over seeds: paired over the seeds both ran, else difference of the means."""
    shared = sorted(set(random) & set(transfer))
    if len(shared) >= 2:
        return float(np.mean([transfer[k] - random[k] for k in shared]))
    return float(np.mean(list(transfer.values())) - np.mean(list(random.values())))


def _gap_replicates(random: Mapping[int, float], transfer: Mapping[int, float], n_boot: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` draws of the mean gap at one size: mean + SE × Student t, SE from the seed
    pairs (df n − 1), or Welch's SE and df when fewer than two seeds are shared."""
    shared = sorted(set(random) & set(transfer))
    if len(shared) >= 2:
        d = np.array([transfer[k] - random[k] for k in shared])
        mean, se, df = d.mean(), d.std(ddof=1) / np.sqrt(len(d)), len(d) - 1
    else:
        rv, tv = np.array(list(random.values())), np.array(list(transfer.values()))
        mean = tv.mean() - rv.mean()
        a = tv.var(ddof=1) / len(tv) if len(tv) > 1 else 0.0
        b = rv.var(ddof=1) / len(rv) if len(rv) > 1 else 0.0
        se = np.sqrt(a + b)
        terms = [x ** 2 / (len(v) - 1) for x, v in ((a, tv), (b, rv)) if len(v) > 1 and x > 0]
        df = (a + b) ** 2 / sum(terms) if terms else 1.0
    return mean + se * rng.standard_t(df, n_boot)


def estimate_crossover(random: Mapping[float, Mapping[int, float]], transfer: Mapping[float, Mapping[int, float]],
                       *, margin: float, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Crossover:
    """The crossover of ``random`` against ``transfer``: each maps a training size (images) to
    {seed: test AUC}. Needs at least two sizes both ran; raises ``ValueError`` otherwise."""
    if not 0.0 < float(margin) < 1.0:
        raise ValueError(f"margin is in AUC units (0.005 = 0.5 AUC points) and must be in (0, 1), got {margin}")
    sizes = sorted(n for n in set(random) & set(transfer) if random[n] and transfer[n])
    if len(sizes) < 2:
        raise ValueError(f"a crossover needs at least two training sizes with runs of both regimes, got {sizes}")
    gaps = [_gap(random[n], transfer[n]) for n in sizes]
    state, size = crossing_size(sizes, gaps, margin)
    rng = np.random.default_rng(seed)
    boot = np.column_stack([_gap_replicates(random[n], transfer[n], int(n_boot), rng) for n in sizes])
    draws = np.array([crossing_size(sizes, g, margin)[1] or math.inf for g in boot])
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail], method="inverted_cdf")
    return Crossover(state, size, float(low), float(high), tuple(float(n) for n in sizes), tuple(gaps),
                     float(margin), int(n_boot), float(level))
