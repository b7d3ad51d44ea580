"""int8 rows of a suite (``[cost] int8 = true``): each trained run's static int8 variant scored
against its fp32 export, the int8 latency in the cost profile, and both side by side in the
summary, the accuracy-against-latency plot and its Pareto front."""

from __future__ import annotations

import numpy as np
import pytest
from _tiny import tiny_suite

from transfusion.cost import CostKey
from transfusion.harness.int8 import INT8, check_int8
from transfusion.harness.runner import run_suite
from transfusion.harness.store import Store
from transfusion.harness.suite import SuiteError, parse_suite
from transfusion.report.build import build_report
from transfusion.report.data import INT8_SUFFIX, report_data, with_int8

INT8_COST = "[cost]\nbatch = 4\nrepeats = 3\nint8 = true\ncalib = 32\n"
TRAIN = "steps = 30\nbatch_size = 16\nthreads = 1\nbootstrap = 50\n"


def test_int8_options_validated():
    ok = parse_suite(tiny_suite("t", cost=INT8_COST), origin="t.toml")
    assert ok.cost.int8 and ok.cost.calib == 32
    assert str(CostKey("cbr_small", 32, 3, 2, int8=True)).endswith("|onnx|int8")
    assert str(CostKey("cbr_small", 32, 3, 2)).endswith("|onnx")  # older stores' keys unchanged
    for cost, message in [("[cost]\nonnx = false\nint8 = true\n", "cost.int8: int8 variants are ONNX models"),
                          ("[cost]\nint8 = 1\n", "cost.int8: must be true or false, got 1"),
                          ("[cost]\ncalib = 0\n", "cost.calib: must be a whole number >= 1, got 0")]:
        with pytest.raises(SuiteError, match=message):
            parse_suite(tiny_suite("t", cost=cost), origin="t.toml")


def test_with_int8_adds_twins_on_the_onnx_measure_only():
    rows = [{"model": "m", "init": "random", "onnx_ms": 4.0, "auc_mean": 0.9, "auc_ci_low": 0.85,
             "auc_ci_high": 0.95, "int8_onnx_ms": 2.0, "int8_auc_mean": 0.89, "latency_flag": "x"},
            {"model": "n", "init": "transfer", "onnx_ms": 3.0, "auc_mean": 0.8, "int8_onnx_ms": None,
             "int8_auc_mean": None}]
    assert with_int8(rows, "macs") == rows
    out = with_int8(rows, "onnx_ms")
    assert len(out) == 3 and out[:2] == rows
    assert out[2] | {} == {**rows[0], "init": "random" + INT8_SUFFIX, "onnx_ms": 2.0, "auc_mean": 0.89,
                           "auc_ci_low": None, "auc_ci_high": None, "latency_flag": None}


@pytest.mark.slow
def test_suite_with_int8_rows_end_to_end(tmp_path):
    out = tmp_path / "out"
    suite = parse_suite(tiny_suite("int8", ("random",), seeds=(0, 1), train=TRAIN, pretrain=False, cost=INT8_COST),
                        origin="int8.toml")
    result = run_suite(suite, out, threads=1)
    assert "int8" in result.phases
    with Store(result.store_path) as store:
        runs = store.runs(kind="train")
        records = {r["run_id"]: r for r in store.variants(INT8)}
        (cost,) = store.costs()
    assert set(records) == {r["run_id"] for r in runs}
    for run in runs:
        rec = records[run["run_id"]]
        assert rec.get("error") is None and rec["calibration_images"] == 32
        # the fp32 export scores as the trained model did (ONNX parity), int8 close to it
        assert rec["fp32_auc"] == pytest.approx(run["test_auc"], abs=1e-6)
        assert rec["test_auc"] - rec["fp32_auc"] == pytest.approx(rec["auc_diff"], abs=1e-12)
        assert rec["auc_diff_low"] <= rec["auc_diff"] <= rec["auc_diff_high"]
        assert rec["passed"] == (rec["auc_diff_low"] > -suite.report.margin)
        assert rec["int8_bytes"] < rec["fp32_bytes"] / 3  # int8 weights: about a quarter
    assert cost["cost_key"].endswith("|int8") and cost["int8_onnx_ms"] > 0 and cost["int8_bytes"] > 0
    (row,) = result.summary
    assert row["int8_checked"] == 2 and row["int8_passed"] == sum(r["passed"] for r in records.values())
    assert row["int8_auc_mean"] == pytest.approx(np.mean([r["test_auc"] for r in records.values()]))
    assert row["int8_onnx_ms"] == cost["int8_onnx_ms"]

    # a rerun checks nothing again
    before = {r["run_id"]: r for r in Store(result.store_path).variants()}
    run_suite(suite, out, threads=1)
    with Store(result.store_path) as store:
        assert {r["run_id"]: r for r in store.variants()} == before

    data = report_data(result.store_path, n_boot=50)
    on_latency = [r for r in data.pareto if r["cost_measure"] == "onnx_ms"]
    assert sorted(r["init"] for r in on_latency) == ["random", "random" + INT8_SUFFIX]
    assert all("int8" not in r["init"] for r in data.pareto if r["cost_measure"] != "onnx_ms")
    md = build_report(result.store_path, tmp_path / "report", n_boot=50, studies=False)["md"].read_text()
    assert "### int8 deployment check" in md
    line = next(x for x in md.splitlines() if x.startswith(f"| cbr_small | random | {cost['onnx_ms']:.2f}"))
    assert f" | {cost['int8_onnx_ms']:.2f} | " in line  # the fp32 latency may carry a † (timed under load)
    assert f"| {row['int8_passed']}/2 |" in md


@pytest.mark.slow
def test_check_int8_reports_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError):
        check_int8(tmp_path / "gone.pt", calib=4, margin=0.01)
