"""The accuracy-vs-cost report: sections, numbers equal to the store's, Pareto fronts, paired
intervals and verdicts, paper comparison, studies, failed runs and HTML escaping."""

from __future__ import annotations

import csv
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from _records import BINARY, hand_store, noisy, run_summary, seeded, targets
from _tiny import tiny_suite

from transfusion import stats as M
from transfusion.cli.main import main
from transfusion.harness.store import Store
from transfusion.report.build import build_report
from transfusion.report.data import report_data

TINY = tiny_suite("tiny-report", ("random", "transfusion:1"), seeds=(0, 1),
                  extra="[report]\nmargin = 0.05\ndelta = 0.02\n")

SECTIONS = ("At a glance", "Each regime minus random", "Accuracy against cost", "Calibration and operating points",
            "Weight sources",
            "Comparison with the paper",
            "Analysis studies", "Exported models (ONNX)", "Failed runs", "Environment", "How to read this report")
@pytest.fixture(scope="module")
def bench_store(tiny_bench) -> Path:
    """A real store: 1 pretraining + 4 tiny training runs (2 regimes × 2 seeds) with costs."""
    return tiny_bench(TINY, "bench")


def _csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))





# --------------------------------------------------------------------------- the real store


@pytest.mark.slow
def test_report_from_bench_store_has_every_section_and_the_store_numbers(bench_store, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(bench_store.parent), "--out", str(out), "--n-boot", "200", "--no-studies"]) == 0
    (out / "notes.txt").write_text("mine")  # the user's file in the report folder survives a rebuild
    assert main(["report", str(bench_store.parent), "--out", str(out), "--n-boot", "200", "--no-studies"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for title in SECTIONS:
        assert title in md, title
        assert title.replace("(", "").replace(")", "") in html.replace("(", "").replace(")", "")
    assert "synth-retina · train size all" in md
    # self-contained HTML: every figure embedded
    pngs = sorted((out / "figures").glob("*.png"))
    assert {p.name.split("-auc-vs-")[-1] for p in pngs if "-auc-vs-" in p.name} == {"macs.png", "params.png",
                                                                                      "torch_ms.png"}
    assert html.count('src="data:image/png;base64,') == len(pngs) == 5
    assert sum(p.name.endswith("-reliability.png") for p in pngs) == 1
    assert "ONNX Runtime latency: not measured" in md  # [cost] onnx = false
    assert "tiny-report" in md and "margin ±5 AUC points" in md

    with Store(bench_store) as store:
        runs = store.runs(kind="train")
        cost = store.costs()[0]
        summary = {(r["model"], r["init"]): r for r in _csv(out / "tables" / "summary.csv")}
        assert set(summary) == {("cbr_small", "random"), ("cbr_small", "transfusion:1")}
        for (model, init), row in summary.items():
            mine = [r for r in runs if (r["model"], r["init"]) == (model, init)]
            aucs = [r["test_auc"] for r in mine]
            assert float(row["auc_mean"]) == pytest.approx(np.mean(aucs), abs=1e-12)
            assert float(row["auc_std"]) == pytest.approx(np.std(aucs, ddof=1), abs=1e-12)
            assert float(row["auprc_mean"]) == pytest.approx(np.mean([r["test_auprc"] for r in mine]))
            assert float(row["train_seconds"]) == pytest.approx(np.mean([r["train_seconds"] for r in mine]))
            assert int(row["n_seeds"]) == 2 and row["ci_method"].startswith("mean ± √(z²·c̄ + t²·s²/n) over 2 seeds")
            assert (float(row["auc_min"]), float(row["auc_max"])) == (min(aucs), max(aucs))
            assert float(row["auc_ci_low"]) <= float(row["auc_mean"]) <= float(row["auc_ci_high"])
            assert int(row["params"]) == cost["params"] and int(row["macs"]) == cost["macs"]
            assert float(row["torch_ms"]) == pytest.approx(cost["torch_ms"]) and row["onnx_ms"] == ""
            assert row["cost_key"] == cost["cost_key"]
            # the Markdown table shows the same numbers
            assert f"| {model} | {init} | 2 | {np.mean(aucs):.3f} | {np.std(aucs, ddof=1):.3f} | " in md
        # one comparison over the two seed pairs: two seeds do not measure training variance, no verdict
        (pair,) = _csv(out / "tables" / "paired.csv")
        assert (pair["regime"], pair["n_seeds"], pair["verdict"]) == ("transfusion:1", "2", "unjudged")
        assert "n seeds 2 < 3" in pair["reason"]
        # per-seed rows with the direct computation's paired-bootstrap numbers
        seeds = _csv(out / "tables" / "paired_seeds.csv")
        assert [r["seed"] for r in seeds] == ["0", "1"]
        by_seed = {(r["init"], r["seed"]): r for r in runs}
        for r in seeds:
            a = store.predictions(by_seed[("transfusion:1", int(r["seed"]))]["run_id"])
            b = store.predictions(by_seed[("random", int(r["seed"]))]["run_id"])
            d = M.paired_difference(BINARY, a["scores"], b["scores"], a["targets"], n_boot=200, seed=0)
            assert float(r["diff"]) == pytest.approx(d.diff) and float(r["ci_low"]) == pytest.approx(d.ci_low)
        assert float(pair["diff"]) == pytest.approx(np.mean([float(r["diff"]) for r in seeds]))
        # calibration: mean over seeds of each run's measures (Brier against scikit-learn); temperatures fitted
        # on the stored validation scores; operating points meet their target on each run's validation split
        from sklearn.metrics import brier_score_loss

        from transfusion.stats.calibration import fit_temperature
        from transfusion.stats.operating import threshold_for

        cal = {(r["model"], r["init"]): r for r in _csv(out / "tables" / "calibration.csv")}
        assert set(cal) == set(summary)
        ops = _csv(out / "tables" / "operating_points.csv")
        assert {(r["model"], r["init"], r["target"]) for r in ops} == {
            (m, i, t) for m, i in summary for t in ("sensitivity", "specificity")}
        for (model, init), row in cal.items():
            mine = [r for r in runs if (r["model"], r["init"]) == (model, init)]
            tests = [store.predictions(r["run_id"]) for r in mine]
            vals = [store.predictions(r["run_id"], "val") for r in mine]
            assert all(v is not None and len(v["scores"]) == 24 for v in vals)
            assert float(row["brier"]) == pytest.approx(np.mean([brier_score_loss(t["targets"], t["scores"])
                                                                 for t in tests]), abs=1e-12)
            assert float(row["ce_low"]) <= float(row["ce"]) <= float(row["ce_high"]) and row["n_bins"] == "15"
            assert float(row["temperature"]) == pytest.approx(
                np.mean([fit_temperature(BINARY, v["scores"], v["targets"]) for v in vals]), rel=1e-6)
            # 24 validation images hold too few positives to meet 0.9 with 95% one-sided confidence (29 needed)
            sens = next(r for r in ops if (r["model"], r["init"], r["target"]) == (model, init, "sensitivity"))
            assert sens["threshold"] == "" and "needs ≥ 29 positive validation cases" in sens["reason"]
            with pytest.raises(ValueError, match="needs ≥ 29"):
                threshold_for(vals[0]["scores"], vals[0]["targets"], "sensitivity", 0.9)
        assert "Best calibrated:" in md
        # the weight source: the store's pretraining run with its own test AUC, used by both transfusion:1 runs
        (pre,) = store.runs(kind="pretrain")
    (src,) = _csv(out / "tables" / "sources.csv")
    assert src["source"] == f"run:{pre['run_id']}" and src["model"] == "cbr_small" and src["used_by"] == "2"
    assert float(src["test_auc"]) == pytest.approx(pre["test_auc"]) and src["steps"] == "2"
    assert src["quality"].startswith("weak") == (pre["test_auc"] < 0.6)
    assert src["weak"] == str(pre["test_auc"] < 0.6)
    pareto = _csv(out / "tables" / "pareto.csv")
    assert {r["cost_measure"] for r in pareto} == {"macs", "params", "torch_ms"}
    assert sum(r["recommended"] == "True" for r in pareto) == 3


def test_weight_sources_flag_weak_pretraining(tmp_path):
    from transfusion.report.data import WEAK_SOURCE_AUC, _source_rows

    def run(rid, kind, model, source=None, auc=None, steps=None, seed=0):
        return {"run_id": rid, "kind": kind, "model": model, "dataset": "synth-natural?n=10", "status": "done",
                "source": source, "seed": seed,
                "summary": run_summary(model=model, test_auc=auc, test_acc=0.1, steps=steps)}

    pre = [run("p1", "pretrain", "resnet50", auc=WEAK_SOURCE_AUC - 0.01, steps=86),
           run("p2", "pretrain", "cbr_small", auc=WEAK_SOURCE_AUC + 0.2, steps=129)]
    train = [run("t1", "train", "resnet50", "run:p1"), run("t2", "train", "resnet50", "run:p1", seed=1),
             run("t3", "train", "cbr_small", "run:p2"), run("t4", "train", "resnet18", "imagenet"),
             run("t5", "train", "cbr_tiny", "run:gone"), run("t6", "train", "cbr_tiny")]
    rows = {r["source"]: r for r in _source_rows(pre + train, train)}
    assert set(rows) == {"run:p1", "run:p2", "imagenet", "run:gone"}  # t6 trains from scratch
    assert rows["run:p1"]["quality"].startswith("weak") and rows["run:p1"]["used_by"] == 2
    assert rows["run:p1"]["seeds"] == 2 and rows["run:p2"]["seeds"] == 1  # seeds that share the source
    assert rows["run:p1"]["steps"] == 86 and rows["run:p1"]["model"] == "resnet50"
    assert rows["run:p2"]["quality"] == "pretrained in this store"
    assert rows["imagenet"]["quality"] == "published ImageNet weights"
    assert rows["run:p1"]["weak"] and not any(rows[k]["weak"] for k in ("run:p2", "imagenet", "run:gone"))
    assert rows["run:gone"]["status"] == "missing"


# --------------------------------------------------------------------------- hand-made stores


def test_pareto_front_and_recommendation_on_a_hand_made_case(tmp_path):
    t = targets()
    # AUC rises with noise falling: cbr_tiny worst, resnet50 best
    models = {"cbr_tiny": (1e9, 3.0), "cbr_small": (2e9, 0.9), "cbr_large_t": (3e9, 1.5), "resnet50": (4e9, 0.85)}
    runs = [{"model": m, "init": "random", "scores": noisy(t, noise, 1), "targets": t}
            for m, (_, noise) in models.items()]
    costs = [{"model": m, "params": int(macs / 100), "macs": macs, "torch_ms": macs / 1e8} for m, (macs, _) in
             models.items()]
    why = "torch_ms: 1.0 cores busy with other work (measured twice)"
    costs[0].update(latency_flag=why, load=1.0, threads=1, torch_p95_ms=25.0)  # cbr_tiny timed under load
    store = hand_store(tmp_path / "s.sqlite", runs, costs=costs)
    data = report_data(store, n_boot=50)
    auc = {r["model"]: r["auc_mean"] for r in data.summary}
    assert auc["cbr_tiny"] < auc["cbr_large_t"] < auc["cbr_small"] < auc["resnet50"]
    assert auc["resnet50"] - auc["cbr_small"] < 0.02  # within delta: cbr_small is the pick
    for measure in ("macs", "params", "torch_ms"):
        rows = {r["model"]: r for r in data.pareto if r["cost_measure"] == measure}
        # the δ-front (δ = 0.02): resnet50 beats the cheaper cbr_small by less than δ, so it is off it
        assert {m for m, r in rows.items() if r["on_front"]} == {"cbr_tiny", "cbr_small"}
        assert [m for m, r in rows.items() if r["recommended"]] == ["cbr_small"]
    # a tighter delta recommends the best itself
    data = report_data(store, n_boot=50, delta=0.0)
    assert {r["model"] for r in data.recommendations} == {"resnet50"}
    paths = build_report(store, tmp_path / "r", n_boot=50, studies=False)
    md = paths["md"].read_text()
    assert "| cbr_small · random (2 GMACs) |" in md  # the glance: cheapest within δ by MACs
    assert "Pareto front: cbr_tiny · random; cbr_small · random." in md
    assert "GPU latency: not measured" in md
    # the flagged latency: marked in the table, explained under it, and in the cost appendix with its load
    assert md.count("10.00 †") == 1 and f"† Latency not to be trusted —** cbr_tiny: {why}." in md
    assert f"| 1 | 1.0 | 10.00 (25.00) | — | {why} |" in md
    assert {r["model"]: r["latency_flag"] for r in data.summary}["cbr_small"] is None


def test_paired_intervals_and_verdicts_on_constructed_predictions(tmp_path):
    t = targets()
    base = {s: noisy(t, 1.0, 10 + s) for s in range(3)}
    runs = [
        *seeded("cbr_small", "random", lambda s: {"scores": base[s], "targets": t}),
        *seeded("cbr_small", "transfer", lambda s: {"scores": base[s].copy(), "targets": t}),  # identical
        *seeded("cbr_small", "meanvar", lambda s: {"scores": t * 0.5 + base[s] * 0.5, "targets": t}),  # better
        *seeded("cbr_small", "gabor", lambda s: {"scores": noisy(t, 6.0, 20 + s), "targets": t}),  # worse
    ]
    store = hand_store(tmp_path / "s.sqlite", runs)
    data = report_data(store, n_boot=300, margin=0.01)
    rows = {r["regime"]: r for r in data.paired}
    assert set(rows) == {"transfer", "meanvar", "gabor"}
    assert all(r["n_seeds"] == 3 and r["family_size"] == 3 for r in rows.values())
    assert rows["meanvar"]["verdict"] == "better" and rows["meanvar"]["ci_low"] > 0.01
    assert rows["gabor"]["verdict"] == "worse" and rows["gabor"]["ci_high"] < 0
    # the intervals, computed here independently: per regime the seed mean of the differences ± √(z²·c̄ +
    # t²(2)·s²/3) — s the comparison's own seed SD, c̄ the mean covariance between seeds of the aligned
    # test-resample replicates of the differences — at 1 − 0.05/3 (better/worse) and 1 − 0.10/3 (within ±m)
    from scipy import stats as sps
    from sklearn.metrics import roc_auc_score

    makes = {"transfer": lambda s: base[s].copy(), "meanvar": lambda s: t * 0.5 + base[s] * 0.5,
             "gabor": lambda s: noisy(t, 6.0, 20 + s)}
    d = {k: np.array([roc_auc_score(t, make(s)) - roc_auc_score(t, base[s]) for s in range(3)])
         for k, make in makes.items()}
    assert d["transfer"].var() == 0  # identical runs: no spread, nothing shared — an exact zero
    for regime, make in makes.items():
        reps = np.stack([M.bootstrap(BINARY, make(s), t, n_boot=300, seed=0).replicates
                         - M.bootstrap(BINARY, base[s], t, n_boot=300, seed=0).replicates for s in range(3)])
        cov = np.cov(reps)
        c = max(0.0, float(np.mean(cov[~np.eye(3, dtype=bool)])))
        s2 = d[regime].var(ddof=1)
        for level, lo_key, hi_key in ((1 - 0.05 / 3, "ci_low", "ci_high"), (1 - 0.10 / 3, "eq_low", "eq_high")):
            half = np.sqrt(sps.norm.ppf((1 + level) / 2) ** 2 * c + sps.t.ppf((1 + level) / 2, 2) ** 2 * s2 / 3)
            r = rows[regime]
            assert (r[lo_key], r[hi_key]) == pytest.approx((d[regime].mean() - half, d[regime].mean() + half))
        assert r["diff"] == pytest.approx(d[regime].mean(), abs=1e-12)
        assert r["diff_sd"] == pytest.approx(d[regime].std(ddof=1), abs=1e-12)
        assert r["se"] == pytest.approx(np.sqrt(s2 / 3 + c)) and r["df"] == 2
        assert r["level"] == pytest.approx(1 - 0.05 / 3) and r["eq_level"] == pytest.approx(1 - 0.10 / 3)
    assert (rows["transfer"]["verdict"], rows["transfer"]["ci_low"], rows["transfer"]["ci_high"]) == ("equivalent", 0, 0)
    assert rows["transfer"]["flip"] == 0 and not rows["transfer"]["borderline"]
    # per-seed differences are listed, without verdicts
    per_seed = [s for s in data.paired_seeds if s["regime"] == "meanvar"]
    assert [s["seed"] for s in per_seed] == [0, 1, 2] and "verdict" not in per_seed[0]
    md = build_report(store, tmp_path / "r", n_boot=300, margin=0.01, studies=False)["md"].read_text()
    assert "| cbr_small | transfer | 3 |" in md and "equivalent" in md and "better" in md and "worse" in md


def test_a_single_seed_gets_no_verdict(tmp_path):
    t = targets()
    base = noisy(t, 1.0, 1)
    runs = [{"model": "cbr_small", "init": "random", "scores": base, "targets": t},
            {"model": "cbr_small", "init": "gabor", "scores": noisy(t, 6.0, 2), "targets": t}]  # clearly worse
    store = hand_store(tmp_path / "s.sqlite", runs)
    (row,) = report_data(store, n_boot=200, margin=0.01).paired
    assert row["verdict"] == "unjudged" and "training variance not measured" in row["reason"]
    assert row["ci_high"] < 0  # the test-image interval alone would have said "worse"
    md = build_report(store, tmp_path / "r", n_boot=200, studies=False)["md"].read_text()
    assert "0 comparison(s) judged" in md and "1 unjudged" in md
    assert "unjudged: n seeds 1 &lt; 3: training variance not measured" in md  # '<' escaped in Markdown
    assert "± 0.000" not in md  # a single seed shows no spread, not a zero one
    (cell,) = [r for r in _csv(tmp_path / "r" / "tables" / "summary.csv") if r["init"] == "gabor"]
    assert (cell["auc_std"], cell["auc_min"], cell["auc_max"]) == ("", "", "")
    assert cell["ci_method"].startswith("one seed: bootstrap over test images only")


def test_multiplicity_widens_each_interval_with_the_family(tmp_path):
    """The same comparison, judged alone and in a family of five: its simultaneous interval widens
    (level 1 − 0.05/K) and a verdict that held alone no longer holds."""
    t = targets()
    base = {s: noisy(t, 1.0, 10 + s) for s in range(6)}
    six = tuple(range(6))

    def near(s):  # a real difference of about 2 AUC points, measured with seed-to-seed noise (six seeds)
        return {"scores": noisy(t, 1.0, 50 + s) + 0.05 * t, "targets": t}

    alone = hand_store(tmp_path / "a.sqlite", [*seeded("cbr_small", "random", lambda s: {"scores": base[s], "targets": t}, six),
                                                *seeded("cbr_small", "transfer", near, six)])
    (one,) = report_data(alone, n_boot=300, margin=0.02).paired
    # four more comparisons of another model (its own seed variance, so the transfer comparison's SE is
    # unchanged: only the family widens its interval)
    others = [seeded("cbr_tiny", f"transfusion:{k}", lambda s, k=k: {"scores": noisy(t, 1.0, 100 * k + s),
                                                                     "targets": t}) for k in range(1, 5)]
    family = hand_store(tmp_path / "f.sqlite", [*seeded("cbr_small", "random", lambda s: {"scores": base[s],
                                                                                           "targets": t}, six),
                                                 *seeded("cbr_small", "transfer", near, six), *sum(others, []),
                                                 *seeded("cbr_tiny", "random", lambda s: {"scores": base[s],
                                                                                          "targets": t})])
    rows = report_data(family, n_boot=300, margin=0.02).paired
    five = next(r for r in rows if r["regime"] == "transfer")
    assert one["family_size"] == 1 and five["family_size"] == 5
    assert one["level"] == pytest.approx(0.95) and five["level"] == pytest.approx(0.99)
    assert five["diff"] == pytest.approx(one["diff"]) and five["se"] == pytest.approx(one["se"])
    assert five["ci_high"] - five["ci_low"] > one["ci_high"] - one["ci_low"]
    assert one["verdict"] == "better" and five["verdict"] == "inconclusive", (one, five)


def test_hostile_names_are_escaped_in_html_and_markdown(tmp_path):
    t = targets(200)
    evil_model, evil_data = "<script>alert(1)</script>", "x|y<img src=x onerror=alert(2)>"
    runs = [{"model": evil_model, "init": "random", "dataset": evil_data, "scores": noisy(t, 1, 1), "targets": t},
            {"model": evil_model, "init": "tr|ansfer", "dataset": evil_data, "scores": noisy(t, 1, 2), "targets": t},
            {"model": "cbr_small", "init": "random", "dataset": evil_data, "status": "failed",
             "error": "ValueError: <b>bad</b> | broken"}]
    costs = [{"model": evil_model, "params": 1000, "macs": 5e6, "torch_ms": 1.0}]
    toml = 'name = "evil"\n[grid]\ndataset = ["<script>x</script>"]\nmodel = ["nope"]\n'
    store = hand_store(tmp_path / "s.sqlite", runs, toml=toml, costs=costs)
    paths = build_report(store, tmp_path / "r", n_boot=50, studies=False)
    html = paths["html"].read_text()
    assert "<script>" not in html and "<img src=x" not in html and "<b>bad</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;bad&lt;/b&gt;" in html
    md = paths["md"].read_text()
    prose = re.sub(r"^```.*?^```", "", md, flags=re.S | re.M)  # a fenced code block shows text literally
    assert "<script>" not in prose and "<b>" not in prose and "&lt;script&gt;" in prose
    # every Markdown table row keeps its column count despite the '|' in the names
    for block in re.findall(r"((?:^\|.*\|$\n?)+)", md, flags=re.M):
        lines = block.strip().splitlines()
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
        assert len(widths) == 1, lines
    assert "broken" in md  # the failed run is listed with its error
    assert len(_csv(paths["tables"] / "failed.csv")) == 1


def test_paper_comparison_and_studies_and_failed_runs(tmp_path, monkeypatch):
    t = targets()
    runs = [{"model": "resnet50", "init": "random", "scores": noisy(t, 0.8, 1), "targets": t},
            {"model": "resnet50", "init": "transfer", "scores": noisy(t, 0.7, 2), "targets": t},
            {"model": "cbr_small", "init": "random", "status": "failed", "error": "TrainingDiverged: at step 3"}]
    toml = ('name = "paper-like"\n[grid]\ndataset = ["synth-retina?n=400"]\nmodel = ["resnet50"]\n'
            'init = ["random", "transfer"]\n[report]\nmargin = 0.005\ndelta = 0.005\npaper = "retina"\n')
    store = hand_store(tmp_path / "s.sqlite", runs, toml=toml)

    # a stand-in for the studies module (issue 6): one study present, one absent
    png = tmp_path / "study.png"
    from transfusion.report.plots import CostPoint, accuracy_cost_plot

    accuracy_cost_plot([CostPoint("m", "r", 1.0, 0.5)], np.array([True]), 0, png, xlabel="x", title="t", delta=0.01)
    out = types.SimpleNamespace
    fake = types.ModuleType("transfusion.analysis.studies")
    fake.run_all = lambda store_path, out_dir, only=None: [
        out(name="convergence", title="Convergence curves", csv=None, png=png, absent=None, summary="curves!"),
        out(name="svcca", title="Per-stage similarity", csv=None, png=None, absent="no checkpoints kept",
            summary=""),
    ]
    monkeypatch.setitem(sys.modules, "transfusion.analysis.studies", fake)
    paths = build_report(store, tmp_path / "r", n_boot=50)
    md = paths["md"].read_text()
    rows = {(r["model"], r["init"]): r for r in _csv(paths["tables"] / "paper.csv")}
    data = report_data(store, n_boot=50)
    ours = {(r["model"], r["init"]): r["auc_mean"] for r in data.summary}
    assert float(rows[("resnet50", "random")]["paper_auc_pct"]) == 96.4
    assert float(rows[("resnet50", "transfer")]["diff_pct"]) == pytest.approx(ours[("resnet50", "transfer")] * 100
                                                                                - 96.7)
    assert rows[("cbr_small", "random")]["paper_auc_pct"] == ""  # unverified: empty, with a note
    assert "not verified" in rows[("cbr_small", "random")]["note"]
    assert "arXiv:1902.07208" in md and "Table 1" in md
    assert "### Convergence curves" in md and "curves!" in md
    assert "Per-stage similarity: no checkpoints kept" in md
    assert "](../study.png)" in md  # the study's own figure, linked relative to the report folder
    figures = sorted(paths["figures"].glob("*.png"))
    assert figures and all(f"](figures/{f.name})" in md for f in figures)
    assert "TrainingDiverged: at step 3" in md
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == len(list(paths["figures"].glob("*.png"))) + 1


def test_report_errors(tmp_path):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    t = targets(100)
    store = hand_store(tmp_path / "s.sqlite", [{"model": "cbr_small", "init": "random", "scores": t * 0.5,
                                                 "targets": t}])
    assert main(["report", str(store), "--out", str(tmp_path / "r"), "--suite", "other"]) == 2
    assert main(["report", str(store), "--out", str(tmp_path / "r"), "--margin", "5"]) == 2


def test_each_comparison_rests_on_its_own_seeds(tmp_path):
    """No pooling: a regime with noisy seeds (a linear probe, say) widens its own interval and no
    other's — the fine-tuned arms' intervals are the same with or without it."""
    t = targets()
    base = {s: noisy(t, 1.0, 10 + s) for s in range(3)}

    def arm(init, scheme, noise, offset):
        return [{"model": "cbr_small", "init": init, "scheme": scheme, "seed": s, "targets": t,
                 "scores": noisy(t, noise, offset + s)} for s in range(3)]

    calm = [*seeded("cbr_small", "random", lambda s: {"scores": base[s], "targets": t}),
            *arm("transfer", "finetune", 1.0, 30), *arm("meanvar", "finetune", 1.1, 40)]
    alone = {r["regime"]: r for r in report_data(hand_store(tmp_path / "a.sqlite", calm), n_boot=200,
                                                 margin=0.01).paired}
    rows = {r["regime"]: r for r in report_data(hand_store(tmp_path / "s.sqlite", calm + arm("transfer", "linear",
                                                                                             4.0, 60)),
                                                n_boot=200, margin=0.01).paired}
    assert set(rows) == {"transfer", "meanvar", "transfer · linear"}
    for r in ("transfer", "meanvar"):
        assert rows[r]["se"] == pytest.approx(alone[r]["se"]) and rows[r]["diff_sd"] == pytest.approx(alone[r]["diff_sd"])
        assert rows[r]["family_size"] == 3 and alone[r]["family_size"] == 2  # only the family level widens them
    probe = rows["transfer · linear"]
    assert probe["se"] ** 2 == pytest.approx(probe["diff_sd"] ** 2 / 3 + probe["se_shared"] ** 2)
