"""Label efficiency: the crossover on constructed gap curves with a known crossing — the point
crossing and the interval for the true one (its coverage simulated, test error included), the
demonstrated crossover (a conservative claim), censored ends — and the report section."""

from __future__ import annotations

import dataclasses
import math
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
from _records import hand_store, targets

from transfusion.harness.store import Store
from transfusion.harness.summary import load_predictions
from transfusion.report import document as D
from transfusion.report.build import build_report
from transfusion.report.data import cell_arm, report_data
from transfusion.report.efficiency import crossover_rows, efficiency_section, interval_text
from transfusion.stats import Arm, SeedEstimate, difference, paired_estimate
from transfusion.stats.crossover import (
    crossing_size,
    crossing_sizes,
    estimate_crossover,
    gap_estimate,
    shared_test_covariance,
)
from transfusion.stats.seeds import ReplicateCache


def test_crossing_interpolates_in_log_size():
    # gap 10 points at 100 images, 0 at 1000; margin 5 points: halfway in log size, sqrt(100 * 1000)
    assert crossing_size([100, 1000], [0.10, 0.0], 0.05) == ("crosses", pytest.approx(math.sqrt(1e5)))
    state, n = crossing_size([100, 300, 1000], [0.12, 0.06, 0.01], 0.05)
    assert state == "crosses" and n == pytest.approx(math.exp(math.log(300) + 0.2 * math.log(1000 / 300)))
    # a gap that closes, opens again and closes: the crossover is where it closes for good
    state, n = crossing_size([100, 200, 400, 800], [0.10, 0.0, 0.08, 0.0], 0.05)
    assert state == "crosses" and 400 < n < 800
    assert crossing_size([100, 1000], [0.01, 0.0], 0.05) == ("from-start", 100.0)  # not bracketed: below
    assert crossing_size([100, 1000], [0.2, 0.1], 0.05) == ("not-reached", None)  # not bracketed: beyond


def test_vectorised_crossings_match_and_mark_censoring():
    sizes = [100, 200, 400, 800]
    g = np.random.default_rng(0).normal(0.04, 0.04, (500, 4))
    got = crossing_sizes(sizes, g, 0.03)
    for row, x in zip(g, got):
        state, n = crossing_size(sizes, row, 0.03)
        want = {"from-start": -math.inf, "not-reached": math.inf}.get(state, n)
        assert x == pytest.approx(want)
    assert np.isinf(got).any() and np.isfinite(got).any()


def _estimate(per_seed, var_shared: float = 0.0) -> SeedEstimate:
    d = np.asarray(per_seed, dtype=float)
    sd = float(d.std(ddof=1))
    return SeedEstimate(float(d.mean()), d.size, tuple(d), sd, math.sqrt(var_shared), var_shared,
                        ((sd * sd / d.size, d.size - 1),))


SIZES = (105.0, 210.0, 420.0, 840.0, 1680.0)
MARGIN = 0.03


def _gap(n: float) -> float:
    """8 AUC points at 105 images, 2 fewer per doubling: the 3-point margin at 105 · 2^2.5 ≈ 594."""
    return 0.08 - 0.02 * math.log2(n / 105)


TRUTH = 105 * 2 ** 2.5


def test_noiseless_curve_gives_the_exact_crossing_everywhere():
    gaps = {n: _estimate([_gap(n)] * 4) for n in SIZES}
    est = estimate_crossover(gaps, margin=MARGIN, n_boot=200)
    # linear in log size and without noise: every draw, the bound and the point agree on the truth
    assert est.state == "crosses" and est.size == pytest.approx(TRUTH)
    assert est.demonstrated_state == "from" and est.demonstrated == pytest.approx(TRUTH)
    assert est.low == pytest.approx(TRUTH) and est.high == pytest.approx(TRUTH) and est.censored == ""
    assert est.bound_level == pytest.approx(0.90) and est.test_included and est.n_seeds == 4


def _experiment(rng: np.random.Generator, seeds: int, cov: np.ndarray) -> dict[float, SeedEstimate]:
    """One simulated study: per seed pair the true gap + training noise (1 point SD) + the test
    error every seed pair at that size shares (1-point SE, correlated 0.5 between sizes: the same
    test images); the bootstrap's c̄ taken as known."""
    shared = rng.multivariate_normal(np.zeros(len(SIZES)), cov)
    return {n: _estimate(_gap(n) + shared[j] + rng.normal(0, 0.01, seeds), cov[j, j]) for j, n in enumerate(SIZES)}


