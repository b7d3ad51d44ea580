"""The comparison engine: every verdict table of a report (AUC, robustness, and any later one)
gets its verdicts here, from per-seed values of two arms scored on the same test images.

**Input.** An :class:`Arm` per model · regime: the seeds it ran, one value per seed (test AUC,
mean corruption AUC, …) and the same values on aligned bootstrap resamples of the test images.
:func:`paired_estimate` pairs two arms by seed (a − b over the seeds both ran) into a
:class:`~.seeds.SeedEstimate`: its variance is the seed-to-seed variance of the differences
over n plus the test variance the seeds share (:mod:`.seeds`), read with n − 1 degrees of
freedom. Nothing is pooled between comparisons: every comparison's interval rests on its own seeds.

Why not pool. Pooling the seed variance of a model's regimes gives more degrees of freedom only
if their noise is alike, and with three to five seeds that cannot be checked (an F test on 2 and
2 degrees of freedom detects a 3× ratio of SDs about one time in three). Simulated with
:mod:`.coverage` (``docs/report.md``, coverage table): where one arm is 3× noisier, the textbook
pooled estimate (two-way residual of arms × seeds, degrees of freedom that allow for the shared
random arm) let the family-wise error reach 6.6–10.2% (the audit measured 13% for the pooling
that shipped before); the engine stayed at or under 5%. The price of not pooling is wide
intervals at three seeds — ``transfusion plan`` says how many seeds a margin needs.

**Family and multiplicity.** The comparisons of one table section (one dataset × train size) are
a family of K judged comparisons; Bonferroni keeps all its verdicts together at α = 0.05, read
the way two one-sided tests (TOST) read an interval:

- *better* / *worse*: the interval at ``1 − α/K`` (two-sided test at α/K) lies above / below 0;
- *equivalent* (within ±margin): the interval at ``1 − 2α/K`` lies inside ±margin (TOST at α/K:
  each one-sided test at α/K — the textbook 90% interval when K = 1);
- both at once: ``better (within ±m)`` — a significant gain that is smaller than the margin is
  reported as both, never as a bare "equivalent";
- *inconclusive*: neither; *unjudged*: fewer than :data:`~.seeds.MIN_SEEDS` seed pairs.

Per comparison at most one of its claims can be false for a given true difference d — "better"
or "worse" when d = 0 (probability ≤ α/K), "equivalent" when |d| ≥ m (≤ α/K) — so the family's
chance of any false claim is ≤ K · α/K = α.

**Borderline.** A verdict is *borderline* (≈) when a faithful rerun — new training seeds, the
same test images — would reach another verdict with probability ≥ :data:`BORDERLINE` (10%)
(:func:`flip_probability`: the rerun's mean and seed SD drawn from their predictive distribution
given this run's: σ² ~ s²·df/χ²(df), mean' ~ N(mean, 2σ²/n), s'² ~ σ²·χ²(df)/df; the shared
test part stays, as the test images do). ``transfusion compare`` counts a verdict change only when
the two runs' estimates differ beyond rerun noise (:func:`moved_beyond_noise`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .seeds import MIN_SEEDS, SeedEstimate, quantile

#: family-wise error rate of a family of verdicts
ALPHA = 0.05
#: probability of another verdict on a faithful rerun from which a verdict is marked borderline
BORDERLINE = 0.10
UNJUDGED = "unjudged"
#: verdict words, in the order tables count them
VERDICTS = ("better", "worse", "equivalent", "inconclusive")


@dataclass(frozen=True)
class Arm:
    """One arm (a model · regime) of a comparison: ``values`` (S,) one per seed in ``seeds`` and
    ``replicates`` (S, B) the same values on B bootstrap resamples of the test images, aligned
    across arms (the same resampled rows; ``None`` when they could not be computed)."""

    seeds: tuple[int, ...]
    values: np.ndarray
    replicates: np.ndarray | None

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=np.float64)
        if v.shape != (len(self.seeds),):
            raise ValueError(f"an arm needs one value per seed: {len(self.seeds)} seeds, values of shape {v.shape}")
        if self.replicates is not None and np.shape(self.replicates)[0] != len(self.seeds):
            raise ValueError(f"an arm needs one row of replicates per seed: {len(self.seeds)} seeds, replicates of "
                             f"shape {np.shape(self.replicates)}")


def paired_estimate(a: Arm, b: Arm) -> tuple[SeedEstimate | None, tuple[int, ...], str]:
    """a − b paired by seed over the seeds both arms ran: (estimate, those seeds, reason). The
    estimate is ``None`` and ``reason`` says why when no seed is shared or the replicates are
    missing or do not line up."""
    from .seeds import seed_estimate

    shared = tuple(sorted(set(a.seeds) & set(b.seeds)))
    if not shared:
        return None, (), "no seed with both arms"
    if a.replicates is None or b.replicates is None:
        return None, shared, "bootstrap replicates unavailable"
    ia = [a.seeds.index(s) for s in shared]
    ib = [b.seeds.index(s) for s in shared]
    ra, rb = np.asarray(a.replicates)[ia], np.asarray(b.replicates)[ib]
    if ra.shape != rb.shape:
        raise ValueError(f"bootstrap replicates do not line up across arms: {ra.shape} vs {rb.shape}")
    diffs = np.asarray(a.values, np.float64)[ia] - np.asarray(b.values, np.float64)[ib]
    return seed_estimate(diffs, ra - rb), shared, ""


def levels(k: int, alpha: float = ALPHA) -> tuple[float, float]:
    """(superiority level ``1 − α/K``, equivalence level ``1 − 2α/K``) of a family of ``k``."""
    if int(k) < 1:
        raise ValueError(f"a family needs at least one comparison, got k={k}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    return 1.0 - alpha / int(k), 1.0 - 2.0 * alpha / int(k)


def verdict_of(sup: tuple[float, float], eq: tuple[float, float], margin: float) -> tuple[str, bool]:
    """(verdict, within margin) from the superiority interval ``sup`` and the equivalence
    interval ``eq`` (module docstring); ``within`` is True for a better / worse verdict whose
    equivalence interval also lies inside ±margin, and for ``equivalent``."""
    for name, (lo, hi) in (("sup", sup), ("eq", eq)):
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"{name} interval must be finite with low <= high, got ({lo}, {hi})")
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin is in metric units (AUC 0..1; 1 AUC point = 0.01) and must be in [0, 1), got {margin}")
    within = -margin < eq[0] and eq[1] < margin
    if sup[0] > 0:
        return "better", within
    if sup[1] < 0:
        return "worse", within
    return ("equivalent", True) if within else ("inconclusive", False)


def verdict_label(verdict: str, within: bool, margin: float, borderline: bool = False) -> str:
    """The verdict as a report prints it: ``better (within ±2)``, ``equivalent ≈``."""
    text = f"{verdict} (within ±{margin * 100:g})" if within and verdict in ("better", "worse") else verdict
    return text + (" ≈" if borderline else "")


@dataclass(frozen=True)
class Judgement:
    """The verdict on one comparison of a family, metric units. ``ci_low``/``ci_high``: the
    superiority interval at ``level`` (``1 − α/K``); ``eq_low``/``eq_high``: the equivalence
    interval at ``eq_level`` (``1 − 2α/K``). ``flip``: the probability that a faithful rerun
    reaches another verdict (``None`` when unjudged). Unjudged comparisons carry a 95% interval
    for information and say why in ``reason``."""

    verdict: str
    within_margin: bool
    ci_low: float
    ci_high: float
    level: float
    eq_low: float
    eq_high: float
    eq_level: float
    margin: float
    family_size: int
    flip: float | None = None
    reason: str = ""

    @property
    def borderline(self) -> bool:
        return self.flip is not None and self.flip >= BORDERLINE

    @property
    def label(self) -> str:
        return verdict_label(self.verdict, self.within_margin, self.margin, self.borderline)


def flip_probability(est: SeedEstimate, margin: float, level: float, eq_level: float, *, draws: int = 4000,
                     seed: int = 0) -> float:
    """The probability that a faithful rerun of ``est``'s seeds (new training, the same test
    images) reaches another verdict than ``est`` at these levels (module docstring). Draws from
    the predictive distribution are seeded, so a report is reproducible."""
    if not est.components:
        raise ValueError("a rerun's verdict needs a measured seed variance (at least two seeds)")
    now = verdict_of(est.interval(level), est.interval(eq_level), margin)
    rng = np.random.default_rng([seed, 0xF11B])
    mean = np.full(draws, est.mean)
    zs, ze = quantile(level, math.inf), quantile(eq_level, math.inf)
    hs2, he2 = np.full(draws, zs * zs * est.var_shared), np.full(draws, ze * ze * est.var_shared)
    for v, df in est.components:
        sigma2 = v * df / rng.chisquare(df, draws)  # the true variance of the mean, given the observed one
        mean += np.sqrt(2.0 * sigma2) * rng.standard_normal(draws)
        v_new = sigma2 * rng.chisquare(df, draws) / df
        hs2 += quantile(level, df) ** 2 * v_new
        he2 += quantile(eq_level, df) ** 2 * v_new
    hs, he = np.sqrt(hs2), np.sqrt(he2)
    within = (mean - he > -margin) & (mean + he < margin)
    cat = np.where(mean - hs > 0, 0, np.where(mean + hs < 0, 1, np.where(within, 2, 3)))
    order = ("better", "worse", "equivalent", "inconclusive")
    same = (cat == order.index(now[0])) & ((within & (cat <= 1)) == (now[1] and now[0] in order[:2]))
    return float(1.0 - same.mean())


def judge_family(estimates: Sequence[SeedEstimate | None], margin: float, *, alpha: float = ALPHA,
                 min_seeds: int = MIN_SEEDS, draws: int = 4000, seed: int = 0) -> list[Judgement | None]:
    """Verdicts for one family (module docstring): ``None`` where the estimate is ``None``;
    ``unjudged`` below ``min_seeds`` seeds (95% interval for information); the others judged
    together, K = their number. ``draws``: simulated reruns for each verdict's flip probability
    (0: none computed, ``flip`` is ``None``)."""
    k = sum(e is not None and e.n_seeds >= min_seeds and e.training_measured for e in estimates)
    sup_level, eq_level = levels(max(k, 1), alpha)
    out: list[Judgement | None] = []
    for i, e in enumerate(estimates):
        if e is None:
            out.append(None)
            continue
        if e.n_seeds < min_seeds or not e.training_measured:
            lo, hi = e.interval(1 - alpha)
            what = "training variance not measured" if e.n_seeds == 1 else "training variance barely measured"
            out.append(Judgement(UNJUDGED, False, lo, hi, 1 - alpha, lo, hi, 1 - alpha, margin, k,
                                 reason=f"n seeds {e.n_seeds} < {min_seeds}: {what}"))
            continue
        sup, eq = e.interval(sup_level), e.interval(eq_level)
        verdict, within = verdict_of(sup, eq, margin)
        flip = flip_probability(e, margin, sup_level, eq_level, draws=draws, seed=seed + i) if draws else None
        out.append(Judgement(verdict, within, sup[0], sup[1], sup_level, eq[0], eq[1], eq_level, margin, k, flip))
    return out


def judge(estimate: SeedEstimate, margin: float, *, k: int = 1, alpha: float = ALPHA,
          min_seeds: int = MIN_SEEDS) -> Judgement:
    """One comparison judged as a member of a family of ``k`` (default: on its own)."""
    if estimate.n_seeds < min_seeds or not estimate.training_measured:
        return judge_family([estimate], margin, alpha=alpha, min_seeds=min_seeds)[0]  # type: ignore[return-value]
    sup_level, eq_level = levels(k, alpha)
    sup, eq = estimate.interval(sup_level), estimate.interval(eq_level)
    verdict, within = verdict_of(sup, eq, margin)
    return Judgement(verdict, within, sup[0], sup[1], sup_level, eq[0], eq[1], eq_level, margin, k,
                     flip_probability(estimate, margin, sup_level, eq_level))


def moved_beyond_noise(ref: tuple[float, float | None, int], new: tuple[float, float | None, int], *,
                       n_compared: int, alpha: float = ALPHA) -> bool | None:
    """Whether two estimates of the same comparison or cell — ``(mean, seed SD, seeds)`` of a
    reference and of a rerun on the same test images — differ beyond rerun noise: a two-sample t
    test on the pooled seed SD (a faithful rerun has the same training noise), ``n1 + n2 − 2``
    degrees of freedom, at ``α / n_compared`` (Bonferroni over the estimates compared). The
    shared test error cancels (same test images). ``None`` when neither side measured a seed SD."""
    (m1, s1, n1), (m2, s2, n2) = ref, new
    parts = [((n - 1) * s * s, n - 1) for s, n in ((s1, n1), (s2, n2)) if s is not None and n >= 2]
    if not parts:
        return None
    df = sum(d for _, d in parts)
    sp = math.sqrt(sum(q for q, _ in parts) / df)
    se = sp * math.sqrt(1.0 / max(n1, 1) + 1.0 / max(n2, 1))
    if se == 0.0:
        return m1 != m2
    return abs(m2 - m1) / se > quantile(1.0 - alpha / max(1, int(n_compared)), df)
