"""Studies over a results store and ``transfusion analyze``, on a tiny store trained for real
(cbr_small, 32 px, 4 steps: the ``slow`` tests) and on hand-written stores for the studies that
read only the table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _records import run_summary
from _tiny import tiny_suite

from transfusion.analysis.similarity import (
    cca,
    linear_cka,
    matched_datapoints,
    principal_scores,
    svcca,
)
from transfusion.analysis.stage_similarity import POINTS_PER_DIM, stage_similarities
from transfusion.analysis.studies import (
    STUDIES,
    StudyContext,
    compare_checkpoints,
    run_all,
    run_study,
)
from transfusion.analysis.studies.representations import SIM_COLUMNS, VS_INIT_COLUMNS
from transfusion.cli.main import main
from transfusion.harness.store import Store
from transfusion.models import create_model

DATA = "synth-retina?n=200&res=32"
STAGES = ["block1", "block2", "block3", "block4", "head"]
TINY = tiny_suite(
    "tiny-studies", ("random", "transfer", "meanvar", "gabor"), seeds=(0, 1), data=DATA,
    grid_extra='exclude = [{ seed = 1, init = "transfer" }, { seed = 1, init = "meanvar" }, { seed = 1, init = "gabor" }]\n',
    train="steps = 4\nbatch_size = 16\neval_every = 2\ntarget_auc = 0.5\nbootstrap = 0\nthreads = 1\n",
    cost="[cost]\nenabled = false\n")


@pytest.fixture(scope="module")
def env():
    """torch on one thread for the module (conftest restores it afterwards)."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store(env, tiny_bench) -> Path:
    """A trained tiny store: random (seeds 0, 1), transfer, meanvar, gabor (seed 0)."""
    return tiny_bench(TINY, "studies")


