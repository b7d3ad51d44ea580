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
from _records import run_summary
from _tiny import tiny_suite

from transfusion import stats as M
from transfusion.cli.main import main
from transfusion.data.base import TaskSpec
from transfusion.harness.store import Store
from transfusion.report.build import build_report
from transfusion.report.data import report_data
from transfusion.stats.seeds import two_level_interval

TINY = tiny_suite("tiny-report", ("random", "transfusion:1"), seeds=(0, 1),
                  extra="[report]\nmargin = 0.05\ndelta = 0.02\n")

SECTIONS = ("At a glance", "Each regime minus random", "Accuracy against cost", "Weight sources",
            "Comparison with the paper",
            "Analysis studies", "Exported models (ONNX)", "Failed runs", "Environment", "How to read this report")
BINARY = TaskSpec("binary", ("neg", "pos"), "pos rule")


@pytest.fixture(scope="module")
def bench_store(tiny_bench) -> Path:
    """A real store: 1 pretraining + 4 tiny training runs (2 regimes × 2 seeds) with costs."""
    return tiny_bench(TINY, "bench")


def _csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _hand_store(path: Path, runs: list[dict], *, toml: str = 'name = "hand"\n[grid]\ndataset = ["x"]\n'
                'model = ["cbr_small"]\n[report]\nmargin = 0.01\ndelta = 0.02\n',
                costs: list[dict] = ()) -> Path:
    """A store written by hand. Each run: model, init, seed, scores, targets (binary task),
    optionally dataset, status ('done'/'failed'), error."""
    with Store(path) as store:
        store.add_suite(toml.split('"')[1], toml, "hash-of-hand-suite")
        for i, r in enumerate(runs):
            spec = {"model": r["model"], "data": r.get("dataset", "synth-retina?n=400"), "init": r["init"],
                    "seed": r.get("seed", 0), "train_size": "all", "kind": "train"}
            rid = f"run{i:03d}"
            store.add_runs([{"run_id": rid, "spec": spec}], suite=toml.split('"')[1])
            if r.get("status") == "failed":
                store.fail(rid, r["error"])
                continue
            ev = M.evaluate(BINARY, r["scores"], r["targets"])
            ci = M.bootstrap_ci(BINARY, r["scores"], r["targets"], n_boot=100, seed=0)
            summary = run_summary(model=spec["model"], data=spec["data"], init=spec["init"], seed=spec["seed"],
                                  test_auc=ev["auc"], test_auc_ci=tuple(ci), test_auprc=ev["auprc"], test_acc=ev["acc"],
                                  train_seconds=1.5, test_per_label_auc=ev["per_label_auc"])
            store.finish(rid, summary, predictions={"scores": r["scores"], "targets": r["targets"]})
        for c in costs:
            row = {"res": 32, "in_chans": 3, "num_classes": 2, "batch": 4, "device": "cpu (test CPU, 1 thread)",
                   "torch_ms": None, "onnx_ms": None, **c}
            store.put_cost(f"{c['model']}|hand", row, {"cpu": "test CPU", "cores": 1, "torch": "x"})
    return path


def _targets(n: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % 2)


def _noisy(targets: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(targets * 2.0 - 1.0 + rng.normal(0, noise, len(targets)))))


# --------------------------------------------------------------------------- the real store