def _covers(est) -> bool:
    lo = -math.inf if est.censored in ("left", "both") else est.low
    hi = math.inf if est.censored in ("right", "both") else est.high
    return lo <= TRUTH <= hi


@pytest.mark.parametrize("seeds", [3, pytest.param(5, marks=pytest.mark.slow)])
def test_interval_for_the_true_crossing_covers_and_the_claim_is_conservative(seeds):
    # 300 simulated studies (about a second each): the 95% interval for the true crossing with the
    # test error in covers it in 98.7% (3 seeds) / 96.3% (5 seeds) of them; the seed part alone (the
    # earlier method) in 85.3% / 64.7%. "Within the margin from D" is at or above the true crossing
    # in 98.3% / 97.7% (at most 5% wrong by construction: a one-sided 95% bound).
    k = len(SIZES)
    cov = 0.01 ** 2 * (0.5 * np.ones((k, k)) + 0.5 * np.eye(k))
    rng = np.random.default_rng(seeds)
    new = old = conservative = 0
    n_sim = 300
    for i in range(n_sim):
        gaps = _experiment(rng, seeds, cov)
        est = estimate_crossover(gaps, margin=MARGIN, test_cov=cov, n_boot=1000, seed=i)
        seed_only = estimate_crossover({n: dataclasses.replace(e, var_shared=0.0) for n, e in gaps.items()},
                                       margin=MARGIN, n_boot=1000, seed=i)
        new += _covers(est)
        old += _covers(seed_only)
        conservative += est.demonstrated_state == "not-shown" or (est.demonstrated_state == "from"
                                                                 and est.demonstrated >= TRUTH)
    assert new / n_sim >= 0.93
    assert old / n_sim <= 0.90  # the seed part alone misses the test error
    assert conservative / n_sim >= 0.95


def test_censored_ends_are_stored_as_censored_not_as_numbers():
    sizes = (210.0, 420.0, 840.0)
    rng = np.random.default_rng(1)
    # still 6 points above random at 840 images: right-censored, not shown
    far = estimate_crossover({n: _estimate(0.06 + rng.normal(0, 0.002, 3), 1e-5) for n in sizes}, margin=0.01,
                             n_boot=500)
    assert far.state == "not-reached" and far.size is None
    assert far.demonstrated_state == "not-shown" and far.demonstrated is None
    assert far.censored == "right" and far.high is None
    assert interval_text(far.low, far.high, far.censored, far.sizes) == "> 840 (beyond the sizes tried)"
    # level from the start: left-censored, shown at or below the smallest size
    near = estimate_crossover({n: _estimate(rng.normal(0, 0.001, 3), 1e-6) for n in sizes}, margin=0.01, n_boot=500)
    assert near.state == "from-start" and near.demonstrated_state == "from-start" and near.demonstrated == 210
    assert near.censored == "left" and near.low is None
    assert interval_text(near.low, near.high, near.censored, near.sizes) == "≤ 210"
    # an interval with one open end keeps its other end
    assert interval_text(300.0, None, "right", sizes) == "300 to > 840 (beyond the sizes tried)"
    assert interval_text(None, 500.0, "left", sizes) == "≤ 210 to 500"
    assert interval_text(None, None, "both", sizes) == "≤ 210 to > 840 (beyond the sizes tried)"


