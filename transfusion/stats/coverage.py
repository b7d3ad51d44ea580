"""Coverage of the comparison engine by simulation: how often a family of verdicts holds a false
claim (the family-wise error, FWER) and how often it finds what is there (power), in scenarios
whose truth is known.

A simulated family has a random arm and K regimes, each run on ``n`` seeds and scored on one test
set. A run's value (an AUC, say) is ``μ_r + a_{r,s} + e_{r,s}``: training noise ``a`` with the
arm's seed SD (optionally correlated across arms of the same seed, ``pair_corr``), and a test
error ``e`` with SD ``test_sd`` whose parts are shared by every run (``test_corr_arm``), by the
seeds of one arm (``test_corr_seed``) or the run's own. Bootstrap replicates are drawn from the
same test-error law around the observed values, aligned across runs — what
:func:`~transfusion.stats.bootstrap` gives on real predictions. :func:`simulate_auc` does the same
with real scores, AUCs and bootstrap replicates computed by this package.

Each family is judged by :func:`~.comparisons.judge_family` (``method="engine"``) or, for the
record, with the seed variance pooled over the family's regimes (``method="pooled"``: the
two-way residual variance of arms × seeds, ``(R − 1)(n − 1)`` degrees of freedom, the textbook
pooled estimate that does allow for the shared random arm) — the alternative the engine rejects.

A claim is false when "better" is said of a true difference ≤ 0, "worse" of one ≥ 0, or "within
±m" (equivalent, or better/worse within the margin) of one with |d| ≥ m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .comparisons import ALPHA, Arm, judge_family, levels, paired_estimate, verdict_of
from .seeds import SeedEstimate


@dataclass(frozen=True)
class Scenario:
    """A family's truth. ``diffs``: true regime − random difference of each of the K regimes;
    ``seed_sd``: training SD of each arm, random first (K + 1 values); all in metric units."""

    name: str
    n_seeds: int
    diffs: tuple[float, ...]
    seed_sd: tuple[float, ...]
    test_sd: float
    margin: float
    test_corr_seed: float = 0.6
    test_corr_arm: float = 0.4
    pair_corr: float = 0.0

    def __post_init__(self) -> None:
        if len(self.seed_sd) != len(self.diffs) + 1:
            raise ValueError(f"seed_sd needs one SD per arm, random first: {len(self.diffs) + 1}, got {len(self.seed_sd)}")
        if not 0 <= self.test_corr_arm <= self.test_corr_seed <= 1:
            raise ValueError("test correlations must satisfy 0 <= test_corr_arm <= test_corr_seed <= 1")


@dataclass
class Coverage:
    """What a simulation found: ``fwer`` (share of families with a false claim) with its Monte
    Carlo standard error, ``families`` simulated, the worst single comparison's share of false
    claims (``worst_comparison``), and per regime the share of families where it was declared
    equivalent (``equivalent``), better, worse."""

    scenario: Scenario
    method: str
    families: int
    fwer: float
    fwer_se: float
    worst_comparison: float
    equivalent: list[float] = field(default_factory=list)
    better: list[float] = field(default_factory=list)
    worse: list[float] = field(default_factory=list)


def _false_claims(verdict: str, within: bool, d: float, margin: float) -> bool:
    if verdict == "better" and d <= 0 or verdict == "worse" and d >= 0:
        return True
    return bool(within and abs(d) >= margin)


def _pooled(arms: list[Arm], margin: float) -> list[tuple[str, bool]]:
    """Verdicts with the two-way pooled seed variance (see the module docstring)."""
    x = np.stack([a.values for a in arms])  # (R, n)
    r, n = x.shape
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    df = (r - 1) * (n - 1)
    var_d = 2.0 * float(np.sum(resid ** 2)) / df  # variance of one seed's difference
    sup_level, eq_level = levels(r - 1)
    out = []
    for a in arms[1:]:
        est, _, _ = paired_estimate(a, arms[0])
        pooled = SeedEstimate(est.mean, est.n_seeds, est.per_seed, est.sd_seeds, est.se_test, est.var_shared,
                              ((var_d / n, df),))
        out.append(verdict_of(pooled.interval(sup_level), pooled.interval(eq_level), margin))
    return out


def _tally(sc: Scenario, method: str, verdicts: list[list[tuple[str, bool]]]) -> Coverage:
    k = len(sc.diffs)
    wrong = np.array([[_false_claims(v, w, d, sc.margin) for (v, w), d in zip(fam, sc.diffs)] for fam in verdicts])
    fwer = float(wrong.any(axis=1).mean())
    share = {name: [float(np.mean([fam[i][0] == name or (name == "equivalent" and fam[i][1]) for fam in verdicts]))
                    for i in range(k)] for name in ("equivalent", "better", "worse")}
    return Coverage(sc, method, len(verdicts), fwer, math.sqrt(max(fwer * (1 - fwer), 1e-12) / len(verdicts)),
                    float(wrong.mean(axis=0).max()), share["equivalent"], share["better"], share["worse"])


def simulate(sc: Scenario, *, families: int = 2000, n_boot: int = 200, seed: int = 0,
             method: Literal["engine", "pooled"] = "engine") -> Coverage:
    """Simulate ``families`` families of ``sc`` (Gaussian values, module docstring) and judge each."""
    rng = np.random.default_rng([seed, 0xC0FE])
    k, n = len(sc.diffs), sc.n_seeds
    mu = np.array((0.0, *sc.diffs))
    sd = np.asarray(sc.seed_sd)
    v = sc.test_sd ** 2
    parts = np.sqrt([sc.test_corr_arm * v, (sc.test_corr_seed - sc.test_corr_arm) * v, (1 - sc.test_corr_seed) * v])

    def test_error(size: tuple[int, ...]) -> np.ndarray:  # (..., R, n)
        g = rng.standard_normal(size + (1, 1)) * parts[0]
        h = rng.standard_normal(size + (k + 1, 1)) * parts[1]
        return g + h + rng.standard_normal(size + (k + 1, n)) * parts[2]

    verdicts = []
    for _ in range(families):
        shared = rng.standard_normal(n) * math.sqrt(sc.pair_corr)
        train = sd[:, None] * (shared[None, :] + rng.standard_normal((k + 1, n)) * math.sqrt(1 - sc.pair_corr))
        x = mu[:, None] + train + test_error(())
        reps = x[:, :, None] + np.moveaxis(test_error((n_boot,)), 0, -1)  # (R, n, B)
        arms = [Arm(tuple(range(n)), x[r], reps[r]) for r in range(k + 1)]
        if method == "pooled":
            verdicts.append(_pooled(arms, sc.margin))
            continue
        judged = judge_family([paired_estimate(a, arms[0])[0] for a in arms[1:]], sc.margin, draws=0)
        verdicts.append([(j.verdict, j.within_margin) for j in judged])  # type: ignore[union-attr]
    return _tally(sc, method, verdicts)


def simulate_auc(*, n_seeds: int = 3, k: int = 3, n_test: int = 400, families: int = 200, n_boot: int = 200,
                 margin: float = 0.02, seed: int = 0) -> Coverage:
    """A null family with real AUCs: K regimes that train exactly like random (every true
    difference 0), binary scores ``y·1.5 + difficulty_i + model noise`` (the image difficulty
    shared by every run, a seed's own signal strength varying by ±0.15), AUCs and aligned
    bootstrap replicates computed by :func:`~transfusion.stats.bootstrap`. Any better / worse is
    false; "equivalent" is the power at d = 0."""
    from transfusion.data.base import TaskSpec

    from .bootstrap import bootstrap

    task = TaskSpec("binary", ("negative", "positive"))
    rng = np.random.default_rng([seed, 0xA0C])
    sc = Scenario(f"real AUCs, K = {k}, {n_seeds} seeds, {n_test} test images", n_seeds, (0.0,) * k,
                  (float("nan"),) * (k + 1), float("nan"), margin, 0.0, 0.0)
    verdicts = []
    for _ in range(families):
        y = (rng.random(n_test) < 0.5).astype(np.int64)
        difficulty = rng.standard_normal(n_test)
        arms = []
        for _r in range(k + 1):
            values, reps = [], []
            for _s in range(n_seeds):
                signal = 1.5 + 0.15 * rng.standard_normal()
                scores = y * signal + difficulty + rng.standard_normal(n_test)
                b = bootstrap(task, scores, y, None, metric="auc", n_boot=n_boot, seed=seed)
                values.append(b.estimate)
                reps.append(b.replicates)
            arms.append(Arm(tuple(range(n_seeds)), np.array(values), np.stack(reps)))
        judged = judge_family([paired_estimate(a, arms[0])[0] for a in arms[1:]], margin, draws=0)
        verdicts.append([(j.verdict, j.within_margin) for j in judged])  # type: ignore[union-attr]
    return _tally(sc, "engine", verdicts)


def scenarios(margin: float = 0.02) -> list[Scenario]:
    """The scenarios of the coverage table (``docs/report.md``): AUC units, seed SD 1 point and
    test SE 0.3 point unless named otherwise."""
    p = 0.01
    return [
        Scenario("homogeneous, K = 3, 3 seeds", 3, (0.0,) * 3, (p,) * 4, 0.3 * p, margin),
        Scenario("homogeneous, K = 5, 3 seeds", 3, (0.0,) * 5, (p,) * 6, 0.3 * p, margin),
        Scenario("one regime 3× noisier, K = 3, 3 seeds", 3, (0.0,) * 3, (p, 3 * p, p, p), 0.3 * p, margin),
        Scenario("one regime 3× noisier, K = 5, 5 seeds", 5, (0.0,) * 5, (p, 3 * p, p, p, p, p), 0.3 * p, margin),
        Scenario("noisy random arm (shared baseline), K = 3", 3, (0.0,) * 3, (3 * p, p, p, p), 0.3 * p, margin),
        Scenario("true difference at +margin, K = 3, 5 seeds", 5, (margin, 0.0, 0.0), (p,) * 4, 0.3 * p, margin),
        Scenario("true difference at −margin, noisy, K = 3, 5 seeds", 5, (-margin, 0.0, 0.0), (p, 3 * p, p, p),
                 0.3 * p, margin),
        Scenario("test noise dominates, K = 3, 3 seeds", 3, (0.0,) * 3, (0.2 * p,) * 4, 1.0 * p, margin),
        Scenario("seed pairs correlated (ρ = 0.5), K = 3, 5 seeds", 5, (0.0, 0.01, -0.01), (p,) * 4, 0.3 * p,
                 margin, pair_corr=0.5),
    ]


__all__ = ["ALPHA", "Coverage", "Scenario", "scenarios", "simulate", "simulate_auc"]