@pytest.mark.slow
def test_report_from_bench_store_has_every_section_and_the_store_numbers(bench_store, tmp_path):
    out = tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "old-dataset-paired.png").write_bytes(b"stale")  # from an earlier report
    (out / "notes.txt").write_text("mine")
    assert main(["report", str(bench_store.parent), "--out", str(out), "--n-boot", "200", "--no-studies"]) == 0
    assert not (out / "figures" / "old-dataset-paired.png").exists() and (out / "notes.txt").exists()
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
    assert html.count('src="data:image/png;base64,') == len(pngs) == 4
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
            assert int(row["n_seeds"]) == 2 and row["ci_method"].startswith("two-level")
            assert float(row["auc_ci_low"]) <= float(row["auc_mean"]) <= float(row["auc_ci_high"])
            assert int(row["params"]) == cost["params"] and int(row["macs"]) == cost["macs"]
            assert float(row["torch_ms"]) == pytest.approx(cost["torch_ms"]) and row["onnx_ms"] == ""
            assert row["cost_key"] == cost["cost_key"]
            # the Markdown table shows the same numbers
            assert f"| {model} | {init} | 2 | {np.mean(aucs):.3f} ± {np.std(aucs, ddof=1):.3f} |" in md
        # paired rows: one per seed and the pooled mean, each with the direct computation's numbers
        paired = _csv(out / "tables" / "paired.csv")
        assert [r["seed"] for r in paired] == ["0", "1", "mean"]
        by_seed = {(r["init"], r["seed"]): r for r in runs}
        for r in paired[:2]:
            a = store.predictions(by_seed[("transfusion:1", int(r["seed"]))]["run_id"])
            b = store.predictions(by_seed[("random", int(r["seed"]))]["run_id"])
            d = M.paired_difference(BINARY, a["scores"], b["scores"], a["targets"], n_boot=200, seed=0)
            assert float(r["diff"]) == pytest.approx(d.diff) and float(r["ci_low"]) == pytest.approx(d.ci_low)
            assert r["verdict"] == M.equivalence_verdict(d.ci_low, d.ci_high, 0.05)
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

    def run(rid, kind, model, source=None, auc=None, steps=None):
        return {"run_id": rid, "kind": kind, "model": model, "dataset": "synth-natural?n=10", "status": "done",
                "source": source, "summary": run_summary(model=model, test_auc=auc, test_acc=0.1, steps=steps)}

    pre = [run("p1", "pretrain", "resnet50", auc=WEAK_SOURCE_AUC - 0.01, steps=86),
           run("p2", "pretrain", "cbr_small", auc=WEAK_SOURCE_AUC + 0.2, steps=129)]
    train = [run("t1", "train", "resnet50", "run:p1"), run("t2", "train", "resnet50", "run:p1"),
             run("t3", "train", "cbr_small", "run:p2"), run("t4", "train", "resnet18", "imagenet"),
             run("t5", "train", "cbr_tiny", "run:gone"), run("t6", "train", "cbr_tiny")]
    rows = {r["source"]: r for r in _source_rows(pre + train, train)}
    assert set(rows) == {"run:p1", "run:p2", "imagenet", "run:gone"}  # t6 trains from scratch
    assert rows["run:p1"]["quality"].startswith("weak") and rows["run:p1"]["used_by"] == 2
    assert rows["run:p1"]["steps"] == 86 and rows["run:p1"]["model"] == "resnet50"
    assert rows["run:p2"]["quality"] == "pretrained in this store"
    assert rows["imagenet"]["quality"] == "published ImageNet weights"
    assert rows["run:p1"]["weak"] and not any(rows[k]["weak"] for k in ("run:p2", "imagenet", "run:gone"))
    assert rows["run:gone"]["status"] == "missing"


# --------------------------------------------------------------------------- hand-made stores


def test_pareto_front_and_recommendation_on_a_hand_made_case(tmp_path):
    t = _targets()
    # AUC rises with noise falling: cbr_tiny worst, resnet50 best
    models = {"cbr_tiny": (1e9, 3.0), "cbr_small": (2e9, 0.9), "cbr_large_t": (3e9, 1.5), "resnet50": (4e9, 0.85)}
    runs = [{"model": m, "init": "random", "scores": _noisy(t, noise, 1), "targets": t}
            for m, (_, noise) in models.items()]
    costs = [{"model": m, "params": int(macs / 100), "macs": macs, "torch_ms": macs / 1e8} for m, (macs, _) in
             models.items()]
    store = _hand_store(tmp_path / "s.sqlite", runs, costs=costs)
    data = report_data(store, n_boot=50)
    auc = {r["model"]: r["auc_mean"] for r in data.summary}
    assert auc["cbr_tiny"] < auc["cbr_large_t"] < auc["cbr_small"] < auc["resnet50"]
    assert auc["resnet50"] - auc["cbr_small"] < 0.02  # within delta: cbr_small is the pick
    for measure in ("macs", "params", "torch_ms"):
        rows = {r["model"]: r for r in data.pareto if r["cost_measure"] == measure}
        assert {m for m, r in rows.items() if r["on_front"]} == {"cbr_tiny", "cbr_small", "resnet50"}
        assert [m for m, r in rows.items() if r["recommended"]] == ["cbr_small"]
    # a tighter delta recommends the best itself
    data = report_data(store, n_boot=50, delta=0.0)
    assert {r["model"] for r in data.recommendations} == {"resnet50"}
    paths = build_report(store, tmp_path / "r", n_boot=50, studies=False)
    md = paths["md"].read_text()
    assert "by MACs: cbr_small · random" in md and "Pareto front: cbr_tiny · random; cbr_small · random; resnet50" in md
    assert "GPU latency: not measured" in md


