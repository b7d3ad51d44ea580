"""Calibration (debiased CE, plug-in ECE, Brier, NLL, temperature scaling) and operating points
against independent computations: scikit-learn's losses, constructed cases with a known ECE and
CE², a direct loop over bins, an over-confident model that temperature scaling must fix,
thresholds whose Clopper–Pearson bound meets the target, and the report's rows (intervals that
contain their estimates, skipped targets with a reason, "best calibrated" only where a difference
says so). Simulations of bias, coverage and hit rates: ``tests/test_calibration.py``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from transfusion.data.base import TaskSpec
from transfusion.stats.calibration import (
    apply_temperature,
    calibration,
    ce2_binary,
    ce_binary,
    ece_binary,
    fit_temperature,
    reliability_curve,
)
from transfusion.stats.operating import (
    ThresholdUnreachable,
    cases_needed,
    lower_bound,
    operating_points,
    rate_replicates,
    rates,
    threshold_for,
    wilson,
)

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
    correct = (probs.argmax(axis=1) == labels).astype(float)  # top-label confidence against correctness
    assert mc["ce"].value == pytest.approx(ce_binary(probs.max(axis=1), correct), abs=1e-12)


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


def test_debiased_ce_on_a_constructed_case_and_against_a_loop_over_bins():
    # the same two bins: (0.05² − 0.25·0.75/3) / 2 + (0.3² − 0.5·0.5/3) / 2 = −0.026667: below its noise, CE 0
    p = np.array([0.2, 0.2, 0.2, 0.2, 0.8, 0.8, 0.8, 0.8])
    y = np.array([1, 0, 0, 0, 1, 1, 0, 0])
    assert ce2_binary(p, y, n_bins=2) == pytest.approx(-0.08 / 3)
    assert ce_binary(p, y, n_bins=2) == 0.0
    # far from calibrated: every score 0.9, one positive in four per bin
    assert ce2_binary(np.full(8, 0.9), y[[0, 1, 2, 3, 0, 1, 2, 3]], 2) == pytest.approx(0.65 ** 2 - 0.1875 / 3)
    # random scores: a direct loop over equal-mass bins (bin of rank r = r·k // N), k = min(bins, N // 2)
    rng = np.random.default_rng(9)
    for n, bins in ((1000, 15), (37, 15), (9, 15), (2, 15)):
        p = rng.uniform(0, 1, n)
        y = (rng.uniform(size=n) < p ** 1.5).astype(float)
        k = min(bins, n // 2)
        order = np.argsort(p, kind="stable")
        b = np.arange(n) * k // n
        want = 0.0
        for j in range(k):
            yy, pp = y[order][b == j], p[order][b == j]
            want += len(yy) / n * ((yy.mean() - pp.mean()) ** 2 - yy.mean() * (1 - yy.mean()) / (len(yy) - 1))
        assert ce2_binary(p, y, bins) == pytest.approx(want, abs=1e-12)
        assert ce_binary(p, y, bins) == pytest.approx(np.sqrt(max(0.0, want)), abs=1e-12)


@pytest.mark.parametrize("power", [1.0, 2.0])  # calibrated; over-predicting
def test_intervals_contain_their_estimate_and_are_seeded(power):
    rng = np.random.default_rng(3)
    for n in (40, 400):
        p = rng.uniform(0.02, 0.98, n)
        y = (rng.uniform(size=n) < p ** power).astype(int)
        a = calibration(BINARY, p, y, n_boot=200, seed=5)
        assert a == calibration(BINARY, p, y, n_boot=200, seed=5)
        for k in ("ce", "brier", "nll"):
            assert 0 <= a[k].low <= a[k].value <= a[k].high and a[k].low < a[k].high
        assert a["ece"].low is None and a["ece"].value == pytest.approx(ece_binary(p, y))
        assert a["ce"].value == pytest.approx(ce_binary(p, y))
    assert calibration(BINARY, p, y, n_boot=0)["ce"].low is None


def test_multilabel_measures_are_the_macro_mean_over_known_rows():
    p1, y1 = _calibrated(300, 4)
    p2, y2 = _calibrated(300, 5)
    scores, targets = np.stack([p1, p2], 1), np.stack([y1, y2], 1).astype(np.float32)
    mask = np.ones_like(scores, bool)
    mask[:100, 1] = False
    c = calibration(MULTILABEL, scores, targets, mask, n_boot=0)
    want = (brier_score_loss(y1, p1) + brier_score_loss(y2[100:], p2[100:])) / 2
    assert c["brier"].value == pytest.approx(want, abs=1e-12)
    ce2 = (ce2_binary(p1, y1) + ce2_binary(p2[100:], y2[100:])) / 2  # CE: the root of the labels' mean CE²
    assert c["ce"].value == pytest.approx(np.sqrt(max(0.0, ce2)), abs=1e-12)


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
    assert after["ce"].value < before["ce"].value / 2
    # the ranking (and so the AUC) is unchanged
    assert np.array_equal(np.argsort(over), np.argsort(apply_temperature(BINARY, over, t)))
    probs = rng.dirichlet(np.ones(3) * 0.3, 50)
    assert np.allclose(apply_temperature(MULTICLASS, probs, 1.0), probs)


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_point_rule_thresholds_hit_their_validation_targets(level):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 333)
    s = rng.normal(y * 1.2, 1.0)
    t_sens = threshold_for(s, y, "sensitivity", level, None)
    r = rates(s, y, t_sens)
    assert r["sensitivity"][0] >= level
    assert rates(s, y, np.nextafter(t_sens, np.inf))["sensitivity"][0] < level  # the highest such threshold
    t_spec = threshold_for(s, y, "specificity", level, None)
    assert rates(s, y, t_spec)["specificity"][0] >= level
    assert rates(s, y, np.nextafter(t_spec, -np.inf) - 1e-12)["specificity"][0] < level or t_spec <= s.min()


@pytest.mark.parametrize("level", [0.8, 0.9])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_thresholds_meet_their_target_with_confidence_on_validation(level, confidence):
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 333)
    s = rng.normal(y * 1.2, 1.0)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    t_sens = threshold_for(s, y, "sensitivity", level, confidence)
    assert lower_bound(rates(s, y, t_sens)["tp"], n_pos, confidence) >= level
    # the highest such threshold: one step higher calls fewer positives and the bound falls short
    assert lower_bound(rates(s, y, np.nextafter(t_sens, np.inf))["tp"], n_pos, confidence) < level
    assert t_sens < threshold_for(s, y, "sensitivity", level, None)  # stricter than the point rule
    t_spec = threshold_for(s, y, "specificity", level, confidence)
    assert lower_bound(rates(s, y, t_spec)["tn"], n_neg, confidence) >= level
    assert lower_bound(rates(s, y, np.nextafter(t_spec, -np.inf) - 1e-12)["tn"], n_neg, confidence) < level


def test_clopper_pearson_bound_and_the_cases_a_target_needs():
    from scipy.stats import binom

    lo = lower_bound(8, 10, 0.95)  # the textbook one-sided 95% bound of 8/10 (= the 90% two-sided interval's)
    assert lo == pytest.approx(0.4931, abs=1e-4) and binom.sf(7, 10, lo) == pytest.approx(0.05)
    assert lower_bound(0, 10) == 0.0
    assert cases_needed(0.9, 0.95) == 29 and cases_needed(0.95, 0.95) == 59 and cases_needed(0.9, 0.9) == 22
    assert lower_bound(29, 29) >= 0.9 > lower_bound(28, 28)
    y = np.r_[np.zeros(50), np.ones(28)]
    with pytest.raises(ThresholdUnreachable, match="needs ≥ 29 positive validation cases, has 28"):
        threshold_for(np.arange(78.0), y, "sensitivity", 0.9)
    assert threshold_for(np.arange(79.0), np.r_[y, 1], "sensitivity", 0.9) == 50.0  # 29 positives: all of them
    with pytest.raises(ValueError, match="confidence"):
        threshold_for(np.arange(79.0), np.r_[y, 1], "sensitivity", 1.0)


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
        assert p.confidence == 0.95 and p.val_bound >= p.level and p.to_dict()["confidence"] == 0.95
        counts = p.test
        assert counts["tp"] + counts["fp"] + counts["tn"] + counts["fn"] == 300
    assert operating_points(MULTICLASS, val, test) == []
    # too few validation positives (~100) for 0.98 (≥ 149 needed): that target is skipped, the others stay
    few = operating_points(MULTILABEL, val, test, sensitivity=0.98, specificity=0.85)
    assert [(p.label, p.target) for p in few] == [("x", "specificity"), ("y", "specificity")]


def test_rate_replicates_line_up_across_runs_and_match_the_counts():
    rng = np.random.default_rng(10)
    y = rng.integers(0, 2, 300)
    known = rng.uniform(size=300) < 0.8
    a = rng.normal(y, 1.0)
    pa, ra = rate_replicates(a, y, known, 0.5, n_boot=50, seed=3)
    r = rates(a[known], y[known], 0.5)
    assert pa.tolist() == pytest.approx([r[k][0] for k in ("sensitivity", "specificity", "ppv", "npv")])
    # replicate b resamples the rows numpy's generator draws from the seed alone (the same for every run)
    idx = np.random.default_rng(3).integers(0, 300, (50, 300))[7]
    k, call, pos = known[idx], a[idx] >= 0.5, y[idx] == 1
    assert ra[7, 0] == pytest.approx(np.sum(call & pos & k) / np.sum(pos & k))
    assert ra[7, 3] == pytest.approx(np.sum(~call & ~pos & k) / np.sum(~call & k))


def _cells(temps: tuple[float, ...] = (1.0, 2.0), n_seeds: int = 3, n_test: int = 400,
           n_val: int = 300) -> tuple[dict, dict, dict]:
    """Report inputs for one dataset: a regime per temperature, scores = expit(temp · logit(q) + seed
    noise) of the true probabilities q (temp 1: calibrated; 2: over-confident)."""
    rng = np.random.default_rng(11)
    q_test, q_val = rng.uniform(0.05, 0.95, n_test), rng.uniform(0.05, 0.95, n_val)
    y_test, y_val = (rng.uniform(size=n_test) < q_test).astype(int), (rng.uniform(size=n_val) < q_val).astype(int)
    summary = SimpleNamespace(task=BINARY)

    def score(q: np.ndarray, temp: float) -> np.ndarray:
        return 1 / (1 + np.exp(-(np.log(q / (1 - q)) * temp + rng.normal(0, 0.1, len(q)))))

    cells, test, val = {}, {}, {}
    for temp in temps:
        key = ("synth", "all", "m", f"t{temp:g}")
        cells[key] = []
        for s in range(n_seeds):
            rid = f"{key[3]}-{s}"
            test[rid] = {"scores": score(q_test, temp), "targets": y_test, "mask": None}
            val[rid] = {"scores": score(q_val, temp), "targets": y_val, "mask": None}
            cells[key].append({"run_id": rid, "summary": summary, "test_auc": 0.8})
    return cells, test, val


def test_report_rows_contain_their_estimates_and_skip_unreachable_targets():
    from transfusion.report.clinical import clinical_rows

    cells, test, val = _cells()
    rows = clinical_rows(cells, test, val, sensitivity=0.9, specificity=0.99, n_bins=10, n_boot=200)
    assert len(rows.calibration) == 2
    for r in rows.calibration:
        for m in ("ce", "brier", "nll", "ce_scaled", "brier_scaled", "nll_scaled"):
            assert 0 <= r[f"{m}_low"] <= r[m] <= r[f"{m}_high"], (r["init"], m)
        assert r["ce"] == pytest.approx(np.sqrt(max(0.0, r["ce2"]))) and r["ce_floor"] > 0
        assert r["n_seeds"] == r["n_seeds_val"] == 3
    calibrated, over = rows.calibration
    assert calibrated["ce"] < calibrated["ce_floor"] < over["ce"]  # the over-confident regime: above the noise
    assert over["temperature"] > 1.5 and over["ce_scaled"] < over["ce"] / 2
    by = {(r["init"], r["target"]): r for r in rows.operating}
    for init in ("t1", "t2"):
        sens = by[(init, "sensitivity")]
        assert sens["n_seeds"] == 3 and sens["reason"] == "" and sens["confidence"] == 0.95
        for k in ("sensitivity", "specificity", "ppv", "npv"):
            assert 0 <= sens[f"{k}_low"] <= sens[k] <= sens[f"{k}_high"] <= 1
        # the mean over seeds of each seed's test rate at its own threshold
        per = [rates(test[f"{init}-{s}"]["scores"], test[f"{init}-{s}"]["targets"],
                     threshold_for(val[f"{init}-{s}"]["scores"], val[f"{init}-{s}"]["targets"], "sensitivity", 0.9))
               for s in range(3)]
        assert sens["sensitivity"] == pytest.approx(np.mean([p["sensitivity"][0] for p in per]))
        assert sens["tp"] == sum(p["tp"] for p in per)
        # ~150 validation negatives cannot show a specificity of 0.99 (needs 299): skipped, with the reason
        spec = by[(init, "specificity")]
        assert spec.get("threshold") is None and spec["n_seeds"] == 0 and "needs ≥ 299 negative" in spec["reason"]


def test_best_calibrated_only_where_a_difference_says_so():
    from transfusion.report.clinical import best_calibrated, calibration_glance, clinical_rows

    rows = clinical_rows(*_cells(temps=(1.0, 2.0)), sensitivity=0.9, specificity=0.9, n_bins=10,
                         n_boot=200).calibration
    pick = best_calibrated(rows, margin=0.05)
    assert pick.best is pick.lowest and pick.best["init"] == "t1" and pick.tied == () and pick.n_eligible == 2
    assert pick.level == pytest.approx(0.95) and "below each of the other 1 rows" in calibration_glance(pick)
    rows[0]["auc_mean"] = 0.6  # outside the AUC margin a row is no candidate
    assert best_calibrated(rows, margin=0.05).lowest["init"] == "t2"
    # three regimes calibrated alike: the lowest is named, and that nothing separates it
    rows = clinical_rows(*_cells(temps=(1.0, 1.03, 0.97)), sensitivity=0.9, specificity=0.9, n_bins=10,
                         n_boot=200).calibration
    pick = best_calibrated(rows, margin=0.05)
    assert pick.best is None and len(pick.tied) == 2 and pick.level == pytest.approx(1 - 0.05 / 2)
    assert calibration_glance(pick).startswith("no regime calibrates measurably better")
    assert best_calibrated([], 0.05) is None
