"""Metrics and statistics: scikit-learn agreement, bootstrap, paired tests, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

from transfusion.data.base import TaskSpec
from transfusion.stats import (
    PairedDifference,
    UndefinedMetricError,
    bootstrap,
    bootstrap_ci,
    delong_test,
    evaluate,
    paired_difference,
    scores_from_logits,
    steps_to_target,
    verdict_of,
)
from transfusion.stats.bootstrap import _Prepared, _rank_auc_from_counts
from transfusion.stats.metrics import _check_inputs

BINARY = TaskSpec("binary", ("negative", "positive"))
MULTICLASS = TaskSpec("multiclass", ("a", "b", "c", "d"))
MULTILABEL = TaskSpec("multilabel", ("atel", "card", "cons", "edema", "effusion"))


def _binary_data(n: int, seed: int, signal: float = 1.0, decimals: int | None = None):
    """Binary targets and a score with AUC Φ(signal/√2) in expectation; rounding makes ties."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    z = rng.normal(size=n) + signal * y
    if decimals is not None:
        z = np.round(z, decimals)
    return z, y


def _multilabel_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 5)) < [0.2, 0.4, 0.5, 0.3, 0.6]).astype(np.float32)
    s = 1 / (1 + np.exp(-(rng.normal(size=(n, 5)) + 1.5 * y)))
    mask = rng.random((n, 5)) > 0.25
    return s, y, mask


# --------------------------------------------------------------------------- scores_from_logits


def test_scores_from_logits_match_torch_and_are_stable():
    rng = np.random.default_rng(0)
    z2 = rng.normal(size=(50, 2)) * 5
    np.testing.assert_allclose(
        scores_from_logits(BINARY, z2), torch.softmax(torch.tensor(z2), 1)[:, 1].numpy(), atol=1e-12
    )
    z4 = rng.normal(size=(50, 4)) * 5
    p = scores_from_logits(MULTICLASS, torch.tensor(z4))
    np.testing.assert_allclose(p, torch.softmax(torch.tensor(z4), 1).numpy(), atol=1e-12)
    z5 = torch.tensor(rng.normal(size=(50, 5)), dtype=torch.bfloat16)
    q = scores_from_logits(MULTILABEL, z5)
    np.testing.assert_allclose(q, torch.sigmoid(z5.double()).numpy(), atol=1e-12)
    assert q.dtype == np.float64
    huge = np.array([[1e4, -1e4], [-1e4, 1e4], [800.0, 800.0]])
    with np.errstate(over="raise", invalid="raise"):  # no overflow, no NaN
        np.testing.assert_allclose(scores_from_logits(BINARY, huge), [0.0, 1.0, 0.5])
        big = scores_from_logits(MULTICLASS, np.array([[1e4, 0, 0, -1e4]]))
        np.testing.assert_allclose(big, [[1, 0, 0, 0]])
        assert np.isfinite(scores_from_logits(MULTILABEL, np.full((1, 5), -1e4))).all()


def test_scores_from_logits_errors():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        scores_from_logits(BINARY, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="diverge"):
        scores_from_logits(MULTICLASS, np.full((2, 4), np.nan))


# --------------------------------------------------------------------------- evaluate