def test_paired_intervals_and_verdicts_on_constructed_predictions(tmp_path):
    t = _targets()
    base = _noisy(t, 1.0, 1)
    runs = [
        {"model": "cbr_small", "init": "random", "scores": base, "targets": t},
        {"model": "cbr_small", "init": "transfer", "scores": base.copy(), "targets": t},  # identical → equivalent
        {"model": "cbr_small", "init": "meanvar", "scores": t * 0.5 + base * 0.5, "targets": t},  # much better
        {"model": "cbr_small", "init": "gabor", "scores": _noisy(t, 6.0, 2), "targets": t},  # much worse
    ]
    store = _hand_store(tmp_path / "s.sqlite", runs)
    data = report_data(store, n_boot=300, margin=0.01)
    rows = {r["regime"]: r for r in data.paired}
    assert set(rows) == {"transfer", "meanvar", "gabor"}
    assert rows["transfer"]["diff"] == 0 and (rows["transfer"]["ci_low"], rows["transfer"]["ci_high"]) == (0, 0)
    assert rows["transfer"]["verdict"] == "equivalent"
    assert rows["meanvar"]["verdict"] == "better" and rows["meanvar"]["ci_low"] > 0.01
    assert rows["gabor"]["verdict"] == "worse" and rows["gabor"]["ci_high"] < 0
    for regime, scores in (("meanvar", runs[2]["scores"]), ("gabor", runs[3]["scores"])):
        d = M.paired_difference(BINARY, scores, base, t, n_boot=300, seed=0)
        assert (rows[regime]["diff"], rows[regime]["ci_low"], rows[regime]["ci_high"]) == pytest.approx(
            (d.diff, d.ci_low, d.ci_high))
    # a regime that differs by less than the margin with a tight interval: equivalent, not "better"
    near = base + 1e-3 * t
    store2 = _hand_store(tmp_path / "s2.sqlite", [runs[0], {**runs[1], "scores": near}])
    r = report_data(store2, n_boot=300, margin=0.05).paired[0]
    assert r["ci_low"] > 0 and r["ci_high"] < 0.05 and r["verdict"] == "equivalent"
    md = build_report(store, tmp_path / "r", n_boot=300, margin=0.01, studies=False)["md"].read_text()
    assert "| cbr_small | transfer | 0 |" in md and "equivalent" in md and "better" in md and "worse" in md


def test_two_level_interval():
    rng = np.random.default_rng(0)
    one = rng.normal(0.8, 0.02, size=(1, 500))
    assert two_level_interval(one) == pytest.approx(tuple(np.quantile(one[0], [0.025, 0.975])))
    same = np.repeat(one, 3, axis=0)  # identical seeds: seed resampling changes nothing
    assert two_level_interval(same) == pytest.approx(two_level_interval(one))
    spread = one + np.array([[-0.05], [0.0], [0.05]])  # seed-to-seed spread widens the interval
    lo, hi = two_level_interval(spread)
    assert hi - lo > np.subtract(*two_level_interval(one)[::-1])
    with pytest.raises(ValueError, match="shape"):
        two_level_interval(np.zeros(5))


def test_hostile_names_are_escaped_in_html_and_markdown(tmp_path):
    t = _targets(200)
    evil_model, evil_data = "<script>alert(1)</script>", "x|y<img src=x onerror=alert(2)>"
    runs = [{"model": evil_model, "init": "random", "dataset": evil_data, "scores": _noisy(t, 1, 1), "targets": t},
            {"model": evil_model, "init": "tr|ansfer", "dataset": evil_data, "scores": _noisy(t, 1, 2), "targets": t},
            {"model": "cbr_small", "init": "random", "dataset": evil_data, "status": "failed",
             "error": "ValueError: <b>bad</b> | broken"}]
    costs = [{"model": evil_model, "params": 1000, "macs": 5e6, "torch_ms": 1.0}]
    toml = 'name = "evil"\n[grid]\ndataset = ["<script>x</script>"]\nmodel = ["nope"]\n'
    store = _hand_store(tmp_path / "s.sqlite", runs, toml=toml, costs=costs)
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
    t = _targets()
    runs = [{"model": "resnet50", "init": "random", "scores": _noisy(t, 0.8, 1), "targets": t},
            {"model": "resnet50", "init": "transfer", "scores": _noisy(t, 0.7, 2), "targets": t},
            {"model": "cbr_small", "init": "random", "status": "failed", "error": "TrainingDiverged: at step 3"}]
    toml = ('name = "paper-like"\n[grid]\ndataset = ["synth-retina?n=400"]\nmodel = ["resnet50"]\n'
            'init = ["random", "transfer"]\n[report]\nmargin = 0.005\ndelta = 0.005\npaper = "retina"\n')
    store = _hand_store(tmp_path / "s.sqlite", runs, toml=toml)

    # a stand-in for the studies module (issue 6): one study present, one absent
    png = tmp_path / "study.png"
    from transfusion.report.plots import CostPoint, accuracy_cost_plot

    accuracy_cost_plot([CostPoint("m", "r", 1.0, 0.5)], np.array([True]), 0, png, xlabel="x", title="t", delta=0.01)
    out = types.SimpleNamespace
    fake = types.ModuleType("transfusion.analysis.studies")
    fake.run_all = lambda store_path, out_dir: [
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
    t = _targets(100)
    store = _hand_store(tmp_path / "s.sqlite", [{"model": "cbr_small", "init": "random", "scores": t * 0.5,
                                                 "targets": t}])
    assert main(["report", str(store), "--out", str(tmp_path / "r"), "--suite", "other"]) == 2
    assert main(["report", str(store), "--out", str(tmp_path / "r"), "--margin", "5"]) == 2