def test_gap_estimate_uses_the_engine_and_falls_back_to_the_seed_part():
    rng = np.random.default_rng(0)
    shared = rng.normal(0, 0.01, 200)
    reps = lambda v, z: np.array([x + z + rng.normal(0, 0.003, 200) for x in v])  # noqa: E731
    t, r = np.array([0.86, 0.88, 0.87]), np.array([0.80, 0.83, 0.81])
    transfer, random = Arm((0, 1, 2), t, reps(t, shared)), Arm((0, 1, 2), r, reps(r, 0.0))
    est, rep, note = gap_estimate(transfer, random)
    want, _, _ = paired_estimate(transfer, random)
    assert note == "" and est == want and est.var_shared > 0 and rep.shape == (200,)
    # no replicates: the seed part only, and why
    est0, rep0, note0 = gap_estimate(Arm((0, 1, 2), t, None), random)
    assert rep0 is None and note0 == "bootstrap replicates unavailable"
    assert est0.mean == pytest.approx(est.mean) and est0.var_shared == 0 and est0.components == est.components
    # fewer than two seeds pair up: the difference of the cells' means, one seed part each
    other = Arm((5, 6, 7), r, reps(r, 0.0))
    est1, _, _ = gap_estimate(transfer, other)
    assert est1 == difference((t, transfer.replicates), (r, other.replicates)) and len(est1.components) == 2


def test_shared_test_covariance_from_aligned_replicates():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 0.01, (2, 2000))
    a, b = z[0], 0.6 * z[0] + 0.8 * z[1]  # correlated 0.6
    ests = [_estimate([0.05, 0.06, 0.07], 1e-4), _estimate([0.01, 0.02, 0.03], 1e-4), _estimate([0, 0.01, 0.0], 1e-4)]
    cov = shared_test_covariance(ests, [a, b, None])
    assert cov[0, 0] == cov[1, 1] == 1e-4 and cov[0, 2] == cov[1, 2] == 0
    assert cov[0, 1] == pytest.approx(0.6e-4, rel=0.1)
    assert np.linalg.eigvalsh(cov).min() >= -1e-15
    # an impossible estimate (covariance above the variances) is made positive semi-definite
    bad = shared_test_covariance(ests[:2], [a * 3, a * 3])
    assert np.linalg.eigvalsh(bad).min() >= -1e-15


def test_bad_input():
    gaps = {100.0: _estimate([0.1, 0.11, 0.12])}
    with pytest.raises(ValueError, match="at least two training sizes"):
        estimate_crossover(gaps, margin=0.02)
    gaps[1000.0] = _estimate([0.0, 0.01, 0.0])
    with pytest.raises(ValueError, match="margin is in AUC units"):
        estimate_crossover(gaps, margin=2)
    with pytest.raises(ValueError, match="test_cov must be"):
        estimate_crossover(gaps, margin=0.02, test_cov=np.eye(3))


def _fake_runs(gap, sizes=(210, 420, 840), seeds=3, seed=0) -> list[dict]:
    """Store-like run rows (no store) of random and transfer at each size."""
    rng = np.random.default_rng(seed)
    runs = []
    for n in sizes:
        for s in range(seeds):
            base = 0.8 + rng.normal(0, 0.003)
            for init, auc in (("random", base), ("transfer", base + gap(n) + rng.normal(0, 0.003))):
                runs.append({"run_id": f"{init}-{n}-{s}", "kind": "train", "status": "done", "dataset": "d",
                             "model": "m", "init": init, "train_size": str(n), "seed": s, "test_auc": auc,
                             "summary": SimpleNamespace(n_train=n)})
    return runs


def _arm_builder(b: int = 400):
    """Arms with aligned replicates: a test error shared by every run of a regime (1 point apart
    between the regimes' shared parts), plus a little of each run's own."""
    rng = np.random.default_rng(9)
    z = {"random": rng.normal(0, 0.007, b), "transfer": rng.normal(0, 0.007, b)}

    def arm(cell: list[dict]) -> Arm:
        cell = sorted(cell, key=lambda r: r["seed"])
        own = np.random.default_rng(zlib.crc32(cell[0]["run_id"].encode()))
        reps = np.array([r["test_auc"] + z[r["init"]] + own.normal(0, 0.002, b) for r in cell])
        return Arm(tuple(r["seed"] for r in cell), np.array([r["test_auc"] for r in cell]), reps)

    return arm


def _section_text(rows, tmp_path) -> str:
    sec = efficiency_section(rows, tmp_path / "figs", tmp_path / "c.csv", margin=0.01)
    parts = [b.text for b in sec.blocks if isinstance(b, D.Para)]
    parts += [" | ".join(cells) for b in sec.blocks if isinstance(b, D.Table) for cells in b.rows]
    return "\n".join(parts)