def test_binary_matches_sklearn():
    z, y = _binary_data(400, 1, decimals=1)  # heavy ties
    p = 1 / (1 + np.exp(-z))
    r = evaluate(BINARY, p, y)
    assert r["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert r["auprc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert r["acc"] == pytest.approx(accuracy_score(y, p > 0.5))
    assert r["per_label_auc"] == {"positive": r["auc"]}
    assert r["n"] == 400 and r["skipped"] == [] and r["auc_reason"] is None


def test_binary_accepts_torch_and_column_vector():
    z, y = _binary_data(100, 2)
    p = 1 / (1 + np.exp(-z))
    a = evaluate(BINARY, torch.tensor(p).unsqueeze(1), torch.tensor(y))
    assert a["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_multiclass_matches_sklearn_ovr():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 1.2 * np.eye(4)[y]
    p = scores_from_logits(MULTICLASS, logits)
    r = evaluate(MULTICLASS, p, y)
    assert r["auc"] == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12
    )
    onehot = np.eye(4)[y]
    assert r["auprc"] == pytest.approx(
        average_precision_score(onehot, p, average="macro"), abs=1e-12
    )
    assert r["acc"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    for c, name in enumerate(MULTICLASS.labels):
        assert r["per_label_auc"][name] == pytest.approx(roc_auc_score(y == c, p[:, c]), abs=1e-12)


def test_multiclass_absent_class_is_skipped_not_nan():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 100)  # class "d" never occurs
    p = scores_from_logits(MULTICLASS, rng.normal(size=(100, 4)))
    r = evaluate(MULTICLASS, p, y)
    assert r["skipped"] == ["d"] and r["per_label_auc"]["d"] is None
    assert "no positives" in r["skip_reasons"]["d"]
    expected = np.mean([roc_auc_score(y == c, p[:, c]) for c in range(3)])
    assert r["auc"] == pytest.approx(expected, abs=1e-12)


def test_multilabel_unmasked_matches_sklearn_macro():
    s, y, _ = _multilabel_data(300, 5)
    r = evaluate(MULTILABEL, s, y)
    assert r["auc"] == pytest.approx(roc_auc_score(y, s, average="macro"), abs=1e-12)
    assert r["auprc"] == pytest.approx(average_precision_score(y, s, average="macro"), abs=1e-12)
    assert r["acc"] == pytest.approx(np.mean((s > 0.5) == y))


def test_masked_multilabel_equals_sklearn_on_filtered_rows():
    s, y, mask = _multilabel_data(300, 6)
    y_with_junk = y.copy()
    y_with_junk[~mask] = -1.0  # uncertain labels (CheXpert's -1) must be ignored, not read
    r = evaluate(MULTILABEL, s, y_with_junk, mask)
    per, per_ap, per_acc = [], [], []
    for j, name in enumerate(MULTILABEL.labels):
        rows = mask[:, j]
        auc = roc_auc_score(y[rows, j], s[rows, j])
        assert r["per_label_auc"][name] == pytest.approx(auc, abs=1e-12)
        per.append(auc)
        per_ap.append(average_precision_score(y[rows, j], s[rows, j]))
        per_acc.append(accuracy_score(y[rows, j], s[rows, j] > 0.5))
    assert r["auc"] == pytest.approx(np.mean(per), abs=1e-12)
    assert r["auprc"] == pytest.approx(np.mean(per_ap), abs=1e-12)
    assert r["acc"] == pytest.approx(np.mean(per_acc), abs=1e-12)
    # the mask matters: ignoring it would give a different answer
    assert r["auc"] != pytest.approx(evaluate(MULTILABEL, s, y)["auc"], abs=1e-6)


def test_undefined_auc_is_none_with_reason():
    r = evaluate(BINARY, np.linspace(0, 1, 10), np.zeros(10, dtype=np.int64))
    assert r["auc"] is None and r["auprc"] is None
    assert "no positives" in r["auc_reason"]
    assert r["acc"] == pytest.approx(0.5)
    assert r["skipped"] == ["positive"]
    with pytest.raises(UndefinedMetricError, match="no positives"):
        bootstrap_ci(BINARY, np.linspace(0, 1, 10), np.zeros(10, dtype=np.int64))


def test_multilabel_single_class_label_is_skipped():
    s, y, mask = _multilabel_data(200, 7)
    y[:, 1] = 1.0  # "card": no negatives
    mask[:, 3] = False  # "edema": nothing observed
    r = evaluate(MULTILABEL, s, y, mask)
    assert r["skipped"] == ["card", "edema"]
    assert "no negatives" in r["skip_reasons"]["card"]
    assert "no unmasked rows" in r["skip_reasons"]["edema"]
    kept = [r["per_label_auc"][k] for k in ("atel", "cons", "effusion")]
    assert r["auc"] == pytest.approx(np.mean(kept), abs=1e-12)
    values = [v for v in r.values() if isinstance(v, float)]
    assert all(math.isfinite(v) for v in values)
    mask[:] = False
    mask[:, 1] = True
    none_left = evaluate(MULTILABEL, s, y, mask)
    assert none_left["auc"] is None and "card: no negatives" in none_left["auc_reason"]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="diverge"):
        evaluate(BINARY, np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        evaluate(MULTICLASS, np.zeros((5, 3)), np.zeros(5, dtype=np.int64))
    with pytest.raises(ValueError, match="integers in"):
        evaluate(BINARY, np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="only meaningful for multilabel"):
        evaluate(BINARY, np.zeros(2), np.array([0, 1]), np.ones(2, dtype=bool))
    with pytest.raises(ValueError, match="empty"):
        evaluate(BINARY, np.zeros(0), np.zeros(0, dtype=np.int64))


# --------------------------------------------------------------------------- vectorised replicates


def _counts(rng: np.random.Generator, n: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    idx = rng.integers(0, n, size=(b, n))
    return idx, np.stack([np.bincount(i, minlength=n) for i in idx])


def test_rank_auc_equals_sklearn_with_ties():
    z, y = _binary_data(700, 8, decimals=1)
    order = np.argsort(z, kind="stable")
    starts = np.concatenate(([0], np.flatnonzero(np.diff(z[order])) + 1))
    idx, counts = _counts(np.random.default_rng(0), 700, 5)
    auc, degenerate = _rank_auc_from_counts(counts[:, order], starts, (y == 1)[order])
    assert not degenerate.any()
    for b in range(5):
        assert abs(auc[b] - roc_auc_score(y[idx[b]], z[idx[b]])) < 1e-12


@pytest.mark.parametrize("metric", ["auc", "auprc", "acc"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_replicates_equal_evaluate_on_resampled_rows(kind, metric):
    rng = np.random.default_rng(9)
    n = 250
    mask = None
    if kind == "binary":
        task, (z, t) = BINARY, _binary_data(n, 10, decimals=1)
        s = 1 / (1 + np.exp(-z))
    elif kind == "multiclass":
        task, t = MULTICLASS, rng.integers(0, 4, n)
        s = scores_from_logits(task, np.round(rng.normal(size=(n, 4)) + np.eye(4)[t], 1))
    else:
        task, (s, t, mask) = MULTILABEL, _multilabel_data(n, 11)
        s = np.round(s, 2)
    prep = _Prepared(task, *_check_inputs(task, s, t, mask), metric)
    idx, counts = _counts(rng, n, 4)
    values, degenerate = prep.replicates(counts)
    assert not degenerate.any()
    for b in range(4):
        rows = idx[b]
        expected = evaluate(task, s[rows], t[rows], None if mask is None else mask[rows])[metric]
        assert abs(values[b] - expected) < 1e-12


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_deterministic_by_seed_and_contains_estimate():
    z, y = _binary_data(500, 12)
    a = bootstrap_ci(BINARY, z, y, n_boot=300, seed=1)
    assert a == bootstrap_ci(BINARY, z, y, n_boot=300, seed=1)
    assert a != bootstrap_ci(BINARY, z, y, n_boot=300, seed=2)
    auc = evaluate(BINARY, z, y)["auc"]
    assert a[0] < auc < a[1]
    s, t, mask = _multilabel_data(400, 13)
    for metric in ("auc", "auprc", "acc"):
        lo, hi = bootstrap_ci(MULTILABEL, s, t, mask, metric=metric, n_boot=200)
        assert lo < evaluate(MULTILABEL, s, t, mask)[metric] < hi


def test_bootstrap_narrows_with_n():
    widths = []
    for n in (200, 800, 3200):
        z, y = _binary_data(n, 14)
        lo, hi = bootstrap_ci(BINARY, z, y, n_boot=300)
        widths.append(hi - lo)
    assert widths[0] > 1.5 * widths[1] > 2.25 * widths[2]  # ~ 1/√N: halves per 4× N


def test_bootstrap_coverage_sanity():
    # binormal scores with unit variances and mean gap 1: true AUC = Φ(1/√2)
    true_auc = stats.norm.cdf(1 / math.sqrt(2))
    hits = 0
    for rep in range(40):
        z, y = _binary_data(300, 100 + rep)
        lo, hi = bootstrap_ci(BINARY, z, y, n_boot=200, level=0.9, seed=rep)
        hits += lo <= true_auc <= hi
    assert hits >= 30  # nominal 36 of 40; a broken interval lands far below


def test_bootstrap_skips_and_counts_degenerate_resamples():
    y = np.zeros(30, dtype=np.int64)
    y[:2] = 1  # 2 positives in 30: P(no positive drawn) = (28/30)^30 ≈ 12%
    z = np.linspace(0, 1, 30)[::-1]
    res = bootstrap(BINARY, z, y, n_boot=500, seed=0)
    assert 20 < res.n_skipped < 120
    assert res.replicates.size == 500 - res.n_skipped
    assert np.isfinite(res.replicates).all()
    lo, hi = res.ci(0.95)
    assert lo <= res.estimate <= hi


def test_bootstrap_of_5000_rows_matches_delong_standard_error():
    """1000 replicates of a 5000-row AUC: none degenerate, centred on the estimate, and spread
    like the AUC's sampling distribution, whose standard error DeLong gives in closed form (the
    AUC of a constant score has no variance, so DeLong's SE of the difference is that of z).
    The speed of this call is benchmarked in tests/benchmarks/test_bench_stats.py."""
    z, y = _binary_data(5000, 15)
    res = bootstrap(BINARY, z, y, n_boot=1000)
    assert res.n_boot == 1000 and res.n_skipped == 0 and res.replicates.size == 1000
    assert res.estimate == pytest.approx(roc_auc_score(y, z), abs=1e-12)
    se = delong_test(z, np.zeros_like(z), y).se
    assert res.replicates.std(ddof=1) == pytest.approx(se, rel=0.1)
    assert abs(res.replicates.mean() - res.estimate) < 0.1 * se
    lo, hi = bootstrap_ci(BINARY, z, y, n_boot=1000)
    assert (lo, hi) == res.ci(0.95)
    assert hi - lo == pytest.approx(2 * stats.norm.ppf(0.975) * se, rel=0.1)


# --------------------------------------------------------------------------- paired difference


def test_paired_difference_of_model_with_itself_is_exactly_zero():
    s, y, mask = _multilabel_data(300, 16)
    for metric in ("auc", "auprc", "acc"):
        d = paired_difference(MULTILABEL, s, s.copy(), y, mask, metric=metric, n_boot=200)
        assert (d.diff, d.ci_low, d.ci_high) == (0.0, 0.0, 0.0)
    z, t = _binary_data(200, 17)
    d = paired_difference(BINARY, z, z, t, method="delong")
    assert (d.diff, d.ci_low, d.ci_high, d.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_bootstrap_resamples_the_same_rows_for_both_models():
    z, y = _binary_data(400, 18)
    z2 = z + np.random.default_rng(0).normal(size=400)
    d = paired_difference(BINARY, z, z2, y, n_boot=300, seed=5)
    ra = bootstrap(BINARY, z, y, n_boot=300, seed=5).replicates
    rb = bootstrap(BINARY, z2, y, n_boot=300, seed=5).replicates
    lo, hi = np.quantile(ra - rb, [0.025, 0.975])
    assert (d.ci_low, d.ci_high) == pytest.approx((lo, hi), abs=1e-12)
    assert d.diff == pytest.approx(evaluate(BINARY, z, y)["auc"] - evaluate(BINARY, z2, y)["auc"])
    assert isinstance(d, PairedDifference) and d.method == "paired-bootstrap" and d.n_boot == 300
    # pairing removes the shared variation: narrower than the unpaired intervals combined
    unpaired = np.quantile(ra - np.random.default_rng(1).permutation(rb), [0.025, 0.975])
    assert hi - lo < unpaired[1] - unpaired[0]


# --------------------------------------------------------------------------- DeLong


def test_delong_hand_computed_example():
    # positives: a = (0.9, 0.4), b = (0.8, 0.7); negatives: a = (0.6, 0.1), b = (0.2, 0.3)
    # a: V10 = (1, 1/2), V01 = (1/2, 1), AUC 0.75; b: perfect, V10 = V01 = (1, 1), AUC 1.
    # var = s²(V10_a)/2 + s²(V01_a)/2 = 0.125/2 + 0.125/2 = 0.125 (b's terms and covariances 0)
    targets = np.array([1, 1, 0, 0])
    a = np.array([0.9, 0.4, 0.6, 0.1])
    b = np.array([0.8, 0.7, 0.2, 0.3])
    r = delong_test(a, b, targets)
    se = math.sqrt(0.125)
    assert r.diff == pytest.approx(-0.25)
    assert r.se == pytest.approx(se)
    assert r.ci_low == pytest.approx(-0.25 - 1.959963984540054 * se)
    assert r.ci_high == pytest.approx(-0.25 + 1.959963984540054 * se)
    assert r.p_value == pytest.approx(2 * stats.norm.cdf(-0.25 / se))  # ≈ 0.4795
    assert r.p_value == pytest.approx(0.4795, abs=1e-4)


def _delong_naive(a, b, y):
    """O(m·n) structural components straight from DeLong et al. (1988), for cross-checking."""
    pos, neg = y == 1, y == 0
    comps10, comps01 = [], []
    for s in (a, b):
        psi = (s[pos][:, None] > s[neg][None, :]) + 0.5 * (s[pos][:, None] == s[neg][None, :])
        comps10.append(psi.mean(axis=1))
        comps01.append(psi.mean(axis=0))
    s10, s01 = np.cov(np.stack(comps10)), np.cov(np.stack(comps01))
    c = np.array([1.0, -1.0])
    var = c @ (s10 / pos.sum() + s01 / neg.sum()) @ c
    return comps10[0].mean() - comps10[1].mean(), math.sqrt(var)


def test_delong_equals_naive_with_ties():
    z, y = _binary_data(300, 19, decimals=1)
    z2 = np.round(z + np.random.default_rng(1).normal(size=300), 1)
    r = delong_test(z, z2, y)
    diff, se = _delong_naive(z, z2, y)
    assert r.diff == pytest.approx(diff, abs=1e-12)
    assert r.se == pytest.approx(se, rel=1e-10)
    assert r.diff == pytest.approx(roc_auc_score(y, z) - roc_auc_score(y, z2), abs=1e-12)


def test_delong_agrees_with_paired_bootstrap():
    z, y = _binary_data(2000, 20)
    z2 = 0.7 * z + np.random.default_rng(2).normal(size=2000)
    dl = paired_difference(BINARY, z, z2, y, method="delong")
    bs = paired_difference(BINARY, z, z2, y, n_boot=1000, seed=0)
    assert dl.diff == pytest.approx(bs.diff, abs=1e-12)
    width = dl.ci_high - dl.ci_low
    assert abs(bs.ci_low - dl.ci_low) < 0.15 * width
    assert abs(bs.ci_high - dl.ci_high) < 0.15 * width
    assert dl.method == "delong" and 0 <= dl.p_value <= 1


def test_delong_errors():
    with pytest.raises(UndefinedMetricError):
        delong_test([0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0, 0, 1])
    with pytest.raises(ValueError, match="binary AUC"):
        paired_difference(
            MULTILABEL, np.zeros((4, 5)), np.zeros((4, 5)), np.zeros((4, 5)), method="delong"
        )


# --------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("sup", "eq", "margin", "verdict"),
    [
        ((-0.005, 0.005), (-0.004, 0.004), 0.005, ("equivalent", True)),
        ((0.001, 0.0045), (0.0015, 0.004), 0.005, ("better", True)),  # a significant gain inside the margin: both
        ((-0.0045, -0.001), (-0.004, -0.0015), 0.005, ("worse", True)),
        ((-0.006, 0.001), (-0.005, 0.0005), 0.005, ("inconclusive", False)),  # touching the margin is not inside
        ((0.002, 0.009), (0.003, 0.008), 0.005, ("better", False)),
        ((-0.02, -0.001), (-0.018, -0.002), 0.005, ("worse", False)),
        ((-0.01, 0.02), (-0.008, 0.018), 0.005, ("inconclusive", False)),
        ((0.0, 0.02), (0.001, 0.019), 0.005, ("inconclusive", False)),  # low end = 0 is not > 0
        ((-0.001, 0.004), (0.0, 0.0035), 0.0, ("inconclusive", False)),  # margin 0: nothing is within it
    ],
)
def test_verdict_rules(sup, eq, margin, verdict):
    assert verdict_of(sup, eq, margin) == verdict


def test_verdict_rules_reject_points_and_bad_intervals():
    with pytest.raises(ValueError, match="1 AUC point = 0.01"):
        verdict_of((-0.1, 0.1), (-0.1, 0.1), 0.5 * 100)
    with pytest.raises(ValueError, match="low <= high"):
        verdict_of((0.1, -0.1), (0.0, 0.0), 0.005)
    with pytest.raises(ValueError, match="finite"):
        verdict_of((float("nan"), 0.1), (0.0, 0.0), 0.005)


def _verdict(a, b, y, margin=0.005, n_boot=400):
    """One pair of models on one test set, read as a family of one (95% / 90% intervals)."""
    sup = paired_difference(BINARY, a, b, y, n_boot=n_boot)
    eq = paired_difference(BINARY, a, b, y, n_boot=n_boot, level=0.90)
    verdict, within = verdict_of((sup.ci_low, sup.ci_high), (eq.ci_low, eq.ci_high), margin)
    return "equivalent" if within and verdict == "equivalent" else verdict


def test_verdicts_on_constructed_predictions():
    rng = np.random.default_rng(21)
    z, y = _binary_data(2000, 21)
    tiny = z + 1e-3 * rng.normal(size=z.size)
    assert _verdict(z, tiny, y) == "equivalent"
    weak = z + 2.0 * rng.normal(size=z.size)
    assert _verdict(z, weak, y) == "better"
    assert _verdict(weak, z, y) == "worse"
    # 60 images, two equally good but independently noisy models: far too few to decide
    _, ys = _binary_data(60, 22, signal=0.0)
    signal = 1.0 * ys
    a = signal + rng.normal(size=60)
    b = signal + rng.normal(size=60)
    assert _verdict(a, b, ys) == "inconclusive"


# --------------------------------------------------------------------------- convergence


def test_steps_to_target():
    steps = [100, 200, 300, 400]
    assert steps_to_target(steps, [0.6, 0.79, 0.8, 0.9], 0.8) == 300
    assert steps_to_target(steps, [0.6, 0.7, 0.75, 0.79], 0.8) is None
    assert steps_to_target(steps, [None, float("nan"), 0.85, 0.9], 0.8) == 300
    assert steps_to_target([300, 100, 200], [0.9, 0.5, 0.85], 0.8) == 200  # ordered by step
    assert steps_to_target([], [], 0.8) is None
    with pytest.raises(ValueError, match="3 steps but 2 values"):
        steps_to_target([1, 2, 3], [0.1, 0.2], 0.5)


def test_seed_interval_is_cut_to_the_range_auc_cannot_leave():
    """Three seeds near the ceiling with a wide spread: mean + t·s/√n passes 1; cut to [0, 1] it
    stops there, its lower end unchanged (the report's cells use the cut interval)."""
    from scipy import stats as sps

    from transfusion.stats import seed_estimate

    aucs = [0.99, 0.80, 0.97]
    est = seed_estimate(aucs, np.tile(np.asarray(aucs)[:, None], (1, 50)))  # no test-image noise
    lo, hi = est.interval(0.95)
    half = sps.t.ppf(0.975, 2) * np.std(aucs, ddof=1) / np.sqrt(3)
    assert (lo, hi) == pytest.approx((np.mean(aucs) - half, np.mean(aucs) + half)) and hi > 1
    assert est.interval(0.95, within=(0.0, 1.0)) == pytest.approx((lo, 1.0))
