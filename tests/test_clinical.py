"""Calibration (ECE, Brier, NLL, temperature scaling) and operating points against independent
computations: scikit-learn's losses, a constructed case with a known ECE, an over-confident model
that temperature scaling must fix, thresholds that hit their validation targets."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from transfusion.data.base import TaskSpec
from transfusion.stats.calibration import (
    apply_temperature,
    calibration,
    ece_binary,
    fit_temperature,
    reliability_curve,
)
from transfusion.stats.operating import operating_points, rates, threshold_for, wilson

BINARY = TaskSpec("binary", ("no", "yes"))
MULTICLASS = TaskSpec("multiclass", ("a", "b", "c"))
MULTILABEL = TaskSpec("multilabel", ("x", "y"))


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and outcomes drawn from them: perfectly calibrated in expectation."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, n)
    return p, (rng.uniform(size=n) < p).astype(int)


def test_brier_and_nll_equal_scikit_learn():
    p, y = _calibrated(500, 0)
    c = calibration(BINARY, p, y, n_boot=0)
    assert c["brier"].value == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert c["nll"].value == pytest.approx(log_loss(y, p), abs=1e-12)
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), 300)
    labels = rng.integers(0, 3, 300)
    mc = calibration(MULTICLASS, probs, labels, n_boot=0)
    assert mc["nll"].value == pytest.approx(log_loss(labels, probs, labels=[0, 1, 2]), abs=1e-12)
    onehot = np.eye(3)[labels]
    assert mc["brier"].value == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)), abs=1e-12)


def test_ece_on_a_constructed_case_with_a_known_value():
    # two equal-mass bins: scores 0.2 with 1 positive in 4 (|0.25 − 0.2| = 0.05),
    # scores 0.8 with 2 positives in 4 (|0.5 − 0.8| = 0.3): ECE = (4·0.05 + 4·0.3) / 8 = 0.175
    p = np.array([0.2, 0.2, 0.2, 0.2, 0.8, 0.8, 0.8, 0.8])
    y = np.array([1, 0, 0, 0, 1, 1, 0, 0])
    assert ece_binary(p, y, n_bins=2) == pytest.approx(0.175)
    mean_p, freq = reliability_curve(p, y, n_bins=2)
    assert mean_p.tolist() == pytest.approx([0.2, 0.8]) and freq.tolist() == pytest.approx([0.25, 0.5])
    # equal-mass: 10 bins of 100 images each on 1000 calibrated scores, ECE near 0
    p, y = _calibrated(20_000, 2)
    assert ece_binary(p, y, 10) < 0.02


def test_bootstrap_intervals_hold_the_estimate_and_are_seeded():
    p, y = _calibrated(400, 3)
    a = calibration(BINARY, p, y, n_boot=200, seed=5)
    assert a == calibration(BINARY, p, y, n_boot=200, seed=5)
    for k in ("ece", "brier", "nll"):
        assert a[k].low < a[k].high and a[k].low <= a[k].value * 1.5 and a[k].high >= a[k].value * 0.5


def test_multilabel_measures_are_the_macro_mean_over_known_rows():
    p1, y1 = _calibrated(300, 4)
    p2, y2 = _calibrated(300, 5)
    scores, targets = np.stack([p1, p2], 1), np.stack([y1, y2], 1).astype(np.float32)
    mask = np.ones_like(scores, bool)
    mask[:100, 1] = False
    c = calibration(MULTILABEL, scores, targets, mask, n_boot=0)
    want = (brier_score_loss(y1, p1) + brier_score_loss(y2[100:], p2[100:])) / 2
    assert c["brier"].value == pytest.approx(want, abs=1e-12)


def test_temperature_scaling_fixes_an_over_confident_model():
    rng = np.random.default_rng(6)
    z = rng.normal(0, 1.5, 2000)
    y = (rng.uniform(size=2000) < 1 / (1 + np.exp(-z))).astype(int)
    over = 1 / (1 + np.exp(-3 * z))  # logits three times too large
    t = fit_temperature(BINARY, over[:1000], y[:1000])
    assert t == pytest.approx(3.0, rel=0.15)
    before = calibration(BINARY, over[1000:], y[1000:], n_boot=0)
    after = calibration(BINARY, apply_temperature(BINARY, over[1000:], t), y[1000:], n_boot=0)
    assert after["nll"].value < before["nll"].value and after["ece"].value < before["ece"].value
    # the ranking (and so the AUC) is unchanged
    assert np.array_equal(np.argsort(over), np.argsort(apply_temperature(BINARY, over, t)))
    probs = rng.dirichlet(np.ones(3) * 0.3, 50)
    assert np.allclose(apply_temperature(MULTICLASS, probs, 1.0), probs)


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_thresholds_hit_their_validation_targets(level):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 333)
    s = rng.normal(y * 1.2, 1.0)
    t_sens = threshold_for(s, y, "sensitivity", level)
    r = rates(s, y, t_sens)
    assert r["sensitivity"][0] >= level
    assert rates(s, y, np.nextafter(t_sens, np.inf))["sensitivity"][0] < level  # the highest such threshold
    t_spec = threshold_for(s, y, "specificity", level)
    assert rates(s, y, t_spec)["specificity"][0] >= level
    assert rates(s, y, np.nextafter(t_spec, -np.inf) - 1e-12)["specificity"][0] < level or t_spec <= s.min()


def test_wilson_interval_matches_the_textbook_case():
    p, lo, hi = wilson(8, 10)  # Wilson 95% for 8/10: 0.490–0.943
    assert p == 0.8 and lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) == (None, None, None)


def test_operating_points_per_label_and_target():
    rng = np.random.default_rng(8)
    yv, yt = rng.integers(0, 2, (200, 2)), rng.integers(0, 2, (300, 2))
    val = {"scores": np.clip(rng.normal(0.3 + 0.4 * yv, 0.2), 0, 1), "targets": yv}
    test = {"scores": np.clip(rng.normal(0.3 + 0.4 * yt, 0.2), 0, 1), "targets": yt}
    points = operating_points(MULTILABEL, val, test, sensitivity=0.9, specificity=0.85)
    assert [(p.label, p.target, p.level) for p in points] == [
        ("x", "sensitivity", 0.9), ("x", "specificity", 0.85), ("y", "sensitivity", 0.9), ("y", "specificity", 0.85)]
    for p in points:
        assert (p.val_sensitivity if p.target == "sensitivity" else p.val_specificity) >= p.level
        counts = p.test
        assert counts["tp"] + counts["fp"] + counts["tn"] + counts["fn"] == 300
    assert operating_points(MULTICLASS, val, test) == []
