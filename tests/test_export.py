"""``transfusion export``: ONNX export of a trained CBR, parity on its real test images, the model
card, the store record, and parity failure as an error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny import tiny_suite

from transfusion.cli.main import main
from transfusion.deploy import export as deploy
from transfusion.harness.store import Store
from transfusion.report.build import build_report

pytestmark = pytest.mark.slow  # every test exports a run trained by `transfusion bench`

TINY = tiny_suite("tiny-export", pretrain=False)


@pytest.fixture(scope="module")
def trained(tiny_bench) -> tuple[Path, str]:
    """(store path, run id) of one tiny trained CBR-Small."""
    store = tiny_bench(TINY, "export")
    with Store(store) as s:
        (run,) = s.runs(kind="train")
    return store, run["run_id"]


def _args(*extra: str) -> list[str]:
    return ["--repeats", "3", "--batch", "4", "--threads", "1", *extra]


def test_export_run_parity_card_and_store_record(trained, tmp_path):
    store, rid = trained
    out = tmp_path / "onnx"
    assert main(["export", rid[:8], "--store", str(store.parent), "--out", str(out), *_args()]) == 0
    assert {p.name for p in out.iterdir()} == {"model.onnx", "model.onnx.data", "model_card.md", "model_card.json"}
    card = json.loads((out / "model_card.json").read_text())
    ck = torch.load(store.parent / rid / "best.pt", weights_only=True)
    with Store(store) as s:
        run = s.run(rid)
        (export,) = s.exports()
        test_targets = s.predictions(rid)["targets"]
    # task, labels, input size and normalisation from the checkpoint
    assert card["task"]["kind"] == "binary" and card["task"]["labels"] == ["non-referable", "referable"]
    assert card["input"]["shape"] == ["N", 3, 32, 32] and card["input"]["name"] == "input"
    assert card["input"]["normalisation"]["mean"] == pytest.approx(ck["mean"])
    assert card["input"]["normalisation"]["std"] == pytest.approx(ck["std"])
    assert card["source"]["run_id"] == rid and card["source"]["model"] == "cbr_small"
    # parity on the run's 24 real test images
    p = card["parity"]
    assert p["passed"] and p["failures"] == [] and p["n_images"] == len(test_targets)
    assert 0 <= p["max_rel_err"] <= deploy.REL_TOL and p["max_abs_err"] < 1e-4
    assert p["auc_onnx"] == pytest.approx(p["auc_torch"], abs=deploy.AUC_TOL)
    assert p["auc_torch"] == pytest.approx(run["test_auc"], abs=1e-6)  # fp32 run: the stored AUC again
    assert card["metrics"]["test_auc_stored"] == run["test_auc"]
    # cost and latency
    assert card["cost"]["params"] == run["summary"].params and card["cost"]["macs"] > 0
    lat = card["latency"]
    assert lat["ort_ms_batch1"] > 0 and lat["ort_ms_batchN"] > 0 and lat["batch"] == 4
    assert card["files"]["model.onnx.data"]["bytes"] > 1e6
    md = (out / "model_card.md").read_text()
    assert "**passed**" in md and "(x / 255 - mean[c]) / std[c]" in md and "referable" in md
    # the decision thresholds stored with the run, in the card: one per target, met on validation
    from transfusion.stats.operating import threshold_for

    with Store(store) as s:
        val = s.predictions(rid, "val")
    assert card["clinical"] == run["summary"].clinical
    # a tiny validation split cannot meet 0.9 with 95% one-sided confidence: no threshold, and the card says why
    assert card["clinical"]["operating_points"] == [] and len(card["clinical"]["operating_skipped"]) == 2
    assert all("needs ≥ 29" in why for why in card["clinical"]["operating_skipped"])
    assert "- not set — " in md and "needs ≥ 29" in md
    # the rule without a confidence (the point rule) still sets thresholds on the same scores
    assert threshold_for(val["scores"], val["targets"], "sensitivity", 0.9, confidence=None) is not None
    assert "## Calibration (test split)" in md and "T = " in md
    # recorded in the store, and listed by the report
    assert export["run_id"] == rid and export["passed"] and export["card"]["parity"] == p
    report = build_report(store, tmp_path / "report", n_boot=20, studies=False)
    text = report["md"].read_text()
    assert f"| {rid} | cbr_small | random | passed |" in text


def test_export_from_checkpoint_path_and_onnx_runs_on_its_own(trained, tmp_path):
    store, rid = trained
    ck = store.parent / rid / "best.pt"
    r = deploy.export_run(ck, tmp_path / "x", repeats=3, batch=2, threads=1)
    assert r.passed and r.store_path == store  # the run folder's store was found and used
    import onnxruntime as ort

    sess = ort.InferenceSession(str(r.onnx_path), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": np.zeros((3, 3, 32, 32), np.float32)})[0]
    assert y.shape == (3, 2)  # dynamic batch axis


def test_broken_parity_is_an_error(trained, tmp_path, monkeypatch, capsys):
    store, rid = trained
    real = deploy.ort_run
    monkeypatch.setattr(deploy, "ort_run", lambda session, x: real(session, x) + 0.5)
    out = tmp_path / "broken"
    assert main(["export", rid, "--store", str(store), "--out", str(out), *_args()]) == 1
    assert "parity failed" in capsys.readouterr().err
    card = json.loads((out / "model_card.json").read_text())
    assert not card["parity"]["passed"] and "relative output error" in card["parity"]["failures"][0]
    with Store(store) as s:
        assert s.exports()[-1]["passed"] is False
    with pytest.raises(deploy.ParityError):
        deploy.export_run(rid, tmp_path / "b2", store_path=store, repeats=2, batch=2, threads=1,
                          ort_runner=lambda session, x: real(session, x) * 1.01)


def test_export_bad_input(trained, tmp_path):
    store, _ = trained
    assert main(["export", "nosuchrun", "--store", str(store), "--out", str(tmp_path / "a")]) == 2
    assert main(["export", "abc", "--store", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "a")]) == 2
    junk = tmp_path / "junk.pt"
    torch.save({"w": torch.zeros(2)}, junk)
    assert main(["export", str(junk), "--out", str(tmp_path / "a")]) == 2
    with pytest.raises(ValueError, match="batch"):
        deploy.export_run(junk, tmp_path / "a", batch=0)


def test_quantised_and_fp16_variants_are_checked_against_fp32(trained, tmp_path, capsys):
    import onnxruntime as ort
    from sklearn.metrics import roc_auc_score

    store, rid = trained
    out = tmp_path / "q"
    args = ["export", rid, "--store", str(store.parent), "--out", str(out), "--quantize", "static", "--quantize",
            "dynamic", "--fp16", "--calib", "16", *_args()]
    assert main(args) == 0
    card = json.loads((out / "model_card.json").read_text())
    got = {v["variant"]: v for v in card["variants"]}
    assert set(got) == {"static", "dynamic", "fp16"} and got["static"]["calibration_images"] == 16
    assert got["static"]["margin"] == 0.005  # the suite's [report] margin (this suite keeps the default)
    with Store(store) as s:
        test = s.predictions(rid)
    for v in got.values():
        assert (out / v["file"]).is_file() and v["bytes"] > 0 and v["ms_batch1"] > 0 and v["img_s_batchN"] > 0
        assert v["passed"] == (v["auc_diff_low"] > -v["margin"]) and v["auc_diff_low"] <= v["auc_diff_high"]
    # the int8 model runs on its own and its AUC is the one in the card
    from transfusion.train.inference import normalize

    ck = torch.load(store.parent / rid / "best.pt", weights_only=True)
    from transfusion.data import load_dataset

    images = load_dataset(ck["spec"]["data"])["test"].images
    x = normalize(torch.from_numpy(np.array(images)), tuple(ck["mean"]), tuple(ck["std"])).numpy()
    sess = ort.InferenceSession(str(out / got["static"]["file"]), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {sess.get_inputs()[0].name: x})[0].astype(np.float64)
    p = 1 / (1 + np.exp(-(logits[:, 1] - logits[:, 0])))
    assert got["static"]["test_auc"] == pytest.approx(roc_auc_score(test["targets"], p), abs=1e-12)
    md = (out / "model_card.md").read_text()
    assert "## Deployment variants" in md and "int8-static" in md
    # a margin nothing can meet: reported as failing, exit 1 only with --strict
    capsys.readouterr()
    assert main([*args[:-len(_args())], "--margin", "0", *_args()]) == 0
    assert "FAILED" in capsys.readouterr().out
    assert main([*args[:-len(_args())], "--margin", "0", "--strict", *_args()]) == 1
