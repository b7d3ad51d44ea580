"""Simulations (fixed seeds, a few seconds) of the properties the report's calibration and
operating-point numbers rest on: the debiased CE² is unbiased where the plug-in ECE is not, its
interval covers the true CE near nominal (one seed and three), a perfectly calibrated model
exceeds the noise floor about 5% of the time, and thresholds chosen with a one-sided
Clopper–Pearson bound meet their target on new images ≥ 95% of the time where the point rule
does about half the time."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from scipy.stats import norm

from transfusion.data.base import TaskSpec
from transfusion.stats.calibration import (
    calibration,
    calibration_replicates,
    ce2_binary,
    ce_binary,
    consistency_ce2,
    ece_binary,
    noise_floor,
    summarize,
)
from transfusion.stats.operating import threshold_for

BINARY = TaskSpec("binary", ("no", "yes"))


def _true_ce2(p: np.ndarray, q: np.ndarray, n_bins: int = 15, power: int = 2) -> float:
    """The binned squared calibration error the estimator targets: Σ_b (n_b/N)(mean q − mean p)²
    over the equal-mass bins of the scores ``p`` (``q`` the true probabilities); ``power=1``: the
    true binned ℓ1 error the plug-in ECE estimates."""
    n = len(p)
    k = min(n_bins, n // 2)
    order = np.argsort(p, kind="stable")
    b = np.arange(n) * k // n
    gap = (q - p)[order]
    return float(sum(np.abs(np.mean(gap[b == j])) ** power * np.mean(b == j) for j in range(k)))


def _model(rng: np.random.Generator, n: int, temp: float) -> tuple[np.ndarray, np.ndarray]:
    """(scores, true probabilities): q = expit(N(0, 1.5)), scores expit(temp · logit q)."""
    q = expit(rng.normal(0, 1.5, n))
    return expit(temp * logit(q)), q


@pytest.mark.parametrize("temp", [1.0, 1.5])  # perfectly calibrated; over-confident
def test_debiased_ce2_is_unbiased_where_the_plug_in_ece_is_not(temp):
    rng = np.random.default_rng(20)
    p, q = _model(rng, 1050, temp)  # fixed scores, fresh outcomes: the true CE² is fixed
    truth = _true_ce2(p, q)
    y = rng.uniform(size=(1000, 1050)) < q
    est = np.array([ce2_binary(p, row) for row in y])
    se = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean() - truth) < 3.5 * se, (est.mean(), truth, se)
    ece = np.array([ece_binary(p, row) for row in y[:300]])
    bias = ece.mean() - _true_ce2(p, q, power=1)  # the plug-in ECE sits above the true binned ℓ1 error
    assert bias > 4 * ece.std(ddof=1) / np.sqrt(len(ece)) and (bias > 0.03 or temp != 1.0)


@pytest.mark.parametrize("temp", [1.0, pytest.param(1.2, marks=pytest.mark.slow), 1.5])
def test_ce_interval_covers_the_true_error_near_nominal(temp):
    rng = np.random.default_rng(21)
    reps, covered = 300, 0
    for _ in range(reps):
        p, q = _model(rng, 500, temp)
        y = rng.uniform(size=500) < q
        c = calibration(BINARY, p, y, n_boot=100, seed=1)["ce"]
        assert c.low <= c.value <= c.high
        covered += c.low <= np.sqrt(_true_ce2(p, q)) <= c.high
    assert covered / reps >= 0.90  # nominal 0.95; MC SD ≈ 0.013 at 300 replications


@pytest.mark.slow
def test_ce_interval_over_three_seeds_covers_near_nominal():
    # three seeds of one over-confident model: seed noise in the scores, outcomes shared (one test split)
    rng = np.random.default_rng(22)
    reps, covered = 200, 0
    for _ in range(reps):
        q = expit(rng.normal(0, 1.5, 500))
        y = rng.uniform(size=500) < q
        ps = [expit(1.3 * logit(q) + rng.normal(0, 0.3, 500)) for _ in range(3)]
        out = [calibration_replicates(BINARY, p, y, n_boot=100, seed=1) for p in ps]
        c = summarize(np.array([o[0] for o in out]), np.array([o[1] for o in out]))["ce"]
        assert c.low <= c.value <= c.high
        covered += c.low <= np.sqrt(np.mean([_true_ce2(p, q) for p in ps])) <= c.high
    assert covered / reps >= 0.90


def test_a_calibrated_model_exceeds_the_noise_floor_about_5_percent_of_the_time():
    rng = np.random.default_rng(23)
    p, _ = _model(rng, 1050, 1.0)
    floor = noise_floor(consistency_ce2(BINARY, p, seed=4))
    above = np.mean([ce_binary(p, rng.uniform(size=1050) < p) > floor for _ in range(1000)])
    assert 0.025 <= above <= 0.08, above
    assert 0.02 < floor < 0.08  # at 1050 images and 15 bins


@pytest.mark.parametrize("target", ["sensitivity", "specificity"])
def test_thresholds_with_confidence_meet_the_target_on_new_images(target):
    # validation like the audit's: 105 positives, 945 negatives; scores N(2, 1) and N(0, 1)
    rng = np.random.default_rng(24)
    hits = {None: 0, 0.95: 0}
    reps = 600
    for _ in range(reps):
        s = np.r_[rng.normal(0, 1, 945), rng.normal(2, 1, 105)]
        if target == "specificity":  # as few negatives as the sensitivity case has positives
            s = np.r_[rng.normal(0, 1, 105), rng.normal(2, 1, 945)]
        y = np.r_[np.zeros(945 if target == "sensitivity" else 105), np.ones(105 if target == "sensitivity" else 945)]
        for conf in hits:
            t = threshold_for(s, y, target, 0.9, conf)
            true_rate = norm.sf(t - 2) if target == "sensitivity" else norm.cdf(t)  # on unlimited new images
            hits[conf] += true_rate >= 0.9
    assert hits[0.95] / reps >= 0.93  # nominal ≥ 0.95 (Clopper–Pearson is conservative)
    assert 0.35 <= hits[None] / reps <= 0.65  # the point rule: about half the time
