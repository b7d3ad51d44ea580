"""`transfusion plan` and the planning statistics: detectable difference, reachable margin, seeds
for a margin — checked against the comparison engine by simulation — and the recommendation's
stability over simulated reruns."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _records import hand_store, noisy, seeded, targets
from scipy import stats as sps

from transfusion.cli.main import main
from transfusion.report.pareto import recommendation_stability
from transfusion.stats import judge, seed_estimate
from transfusion.stats.planning import (
    Noise,
    detectable_difference,
    power_better,
    power_within,
    reachable_margin,
    sd_upper_bound,
    seeds_for_margin,
)


def _engine_rates(noise: Noise, n: int, k: int, d: float, margin: float, reps: int = 800, seed: int = 0):
    """How often the engine itself (seed_estimate on simulated seeds and aligned replicates, judged
    as a member of a family of k) says better / within the margin."""
    rng = np.random.default_rng(seed)
    better = within = 0
    for _ in range(reps):
        shared = noise.test_se * rng.standard_normal()
        x = d + shared + noise.seed_sd * rng.standard_normal(n)
        # replicates: the shared test error again, plus a little own noise that the seed SD already holds
        r = x[:, None] + noise.test_se * rng.standard_normal(300)[None, :]
        j = judge(seed_estimate(x, r), margin, k=k)
        better += j.verdict == "better"
        within += j.within_margin
    return better / reps, within / reps


def test_power_matches_the_engine():
    noise = Noise(0.008, 0.002)
    for n, k, d in ((3, 3, 0.02), (5, 5, 0.012)):
        b, _ = _engine_rates(noise, n, k, d, 0.02)
        assert power_better(d, noise, n, k) == pytest.approx(b, abs=0.05)
    _, w = _engine_rates(noise, 6, 3, 0.0, 0.02)
    assert power_within(0.02, noise, 6, 3) == pytest.approx(w, abs=0.05)


def test_detectable_difference_and_reachable_margin_are_the_power_points():
    noise = Noise(0.006, 0.002)
    mdd = detectable_difference(noise, 5, 3)
    assert power_better(mdd, noise, 5, 3) == pytest.approx(0.8, abs=0.01)
    m = reachable_margin(noise, 5, 3)
    assert power_within(m, noise, 5, 3) == pytest.approx(0.8, abs=0.01)
    # many seeds, training noise only: the normal-theory MDD (z_{1-α/2K} + z_power)·σ/√n
    big = detectable_difference(Noise(0.01, 0.0), 200, 1)
    assert big == pytest.approx((sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * 0.01 / math.sqrt(200), rel=0.05)
    # more seeds detect less; a bigger family needs more
    assert detectable_difference(noise, 8, 3) < mdd < detectable_difference(noise, 5, 10)


def test_seeds_for_a_margin():
    noise = Noise(0.006, 0.002)
    n = seeds_for_margin(0.02, noise, 3)
    assert n is not None and reachable_margin(noise, n, 3) < 0.02 <= reachable_margin(noise, n - 1, 3)
    assert seeds_for_margin(0.01, noise, 3) > n
    # the shared test error alone is wider than the margin: no number of seeds reaches it
    assert seeds_for_margin(0.003, Noise(0.006, 0.004), 3) is None
    # a pilot SD on three seeds: its 80% upper bound is sqrt(2 / χ²₀.₂(2)) ≈ 2.11 times larger
    assert sd_upper_bound(0.01, 3) == pytest.approx(0.01 * math.sqrt(2 / sps.chi2.ppf(0.2, 2)))


def test_bad_planning_input():
    with pytest.raises(ValueError, match="1 AUC point = 0.01"):
        Noise(1.5, 0.0)
    with pytest.raises(ValueError, match=">= 2"):
        detectable_difference(Noise(0.01, 0.0), 1, 3)


def test_recommendation_stability():
    costs, aucs = [1.0, 2.0], [0.90, 0.95]
    far = np.array([[0.90, 0.95]] * 50) + np.random.default_rng(0).normal(0, 0.001, (50, 2))
    assert recommendation_stability(costs, aucs, 0.01, far) == 1.0  # the cheap row never gets within δ
    near = np.array([[0.94, 0.95]]) + np.random.default_rng(1).normal(0, 0.005, (4000, 2))
    share = recommendation_stability(costs, [0.94, 0.95], 0.01, near)
    assert 0.3 < share < 0.7  # the cheap row sits on the δ boundary: a coin flip
    with pytest.raises(ValueError, match="reruns must be"):
        recommendation_stability(costs, aucs, 0.01, np.zeros((3, 3)))


SUITE = """name = "plan-test"
[grid]
dataset = ["synth-retina?n=400&res=32"]
model = ["cbr_small", "resnet18"]
init = ["random", "transfer", "meanvar"]
seed = [0, 1, 2]
exclude = [{ model = "resnet18", init = "meanvar" }]
[source]
dataset = "synth-natural?n=400&res=32"
[report]
margin = 0.02
[plan]
seed_sd = 0.006
test_se = 0.002
[plan.per_model.resnet18]
seed_sd = 0.012
"""


def test_plan_from_a_suite_with_stated_noise(tmp_path, capsys):
    toml = tmp_path / "s.toml"
    toml.write_text(SUITE)
    assert main(["plan", str(toml), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {(r["model"], r["regime"]): r for r in doc["rows"]}
    assert set(rows) == {("cbr_small", "transfer"), ("cbr_small", "meanvar"), ("resnet18", "transfer")}
    assert {r["family_size"] for r in rows.values()} == {3} and {r["seeds"] for r in rows.values()} == {3}
    small, big = rows[("cbr_small", "transfer")], rows[("resnet18", "transfer")]
    assert (small["seed_sd"], big["seed_sd"], big["test_se"]) == (0.006, 0.012, 0.002)
    assert small["noise_from"] == "suite [plan]"
    assert small["detectable"] == pytest.approx(detectable_difference(Noise(0.006, 0.002), 3, 3))
    assert big["seeds_for_margin"] == seeds_for_margin(0.02, Noise(0.012, 0.002), 3)
    assert big["seeds_for_margin"] > small["seeds_for_margin"]
    # the printed table
    assert main(["plan", str(toml), "--seeds", "8"]) == 0
    out = capsys.readouterr().out
    assert "3 comparison(s) judged together" in out and "detects ≥" in out and "seeds for ±2" in out


def test_plan_from_a_pilot_store(tmp_path, capsys):
    t = targets()
    base = {s: noisy(t, 1.0, 10 + s) for s in range(3)}
    store = hand_store(tmp_path / "p.sqlite", [
        *seeded("cbr_small", "random", lambda s: {"scores": base[s], "targets": t}),
        *seeded("cbr_small", "transfer", lambda s: {"scores": noisy(t, 1.0, 30 + s), "targets": t})])
    assert main(["plan", str(store), "--json", "-", "--margin", "0.03"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["noise_from"] == "pilot" and row["seeds"] == 3 and row["family_size"] == 1
    assert row["seed_sd"] > 0 and row["seeds_for_margin_sd_bound"] >= row["seeds_for_margin"]


def test_plan_without_noise_figures_says_what_to_give(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    toml = tmp_path / "s.toml"
    toml.write_text(SUITE.split("[plan]")[0])
    assert main(["plan", str(toml)]) == 2
    err = capsys.readouterr().err
    assert "no noise figures for" in err and "--seed-sd" in err and "[plan]" in err
    assert main(["plan", str(toml), "--seeds", "1"]) == 2
    assert main(["plan", str(toml), "--seed-sd", "0.01", "--margin", "2"]) == 2
    assert "--margin is in AUC units" in capsys.readouterr().err
    assert main(["plan", str(toml), "--seed-sd", "0.01", "--power", "80"]) == 2
    assert main(["plan", str(toml), "--seed-sd", "5"]) == 2
    assert "seed_sd is an SD in metric units" in capsys.readouterr().err