def test_rows_with_and_without_the_test_error(tmp_path):
    runs = _fake_runs(lambda n: 0.06 * (1 - math.log2(n / 210) / 2))  # 6 points at 210, 0 at 840
    (with_test,) = crossover_rows(runs, _arm_builder(), margin=0.01, n_boot=500)
    (seed_only,) = crossover_rows(runs, margin=0.01, n_boot=500)
    assert with_test["test_error"] == "included" and "seed part only" not in with_test["statement"]
    assert seed_only["test_error"].startswith("not included (seed part only)")
    assert "seed part only" in seed_only["statement"]
    up = [float(u) for u in with_test["upper"].split()]
    up0 = [float(u) for u in seed_only["upper"].split()]
    assert all(a > b for a, b in zip(up, up0))  # the test error widens every bound
    assert with_test["gaps"] == seed_only["gaps"] and with_test["n_seeds"] == 3


def test_section_prints_censoring_and_claims_only_what_is_shown(tmp_path):
    (far,) = crossover_rows(_fake_runs(lambda n: 0.06), _arm_builder(), margin=0.01, n_boot=500)
    assert far["demonstrated_state"] == "not-shown" and far["demonstrated"] is None
    assert far["censored"] == "right" and far["size_high"] is None and far["size"] is None
    text = _section_text([far], tmp_path)
    assert "within the margin of transfer from" not in far["statement"]
    assert "random init is not shown to be within the margin of transfer" in far["statement"]
    assert "> 840 (beyond the sizes tried)" in text and "not shown" in text
    (near,) = crossover_rows(_fake_runs(lambda n: 0.0), _arm_builder(), margin=0.03, n_boot=500)
    assert near["demonstrated_state"] == "from-start" and near["censored"] in ("left", "both")
    assert near["size_low"] is None
    assert "within the margin of transfer from 210 training images on (upper bound below the margin" in near["statement"]
    assert "≤ 210" in _section_text([near], tmp_path)


def _report_runs(t):
    rng = np.random.default_rng(0)
    runs = []
    # random catches up with transfer between 100 and 400 images (gap 15 points, then 0)
    for size, n, gap in (("100", 100, 0.6), ("400", 400, 0.0)):
        for seed in range(3):
            noise = rng.normal(0, 1, t.size)
            runs.append({"model": "cbr_small", "init": "random", "seed": seed, "train_size": size, "n_train": n,
                         "scores": t * (1.0 - gap) + noise, "targets": t})
            runs.append({"model": "cbr_small", "init": "transfer", "seed": seed, "train_size": size, "n_train": n,
                         "scores": t * 1.0 + noise, "targets": t})
    return runs


def test_rows_from_a_store_with_the_report_arms(tmp_path):
    store = hand_store(tmp_path / "s.sqlite", _report_runs(targets()))
    with Store(store) as s:
        runs = s.runs()
        cache = ReplicateCache(load_predictions(s, runs), n_boot=200, seed=0)
    (row,) = crossover_rows(runs, lambda rows: cell_arm(rows, cache), margin=0.01, n_boot=300)
    assert row["test_error"] == "included" and row["regime"] == "transfer" and row["sizes"] == "100 400"
    assert row["demonstrated_state"] == "from" and 100 < row["demonstrated"] < 400
    assert row["state"] == "crosses" and row["size"] <= row["demonstrated"]


def test_report_label_efficiency_section(tmp_path):
    store = hand_store(tmp_path / "s.sqlite", _report_runs(targets()))
    data = report_data(store, n_boot=100)
    (row,) = data.crossover
    assert row["model"] == "cbr_small" and row["regime"] == "transfer" and row["state"] == "crosses"
    assert 100 < row["size"] < 400 and row["sizes"] == "100 400" and row["n_seeds"] == 3
    assert row["demonstrated_state"] == "from" and row["size"] <= row["demonstrated"] < 400
    md = build_report(store, tmp_path / "r", n_boot=100, studies=False)["md"].read_text()
    assert "## Label efficiency: when does random init catch up?" in md
    assert (f"random init is within the margin of transfer from {row['demonstrated']:.0f} training images on "
            "(upper bound below the margin)") in md
    assert any(p.name.endswith("label-efficiency.png") for p in (tmp_path / "r" / "figures").iterdir())
