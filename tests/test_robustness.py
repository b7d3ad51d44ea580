"""Robustness end to end on a tiny bench: every finished run scored under each corruption ×
severity of the suite, the stored AUC equal to an independent recomputation (same corrupted bytes,
scikit-learn's AUC), nothing scored twice on a rerun, and the report's 'Robustness' section with
the mean corruption AUC of the stored rows."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny import tiny_suite
from sklearn.metrics import roc_auc_score

from transfusion.cli.main import main
from transfusion.data import load_dataset
from transfusion.data.corruptions import corrupt
from transfusion.harness.robustness import evaluate_robustness
from transfusion.harness.store import Store
from transfusion.harness.suite import parse_suite
from transfusion.train.inference import normalize
from transfusion.transfer.checkpoint import best_path, load_checkpoint, model_from_checkpoint

pytestmark = pytest.mark.slow

ROBUST = '[robustness]\ncorruptions = ["gaussian_noise", "contrast"]\nseverities = [1, 5]\n'
TINY = tiny_suite("tiny-robust", ("random", "transfusion:1"), seeds=(0, 1), data="synth-retina?n=200&res=32",
                  extra="[report]\nmargin = 0.05\n" + ROBUST)


@pytest.fixture(scope="module")
def store(tiny_bench) -> Path:
    return tiny_bench(TINY, "robust")


def test_every_run_is_scored_under_every_condition_and_matches_a_recomputation(store):
    with Store(store) as s:
        runs = s.runs(kind="train")
        rows = s.robustness()
    assert len(runs) == 4 and len(rows) == 4 * 2 * 2
    assert {(r["corruption"], r["severity"]) for r in rows} == {(c, v) for c in ("gaussian_noise", "contrast")
                                                               for v in (1, 5)}
    assert {r["modality"] for r in rows} == {"fundus"}  # synth-retina: MedMNIST-C's fundus table
    run = runs[0]
    ck = load_checkpoint(best_path(run["out_dir"]))
    test = load_dataset(ck["spec"]["data"])["test"]
    model = model_from_checkpoint(ck)
    for row in (r for r in rows if r["run_id"] == run["run_id"]):
        images = corrupt(np.array(test.images), row["corruption"], row["severity"], modality="fundus", seed=0)
        with torch.no_grad():
            logits = model(normalize(torch.from_numpy(images), tuple(ck["mean"]), tuple(ck["std"])))
        p = torch.softmax(logits.double(), dim=1)[:, 1].numpy()
        assert np.allclose(row["scores"], p, atol=1e-5)
        assert row["auc"] == pytest.approx(roc_auc_score(test.targets, row["scores"]), abs=1e-12)


def test_a_rerun_scores_nothing_again(store):
    suite = parse_suite(TINY)
    with Store(store) as s:
        ids = [r["run_id"] for r in s.runs(kind="train")]
        before = s.fingerprint()
        assert evaluate_robustness(s, suite.robustness, ids, threads=1) == 0
        assert s.fingerprint() == before


def test_report_shows_robustness_with_the_stored_numbers(store, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(store), "--out", str(out), "--n-boot", "100", "--no-studies"]) == 0
    md = (out / "report.md").read_text()
    assert "### Robustness" in md and "Most robust:" in md and "-robustness.png" in md
    with Store(store) as s:
        runs = {r["run_id"]: r for r in s.runs(kind="train")}
        rows = s.robustness()
    with open(out / "tables" / "robustness.csv", newline="") as fh:
        cells = {(r["model"], r["init"]): r for r in csv.DictReader(fh)}
    assert set(cells) == {("cbr_small", "random"), ("cbr_small", "transfusion:1")}
    for (_, init), cell in cells.items():
        mine = [rid for rid, r in runs.items() if r["init"] == init]
        per_run = [np.mean([r["auc"] for r in rows if r["run_id"] == rid]) for rid in mine]
        assert float(cell["mca"]) == pytest.approx(np.mean(per_run), abs=1e-12)
        drops = [(runs[rid]["test_auc"] - m) / runs[rid]["test_auc"] for rid, m in zip(mine, per_run)]
        assert float(cell["drop"]) == pytest.approx(np.mean(drops), abs=1e-12) and cell["n_conditions"] == "4"
    with open(out / "tables" / "robustness_paired.csv", newline="") as fh:
        paired = list(csv.DictReader(fh))
    assert [(r["regime"], r["measure"], r["verdict"]) for r in paired] == [
        ("transfusion:1", "mca", "unjudged"), ("transfusion:1", "drop", "unjudged")]  # two seeds: no verdict
    # the drop is compared as random's minus the regime's (positive: the regime is more robust)
    drop = {}
    for rid, r in runs.items():
        mca = np.mean([x["auc"] for x in rows if x["run_id"] == rid])
        drop[(r["init"], r["seed"])] = (r["test_auc"] - mca) / r["test_auc"]
    want = np.mean([drop[("random", s)] - drop[("transfusion:1", s)] for s in (0, 1)])
    assert float(paired[1]["diff"]) == pytest.approx(want, abs=1e-12)
