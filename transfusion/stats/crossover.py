"""Label efficiency: the training-set size (training images) from which a from-scratch model is
as good as the best transfer regime — the *crossover* — as two numbers that answer two questions.

**The gap at each size.** At each training size n the gap is ``AUC(transfer) − AUC(random)``
(AUC units: 0.01 = 1 AUC point), the mean over the seeds both regimes ran (paired by seed), as a
:class:`~.seeds.SeedEstimate` of the comparison engine (:func:`gap_estimate`): its variance is
the seed part ``s²/k`` (``k`` seed pairs, ``k − 1`` degrees of freedom) plus the test variance
``c̄`` every seed pair shares (the mean between-pair covariance of aligned bootstrap replicates of
the test images) — the test images' sampling error, which no number of seeds averages away. When
fewer than two seeds pair up, the difference of the two cells' means (one seed part per cell,
:func:`~.seeds.difference`). When the replicates are unavailable (a store without predictions,
runs scored on other test images) the gap has its seed part only, and the result says so
(``test_included`` False): its intervals are then too narrow by the test error.

**Demonstrated crossover** (the claim the data support). The gap's one-sided upper confidence
bound at each size, ``U_n`` = the upper end of the engine's two-sided ``2·level − 1`` interval
(``level`` 0.95: a one-sided 95% bound = the upper end of the two-sided 90% interval,
``mean + sqrt(z²·c̄ + t²(k − 1)·s²/k)`` at the 90% quantiles). Random init is *within the margin
from D images on* where D is the smallest size from which ``U_n`` stays below the margin at every
larger size tried, interpolated linearly in log n between the last size where ``U_n ≥ margin``
and the next (learning curves are roughly straight in log n). It is conservative: "the gap is
below the margin at every size from D on" is an intersection of one-sided tests (each at
``1 − level``, no multiplicity correction needed), so for a gap that falls with size, D lies
below a true crossing at a size tried only if that size's bound fell below its true gap: at most
``1 − level`` of the time. A true crossing between two sizes is placed by interpolating the two
bounds, which errs only if one of them fell below its true gap (in theory up to twice
``1 − level``; simulated, less than ``1 − level``, below). Outcomes (``demonstrated_state``):
``from`` (D inside the sizes tried),
``from-start`` (``U_n`` below the margin at every size: D ≤ the smallest size), ``not-shown``
(``U_n ≥ margin`` at the largest size: not demonstrated within the sizes tried).

**Point crossing and where the true gap crosses.** The size where the *point* gap reaches the
margin (same log interpolation; ``state``: ``crosses``, ``from-start`` — at or below the smallest
size —, ``not-reached`` — beyond the largest), with a ``level`` interval for where the *true* gap
crosses it: a parametric bootstrap draws the whole gap curve ``n_boot`` times, at every size the
observed mean plus the seed part (``sqrt(s²/k) × t(k − 1)``, one Student t per seed group) plus
the shared test part (normal, variance ``c̄``; jointly normal across sizes with the covariance of
the aligned replicates, since every size is scored on the same test images), and crosses each
draw again. A draw that is within the margin already at the smallest size is *left-censored*
(the crossing is at or below that size), one that has not closed by the largest size is
*right-censored* (beyond the sizes tried); an interval end that falls on censored draws is stored
as censored (``low`` / ``high`` None, ``censored`` ``left`` / ``right`` / ``both``), never as a
number.

**Simulated** (2000 studies per setting: a gap falling 2 AUC points per doubling of the training
set over 5 sizes, 3 or 5 seeds, seed-pair SD 0.5–2 points, a 1-point test SE per size with
correlation 0 or 0.5 between sizes): the 95% interval covers the true crossing in 95.5–98.6% of
studies (drawing the seed part alone, the earlier method: 37–95%, lowest where the test error
dominates), and the demonstrated crossover lies at or above the true crossing in 97.3–99.9% —
95.7–97.9% in the worst case, a true gap exactly at the margin at a size tried
(``tests/test_crossover.py`` runs a 300-study version).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .comparisons import Arm, paired_estimate
from .seeds import SeedEstimate, difference

#: outcomes of the demonstrated crossover (see the module docstring)
DEMONSTRATED_STATES = ("from", "from-start", "not-shown")


@dataclass(frozen=True)
class Crossover:
    """A crossover estimate (module docstring); sizes in training images, gaps in AUC units.

    ``sizes``, ``gaps``, ``se`` (the gap's standard error: seed and shared test parts) and
    ``upper`` (the one-sided ``bound_level`` upper bound of the gap) per size. Demonstrated
    crossover: ``demonstrated_state`` and ``demonstrated`` (D; the smallest size for
    ``from-start``, where D is at or below it; None for ``not-shown``). Point crossing: ``state``
    and ``size`` (None for ``not-reached``), and the ``level`` interval for the true crossing,
    ``low`` / ``high`` — None at a censored end, ``censored`` saying which (``left``: at or below
    the smallest size, ``right``: beyond the largest, ``both``, or ``""``; an interval wholly
    beyond the largest size has ``low`` = that size, one wholly at or below the smallest has
    ``high`` = that size). ``test_included``:
    whether the gaps carry the shared test error (False: seed part only)."""

    state: str
    size: float | None
    low: float | None
    high: float | None
    censored: str
    demonstrated_state: str
    demonstrated: float | None
    sizes: tuple[float, ...]
    gaps: tuple[float, ...]
    se: tuple[float, ...]
    upper: tuple[float, ...]
    margin: float
    n_boot: int
    level: float
    bound_level: float
    test_included: bool
    n_seeds: int


def crossing_size(sizes: Sequence[float], gaps: Sequence[float], margin: float) -> tuple[str, float | None]:
    """(state, size) of one gap curve: ``sizes`` ascending, ``gaps`` (AUC units) at each; the
    state is ``crosses``, ``from-start`` (size: the smallest) or ``not-reached`` (size None)."""
    s, g = np.asarray(sizes, dtype=float), np.asarray(gaps, dtype=float)
    within = g < margin
    if within.all():
        return "from-start", float(s[0])
    if not within[-1]:
        return "not-reached", None
    i = int(np.flatnonzero(~within)[-1])  # the last size at or above the margin; every later one is below
    t = (g[i] - margin) / (g[i] - g[i + 1])
    return "crosses", float(math.exp(math.log(s[i]) + t * (math.log(s[i + 1]) - math.log(s[i]))))


def crossing_sizes(sizes: Sequence[float], gaps: np.ndarray, margin: float) -> np.ndarray:
    """:func:`crossing_size` of every row of ``gaps`` (B, K) at once: −inf where the row is below
    the margin at every size (left-censored), +inf where it is not below it at the largest
    (right-censored)."""
    s = np.log(np.asarray(sizes, dtype=float))
    g = np.asarray(gaps, dtype=float)
    above = ~(g < margin)
    k = g.shape[1]
    last = k - 1 - np.argmax(above[:, ::-1], axis=1)  # the last size at or above the margin
    out = np.empty(g.shape[0])
    none, open_ = ~above.any(axis=1), above[:, -1]
    out[none], out[open_] = -math.inf, math.inf
    mid = ~none & ~open_
    rows, i = np.flatnonzero(mid), last[mid]
    g0, g1 = g[rows, i], g[rows, i + 1]
    out[mid] = np.exp(s[i] + (g0 - margin) / (g0 - g1) * (s[i + 1] - s[i]))
    return out


def _seed_only(transfer: Arm, random: Arm) -> SeedEstimate:
    """The gap with its seed part only (no replicates): paired over the seeds both ran when at
    least two pair up, else the difference of the means with one seed part per cell."""
    shared = sorted(set(transfer.seeds) & set(random.seeds))
    tv, rv = np.asarray(transfer.values, np.float64), np.asarray(random.values, np.float64)
    if len(shared) >= 2:
        d = np.array([tv[transfer.seeds.index(k)] - rv[random.seeds.index(k)] for k in shared])
        sd = float(np.std(d, ddof=1))
        return SeedEstimate(float(d.mean()), d.size, tuple(float(x) for x in d), sd, 0.0, 0.0,
                            ((sd * sd / d.size, d.size - 1),))
    comps = tuple((float(np.var(x, ddof=1)) / x.size, x.size - 1) for x in (tv, rv) if x.size > 1)
    return SeedEstimate(float(tv.mean() - rv.mean()), min(tv.size, rv.size), (), None, 0.0, 0.0, comps)


def gap_estimate(transfer: Arm, random: Arm) -> tuple[SeedEstimate, np.ndarray | None, str]:
    """The gap ``transfer − random`` at one size: (estimate, the (B,) bootstrap replicates of the
    mean gap over the test images — for the covariance between sizes —, note). With aligned
    replicates the estimate has the seed part and the shared test part (:mod:`.comparisons`:
    paired by seed when at least two seeds pair up, else :func:`~.seeds.difference`); without
    them the seed part only, replicates None and ``note`` saying why."""
    shared = sorted(set(transfer.seeds) & set(random.seeds))
    if transfer.replicates is None or random.replicates is None:
        return _seed_only(transfer, random), None, "bootstrap replicates unavailable"
    try:
        if len(shared) >= 2:
            est, seeds, reason = paired_estimate(transfer, random)
            if est is None:
                return _seed_only(transfer, random), None, reason
            ra = np.asarray(transfer.replicates)[[transfer.seeds.index(k) for k in seeds]]
            rb = np.asarray(random.replicates)[[random.seeds.index(k) for k in seeds]]
            return est, (ra - rb).mean(axis=0), ""
        ra, rb = np.asarray(transfer.replicates), np.asarray(random.replicates)
        est = difference(([float(x) for x in transfer.values], ra), ([float(x) for x in random.values], rb))
        return est, ra.mean(axis=0) - rb.mean(axis=0), ""
    except ValueError as e:  # replicates that do not line up
        return _seed_only(transfer, random), None, str(e)


def shared_test_covariance(estimates: Sequence[SeedEstimate], replicates: Sequence[np.ndarray | None]) -> np.ndarray:
    """(K, K) covariance of the shared test error of the gaps at K sizes: ``c̄`` of each size on
    the diagonal, and between two sizes the covariance of their mean-gap replicates (aligned:
    the same resampled test rows), 0 where either has none or they do not line up; made positive
    semi-definite (negative eigenvalues of the estimate set to 0)."""
    k = len(estimates)
    cov = np.diag([e.var_shared for e in estimates]).astype(float)
    for i in range(k):
        for j in range(i + 1, k):
            a, b = replicates[i], replicates[j]
            if a is not None and b is not None and a.shape == b.shape and a.size > 1:
                cov[i, j] = cov[j, i] = float(np.cov(a, b)[0, 1])
    w, v = np.linalg.eigh(cov)
    if w.min() >= 0:
        return cov
    return (v * np.clip(w, 0.0, None)) @ v.T


def draw_gaps(estimates: Sequence[SeedEstimate], test_cov: np.ndarray | None, n_boot: int,
              rng: np.random.Generator) -> np.ndarray:
    """(n_boot, K) draws of the gap curve for the parametric bootstrap: at every size the mean,
    plus ``sqrt(v) × t(df)`` per seed part ``(v, df)``, plus the shared test part — normal with
    covariance ``test_cov`` across sizes (independent with variance ``c̄`` when None)."""
    k = len(estimates)
    out = np.tile(np.array([e.mean for e in estimates], dtype=float), (n_boot, 1))
    for j, e in enumerate(estimates):
        for var, df in e.components:
            out[:, j] += math.sqrt(var) * rng.standard_t(df, n_boot)
    if test_cov is None:
        out += rng.standard_normal((n_boot, k)) * np.sqrt([e.var_shared for e in estimates])
    elif np.any(test_cov):
        w, vecs = np.linalg.eigh(np.asarray(test_cov, dtype=float))
        out += (rng.standard_normal((n_boot, k)) * np.sqrt(np.clip(w, 0.0, None))) @ vecs.T
    return out


def _interval(draws: np.ndarray, sizes: Sequence[float], level: float) -> tuple[float | None, float | None, str]:
    """(low, high, censored) of the crossing draws (±inf: censored) at ``level``."""
    tail = (1.0 - level) / 2.0
    lo, hi = (float(x) for x in np.quantile(draws, [tail, 1.0 - tail], method="inverted_cdf"))
    if lo == math.inf:  # the whole interval beyond the largest size
        return float(sizes[-1]), None, "right"
    if hi == -math.inf:  # the whole interval at or below the smallest size
        return None, float(sizes[0]), "left"
    left, right = lo == -math.inf, hi == math.inf
    censored = "both" if left and right else "left" if left else "right" if right else ""
    return None if left else lo, None if right else hi, censored


def estimate_crossover(gaps: Mapping[float, SeedEstimate], *, margin: float, test_cov: np.ndarray | None = None,
                       n_boot: int = 2000, level: float = 0.95, seed: int = 0, test_included: bool = True) -> Crossover:
    """The crossover of a gap curve (module docstring): ``gaps`` maps a training size (images)
    to the gap ``AUC(transfer) − AUC(random)`` there (:func:`gap_estimate`); ``test_cov``: the
    covariance of the shared test error between sizes (:func:`shared_test_covariance`; None: independent
    across sizes); ``level``: the one-sided level of the demonstrated crossover's bound and the
    two-sided level of the true crossing's interval. Needs at least two sizes; raises
    ``ValueError`` otherwise."""
    if not 0.0 < float(margin) < 1.0:
        raise ValueError(f"margin is in AUC units (0.005 = 0.5 AUC points) and must be in (0, 1), got {margin}")
    if not 0.5 < float(level) < 1.0:
        raise ValueError(f"level must be in (0.5, 1), e.g. 0.95; got {level}")
    sizes = sorted(gaps)
    if len(sizes) < 2:
        raise ValueError(f"a crossover needs at least two training sizes with runs of both regimes, got {sizes}")
    ests = [gaps[n] for n in sizes]
    if test_cov is not None:
        test_cov = np.asarray(test_cov, dtype=float)
        if test_cov.shape != (len(sizes), len(sizes)):
            raise ValueError(f"test_cov must be ({len(sizes)}, {len(sizes)}), got {test_cov.shape}")
    means = [e.mean for e in ests]
    state, size = crossing_size(sizes, means, margin)
    bound_level = round(2.0 * float(level) - 1.0, 12)
    upper = [e.interval(bound_level)[1] for e in ests]
    shown, demonstrated = crossing_size(sizes, upper, margin)
    demonstrated_state = {"crosses": "from", "from-start": "from-start", "not-reached": "not-shown"}[shown]
    draws = crossing_sizes(sizes, draw_gaps(ests, test_cov, int(n_boot), np.random.default_rng(seed)), margin)
    low, high, censored = _interval(draws, sizes, float(level))
    return Crossover(state, size, low, high, censored, demonstrated_state, demonstrated,
                     tuple(float(n) for n in sizes), tuple(float(m) for m in means), tuple(e.se for e in ests),
                     tuple(float(u) for u in upper), float(margin), int(n_boot), float(level), bound_level,
                     bool(test_included), min(e.n_seeds for e in ests))