@pytest.fixture(scope="module")
def outputs(store, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("analysis")
    return {o.name: o for o in run_all(store, out, knn_init=True)}


def _rows(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _header(path: Path) -> list[str]:
    with path.open() as f:
        return next(csv.reader(f))


def _runs(store: Path) -> dict[str, dict]:
    with Store(store) as s:
        return {(r["init"], r["seed"]): r for r in s.runs(kind="train")}


# ---------------------------------------------------------------------------- run_all


@pytest.mark.slow
def test_run_all_writes_every_study_or_says_why_not(outputs):
    assert list(outputs) == list(STUDIES)
    absent = {n for n, o in outputs.items() if o.absent}
    assert absent == {"transfusion-curve", "data-efficiency"}
    assert "transfusion:K" in outputs["transfusion-curve"].absent
    msg = outputs["data-efficiency"].absent
    assert "2 or more training-set sizes" in msg and "found only" in msg and "random (seeds 0, 1)" in msg
    for name, o in outputs.items():
        if o.absent:
            assert o.csv is None and o.png is None
            continue
        assert o.csv.is_file() and o.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert o.summary and not o.summary.startswith("Not computed"), name


@pytest.mark.slow
def test_transfer_vs_random_rows_per_stage_with_band(outputs):
    o = outputs["transfer-vs-random"]
    assert _header(o.csv) == SIM_COLUMNS
    rows = _rows(o.csv)
    comparisons = {r["comparison"] for r in rows}
    assert comparisons == {"transfer vs random", "meanvar vs random", "gabor vs random", "random vs random"}
    for c in comparisons:
        assert [r["stage"] for r in rows if r["comparison"] == c] == STAGES
    for r in rows:
        assert 0.0 <= float(r["similarity"]) <= 1.0 + 1e-9 and 0.0 <= float(r["cka"]) <= 1.0 + 1e-9
        assert int(r["n_datapoints"]) >= 30  # the 30-image probe set, spatial positions as datapoints
    base = [r for r in rows if r["comparison"] == "random vs random"]
    assert {(r["seed_a"], r["seed_b"]) for r in base} == {("0", "1")}
    assert "random vs random" in o.summary and "absent" not in o.summary


@pytest.mark.slow
def test_vs_init_and_knn_probe_tables(outputs):
    rows = _rows(outputs["vs-init"].csv)
    assert _header(outputs["vs-init"].csv) == VS_INIT_COLUMNS
    assert len(rows) == 5 * len(STAGES)  # five runs, one row per stage
    assert all(0.0 <= float(r["similarity"]) <= 1.0 + 1e-9 for r in rows)
    knn = _rows(outputs["knn-probe"].csv)
    assert len(knn) == 5 * 2 * len(STAGES)  # trained and init checkpoints
    assert {r["checkpoint"] for r in knn} == {"trained", "init"}
    assert all(0.0 <= float(r["knn_auc"]) <= 1.0 for r in knn)
    assert {int(r["n_test"]) for r in knn} == {30} and {int(r["n_fit"]) for r in knn} == {140}


@pytest.mark.slow
def test_filters_and_weight_scaling(outputs):
    rows = _rows(outputs["filters"].csv)
    assert {(r["init"], r["checkpoint"]) for r in rows} == {
        (i, w) for i in ("random", "transfer", "gabor") for w in ("init", "trained")}
    gabor = {r["checkpoint"]: float(r["gabor_mean"]) for r in rows if r["init"] == "gabor"}
    random = {r["checkpoint"]: float(r["gabor_mean"]) for r in rows if r["init"] == "random"}
    assert gabor["init"] > 0.9 > 0.6 > random["init"]  # the rebuilt init is the regime's init
    assert "gabor" in outputs["filters"].summary
    ws = _rows(outputs["weight-scaling"].csv)
    assert {r["init"] for r in ws} == {"random", "transfer", "meanvar"}
    per_run = [r for r in ws if r["init"] == "random"]
    assert [int(r["layer_index"]) for r in per_run] == list(range(len(per_run)))
    assert len(per_run) == 5  # four convs and the linear head of cbr_small
    assert all(float(r["rel_l2_from_init"]) > 0 for r in ws)  # 4 AdamW steps moved every layer
    conv = _rows(outputs["convergence"].csv)
    assert sorted(int(r["rank"]) for r in conv) == [1, 2, 3, 4]


# ------------------------------------------------------------------ similarity facts


@pytest.mark.slow
def test_checkpoint_is_identical_to_itself_at_every_stage(store):
    best = store.parent / _runs(store)[("transfer", 0)]["run_id"] / "best.pt"
    rows = compare_checkpoints(best, best, DATA)
    assert [r["stage"] for r in rows] == STAGES
    for r in rows:
        assert r["similarity"] == pytest.approx(1.0, abs=1e-6) and r["cka"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_vs_init_is_one_against_own_best_and_init_is_rebuilt_exactly(store):
    runs = _runs(store)
    with StudyContext(store) as ctx:
        run = runs[("transfer", 0)]
        trained = ctx.activations(run, "trained").pooled
        same = stage_similarities(trained, ctx.activations(run, "trained").pooled)
        assert all(r["similarity"] == pytest.approx(1.0, abs=1e-6) for r in same)
        init = stage_similarities(ctx.activations(run, "init").pooled, trained)
        assert min(r["similarity"] for r in init) < 1.0 - 1e-6  # training changed the model
        # the rebuilt transfer init holds the pretraining run's weights (and the same twice)
        m0, _, _ = ctx.model(run, "init")
        m0b, _, _ = ctx.model(run, "init")
        src = torch.load(store.parent / run["source"][4:] / "best.pt", weights_only=True)["state_dict"]
        assert torch.equal(m0.state_dict()["block1.0.weight"], src["block1.0.weight"])
        assert all(torch.equal(v, m0b.state_dict()[k]) for k, v in m0.state_dict().items())


@pytest.mark.slow
def test_probe_set_is_deterministic(store):
    runs = _runs(store)
    with StudyContext(store, probe=20) as a, StudyContext(store, probe=20) as b:
        pa, pb = a.probe(runs[("random", 0)]["dataset"]), b.probe(runs[("random", 1)]["dataset"])
        assert len(pa) == 20 and np.array_equal(pa.images, pb.images) and np.array_equal(pa.targets, pb.targets)
        xa = a.activations(runs[("random", 0)], "trained")
        xb = b.activations(runs[("random", 0)], "trained")
        assert all(torch.equal(xa.pooled[s], xb.pooled[s]) for s in STAGES)
        assert xa.pooled["block1"].shape == (20, 32, 4, 4) and xa.mean["block1"].shape == (20, 32)


# ------------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_study_exit_codes(store, tmp_path, capsys):
    assert main(["analyze", "list"]) == 0
    assert "transfer-vs-random" in capsys.readouterr().out
    assert main(["analyze", "data-efficiency", "--store", str(store)]) == 2
    assert "study 'data-efficiency' needs runs" in capsys.readouterr().err
    assert main(["analyze", "convergence", "--store", str(store.parent), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "convergence.csv").is_file() and (tmp_path / "convergence_curves.csv").is_file()
    assert main(["analyze", "vs-init", "--store", str(tmp_path / "nowhere")]) == 2
    assert "no results store" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_similarity_table_json_and_bad_input(store, tmp_path, capsys):
    runs = _runs(store)
    a = store.parent / runs[("random", 0)]["run_id"] / "best.pt"
    b = store.parent / runs[("gabor", 0)]["run_id"] / "best.pt"
    capsys.readouterr()
    assert main(["analyze", "similarity", str(a), str(b), "--data", DATA, "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["stage"] for s in doc["stages"]] == STAGES and doc["method"] == "svcca"
    # a probe set too small for block4's 256 features under plain CCA: the measure's error, with the stage
    assert main(["analyze", "similarity", str(a), str(b), "--data", DATA, "--method", "cca"]) == 2
    err = capsys.readouterr().err
    assert "probe set too small" in err and "'block4'" in err
    # different architectures: a clear error naming both
    ck = torch.load(a, weights_only=True)
    tiny = create_model("cbr_tiny", num_classes=2)
    other = tmp_path / "tiny.pt"
    torch.save({**ck, "arch": "cbr_tiny", "state_dict": tiny.state_dict()}, other)
    assert main(["analyze", "similarity", str(a), str(other), "--data", DATA]) == 2
    err = capsys.readouterr().err
    assert "different architectures" in err and str(a) in err and str(other) in err and "cbr_tiny" in err


# ------------------------------------------------------- studies that read only the table


def _fake_store(path: Path, runs: list[tuple[str, str, int, str, float, list[float]]]) -> Path:
    """Runs (model, init, seed, train_size, test_auc, val curve) finished without training."""
    with Store(path) as s:
        for model, init, seed, size, auc, curve in runs:
            spec = {"model": model, "data": DATA, "init": init, "seed": seed, "train_size": size, "kind": "train"}
            rid = f"{model}-{init}-{seed}-{size}".replace(":", "")
            s.add_runs([{"run_id": rid, "spec": spec}])
            n_train = 140 if size == "all" else int(size)
            rows = [{"step": 10 * (i + 1), "epoch": i + 1, "train_loss": 1.0, "val_auc": v, "val_acc": v,
                     "seconds": 1.0} for i, v in enumerate(curve)]
            steps = next((r["step"] for r in rows if r["val_auc"] >= 0.8), None)
            s.finish(rid, run_summary(model=model, data=DATA, init=init, seed=seed, train_size=size, test_auc=auc,
                                      steps_to_target=steps, target_auc=0.8, n_train=n_train, curve=rows))
    return path


def test_table_studies_on_a_hand_written_store(env, tmp_path):
    store = _fake_store(tmp_path / "results.sqlite", [
        ("cbr_small", "random", 0, "all", 0.80, [0.6, 0.7, 0.8]),
        ("cbr_small", "random", 0, "50", 0.70, [0.6, 0.65, 0.7]),
        ("cbr_small", "transfusion:1", 0, "all", 0.82, [0.7, 0.8, 0.85]),
        ("cbr_small", "transfusion:2", 0, "all", 0.84, [0.8, 0.85, 0.86]),
        ("cbr_small", "transfer", 0, "all", 0.85, [0.81, 0.86, 0.87]),
    ])
    out = tmp_path / "an"
    tc = run_study("transfusion-curve", store, out)
    assert tc.absent is None
    rows = _rows(tc.csv)
    assert [(int(r["K"]), r["init"]) for r in rows] == [
        (0, "random"), (1, "transfusion:1"), (2, "transfusion:2"), (4, "transfer")]
    assert [float(r["steps_to_target_mean"]) for r in rows] == [30, 20, 10, 10]
    assert "best AUC 0.850 at K=4" in tc.summary
    de = run_study("data-efficiency", store, out)
    assert [(r["init"], int(r["n_train"]), float(r["test_auc_mean"])) for r in _rows(de.csv)] == [
        ("random", 50, 0.70), ("random", 140, 0.80)]
    cv = run_study("convergence", store, out)
    ranked = [(r["train_size"], r["init"], r["rank"]) for r in _rows(cv.csv) if r["train_size"] == "all"]
    assert ranked == [("all", "transfer", "1"), ("all", "transfusion:2", "2"), ("all", "transfusion:1", "3"),
                      ("all", "random", "4")]
    # the representation studies need random and transfer runs with checkpoints
    tvr = run_study("transfer-vs-random", store, out)
    assert "could not load the checkpoints" in tvr.absent and "best.pt does not exist" in tvr.absent


def test_absent_message_names_what_was_found(env, tmp_path):
    store = _fake_store(tmp_path / "results.sqlite", [("cbr_small", "random", 0, "all", 0.8, [0.8]),
                                                      ("cbr_small", "meanvar", 0, "all", 0.8, [0.8])])
    o = run_study("transfer-vs-random", store, tmp_path / "an")
    assert o.absent == (
        "study 'transfer-vs-random' needs runs with init random and transfer for the same model and dataset "
        "(and seed); found only: cbr_small on synth-retina: random (seed 0), meanvar (seed 0)")
    assert o.csv is None and not (tmp_path / "an" / "transfer-vs-random.csv").exists()
    with pytest.raises(ValueError, match="unknown study"):
        run_study("nope", store, tmp_path)
    with pytest.raises(ValueError, match="unknown study option"):
        run_study("convergence", store, tmp_path, probes=3)
    with pytest.raises(FileNotFoundError, match="no results store"):
        run_all(tmp_path / "missing.sqlite", tmp_path)


def test_capped_svcca_and_cka_agree_with_the_measures():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(128, 12, 2, 2, generator=g)  # 512 datapoints sharing a 12-dim signal

    def layer(width: int) -> torch.Tensor:
        signal = torch.einsum("nkhw,kc->nchw", base, torch.randn(12, width, generator=g))
        return signal + 0.05 * torch.randn(128, width, 2, 2, generator=g)

    cap = 512 // POINTS_PER_DIM
    for wa, wb in ((64, 48), (900, 700)):  # fewer and more features than datapoints
        a, b = {"s": layer(wa)}, {"s": layer(wb)}
        row = stage_similarities(a, b, cache={})[0]
        x, y = matched_datapoints(a["s"], b["s"])
        assert row["cka"] == pytest.approx(linear_cka(x, y), abs=1e-10)  # CKA through the Gram basis
        assert row["dims_a"] <= cap and row["dims_b"] <= cap
        if row["dims_a"] == row["dims_b"]:
            assert row["similarity"] == pytest.approx(svcca(x, y, keep=row["dims_a"]).mean, abs=1e-8)
        # the row is SVCCA capped at n / 20 directions: CCA of the two sides' capped principal scores …
        px, py = principal_scores(x, max_dims=cap), principal_scores(y, max_dims=cap)
        assert (px.dims, py.dims) == (row["dims_a"], row["dims_b"])
        assert row["similarity"] == pytest.approx(cca(px.scores, py.scores).mean, abs=1e-12)
        # … which is svcca with max_dims (through the p×p covariance instead)
        assert row["similarity"] == pytest.approx(svcca(x, y, max_dims=cap).mean, abs=1e-10)
        assert row["similarity"] > 0.95  # a shared signal is found whatever the width
    with pytest.raises(ValueError, match="unknown similarity method"):
        stage_similarities(a, b, method="nope")
