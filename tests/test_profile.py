"""Cost profiler: MAC/FLOP counts against hand formulas, ONNX parity, the row schema, the CLI."""

from __future__ import annotations

import json
import runpy
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from transfusion.cli import main as cli
from transfusion.cli.profile import resolve_models
from transfusion.cost.counts import count_flops_torch, count_macs, params
from transfusion.cost.load import OtherLoad, other_load, threads_for_load
from transfusion.cost.onnx import (
    check_onnx,
    export_onnx,
    onnx_files,
    ort_session,
    parity,
)
from transfusion.cost.profile import (
    ROW_KEYS,
    _Stages,
    judge,
    profile_model,
    profile_models,
    rows_to_frame,
)
from transfusion.cost.timing import Timing, summarize_ms, time_cpu, time_cuda
from transfusion.models import CBR, create_model, list_models

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = not torch.cuda.is_available()


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_cbr(num_classes: int = 3, in_chans: int = 2) -> CBR:
    return CBR((4, 8), 3, num_classes=num_classes, in_chans=in_chans)


# ---------------------------------------------------------------- counts


def test_resnet50_macs_at_224_px():
    model = create_model("resnet50", num_classes=1000)
    macs, unsupported = count_macs(model, torch.randn(1, 3, 224, 224))
    assert macs == pytest.approx(4.11e9, rel=0.01)
    # what fvcore cannot count is reported, not hidden
    assert unsupported == {"aten::add_": 16, "aten::max_pool2d": 1}
    assert params(model) == (25_557_032, 25_557_032)


def test_tiny_cbr_macs_match_hand_formula():
    """fvcore, one multiply-add = 1: conv H·W·k²·c_in·c_out (same padding, stride 1), eval-mode
    BatchNorm 2 per element, max-pool 0 (unsupported), global average pool 1 per element, head
    c·classes."""
    model = tiny_cbr(num_classes=3, in_chans=2)
    h = 17
    k, c_in = 3, 2
    conv = bn = 0
    for c_out in (4, 8):
        conv += h * h * k * k * c_in * c_out
        bn += 2 * h * h * c_out
        h = (h - 3) // 2 + 1  # MaxPool2d(3, stride=2), no padding
        c_in = c_out
    avgpool, head = h * h * c_in, c_in * 3
    macs, unsupported = count_macs(model, torch.randn(1, 2, 17, 17))
    assert macs == conv + bn + avgpool + head
    assert unsupported == {"aten::max_pool2d": 2}
    # FlopCounterMode counts conv and matmul only, 2 FLOPs per multiply-add: exactly
    assert count_flops_torch(model, torch.randn(1, 2, 17, 17)) == 2 * (conv + head)


@pytest.mark.parametrize(
    ("name", "res"),
    [("cbr_small", 64), ("cbr_tiny", 64), ("cbr_large_t", 64), ("cbr_large_w", 64),
     ("resnet50", 64), ("inception_v3", 80)],
)
def test_fvcore_and_flop_counter_agree(name, res):
    model = create_model(name, num_classes=2)
    x = torch.randn(1, 3, res, res)
    macs, _ = count_macs(model, x)
    flops = count_flops_torch(model, x)
    assert flops == pytest.approx(2 * macs, rel=0.02)


def test_counts_restore_mode_and_unwrap_compiled():
    model = tiny_cbr().train()
    count_macs(model, torch.randn(1, 2, 16, 16))
    count_flops_torch(model, torch.randn(1, 2, 16, 16))
    assert model.training
    wrapper = nn.Module()
    wrapper._orig_mod = model  # what torch.compile's OptimizedModule looks like
    assert count_macs(wrapper, torch.randn(1, 2, 16, 16)) == count_macs(model, torch.randn(1, 2, 16, 16))


def test_params_total_and_trainable():
    model = tiny_cbr(num_classes=3, in_chans=2)
    total = (9 * 2 * 4 + 2 * 4) + (9 * 4 * 8 + 2 * 8) + (8 * 3 + 3)
    assert params(model) == (total, total)
    for p in model.block1.parameters():
        p.requires_grad_(False)
    assert params(model) == (total, total - (9 * 2 * 4 + 2 * 4))


# ---------------------------------------------------------------- ONNX


_EFFICIENT = ("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf", "shufflenet_v2_x1_0",
              "convnext_tiny")


@pytest.mark.parametrize(("name", "res"), [pytest.param("cbr_tiny", 32, marks=pytest.mark.slow),
                                           pytest.param("resnet50", 32, marks=pytest.mark.slow),
                                           *(pytest.param(n, 32, marks=pytest.mark.slow) for n in _EFFICIENT)])
def test_onnx_parity(name, res, tmp_path):
    model = create_model(name, num_classes=2).eval()
    path = export_onnx(model, torch.randn(1, 3, res, res), tmp_path / "model.onnx")
    assert [p.name for p in onnx_files(path)] == ["model.onnx", "model.onnx.data"]
    check_onnx(path)
    session = ort_session(path, threads=1)
    assert session.get_providers()[0] == "CPUExecutionProvider"
    x = torch.randn(3, 3, res, res)  # batch 3: the batch is dynamic
    err = parity(model, session, x)
    assert err["max_rel_err"] < 1e-4
    # the errors are those of the two outputs on the same images, taken against the output's scale
    with torch.no_grad():
        ref = model(x).double().numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0].astype(np.float64)
    assert got.shape == ref.shape == (3, 2)
    assert err["max_abs_err"] == pytest.approx(np.abs(ref - got).max(), rel=1e-6, abs=1e-12)
    assert err["max_rel_err"] == pytest.approx(err["max_abs_err"] / np.abs(ref).max(), rel=1e-6, abs=1e-15)


class _FakeSession:
    """Stands in for an ONNX Runtime session: returns the model's output times (1 + 1e-7)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def get_inputs(self):
        return [type("Input", (), {"name": "input"})()]

    def run(self, _names, feed):
        with torch.no_grad():
            out = self.model(torch.from_numpy(feed["input"])).double().numpy()
        return [out * (1 + 1e-7)]


def test_parity_is_relative_to_output_scale():
    """An untrained Inception-v3 in eval mode emits ~1e12: the error is taken against the scale
    of the output, so a 1e-7 relative perturbation reads 1e-7 whatever the magnitude."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    with torch.no_grad():
        model[1].weight.mul_(1e12)
        model[1].bias.zero_()
    err = parity(model, _FakeSession(model), torch.randn(4, 3, 2, 2))
    assert err["max_abs_err"] > 1e3
    assert err["max_rel_err"] == pytest.approx(1e-7, rel=0.05)


def test_check_onnx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        check_onnx(tmp_path / "absent.onnx")


# ---------------------------------------------------------------- rows


def _check_schema(row: dict) -> None:
    assert tuple(row) == ROW_KEYS
    for key in ("res", "batch", "num_classes", "in_chans", "params", "trainable_params",
                "macs", "flops_torch"):
        assert isinstance(row[key], int), key
    for key in ("torch_ms", "torch_img_s"):
        assert isinstance(row[key], float) and row[key] > 0, key
    assert isinstance(row["model"], str) and isinstance(row["device"], str)
    assert isinstance(row["unsupported_ops"], dict)
    assert row["error"] is None


def test_profile_row_schema_with_onnx():
    row = profile_model("tiny", res=24, batch=2, in_chans=2, num_classes=3, repeats=2,
                        threads=1, model=tiny_cbr())
    _check_schema(row)
    assert row["device"].startswith("cpu (") and "CPUExecutionProvider" in row["device"]
    assert row["gpu_ms"] is None and row["gpu_amp_ms"] is None  # not measured on CPU
    for key in ("onnx_ms", "onnx_max_abs_err", "onnx_max_rel_err"):
        assert isinstance(row[key], float), key
    assert row["onnx_max_rel_err"] < 1e-4
    assert row["unsupported_ops"] == {"aten::max_pool2d": 2}
    json.loads(json.dumps(row))


def test_profile_without_onnx_and_model_state_kept():
    model = tiny_cbr().train()
    row = profile_model("tiny", res=24, batch=2, in_chans=2, onnx=False, repeats=1, model=model)
    _check_schema(row)
    for key in ("onnx_ms", "onnx_max_abs_err", "onnx_max_rel_err", "gpu_ms", "gpu_amp_ms"):
        assert row[key] is None, key
    assert model.training


def test_bad_input_raises_before_compute():
    with pytest.raises(ValueError, match="unknown model 'nope'.*resnet50"):
        profile_model("nope", res=32)
    with pytest.raises(ValueError, match="75 px"):
        profile_model("inception_v3", res=64)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        profile_model("cbr_tiny", res=32, batch=0)


@pytest.mark.skipif(not NO_CUDA, reason="CUDA present")
def test_cuda_requested_without_cuda():
    with pytest.raises(ValueError, match="no CUDA device"):
        profile_model("cbr_tiny", res=32, device="cuda")


class _Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        raise RuntimeError("boom")


def test_failures_keep_their_rows():
    row = profile_model("broken", res=8, batch=2, onnx=False, repeats=1, model=_Broken())
    assert tuple(row) == ROW_KEYS
    assert row["params"] == 8  # what could be measured is kept
    assert row["macs"] is None and row["torch_ms"] is None
    assert "macs (fvcore): RuntimeError: boom" in row["error"]
    assert "torch_ms" in row["error"]

    seen = []
    rows = profile_models(["nope", "cbr_tiny"], res=32, batch=2, onnx=False, repeats=1,
                          on_row=seen.append)
    assert [r["model"] for r in rows] == ["nope", "cbr_tiny"] and seen == rows
    assert "unknown model" in rows[0]["error"] and tuple(rows[0]) == ROW_KEYS
    assert rows[1]["error"] is None and rows[1]["macs"] > 0


def test_rows_to_frame_columns_fixed():
    frame = rows_to_frame([{"model": "x", "unsupported_ops": {"aten::add_": 2}}])
    assert list(frame.columns) == list(ROW_KEYS)
    assert json.loads(frame.loc[0, "unsupported_ops"]) == {"aten::add_": 2}


# ---------------------------------------------------------------- timing


def test_time_cpu_median_and_spread():
    t = time_cpu(lambda: time.sleep(0.003), repeats=4, warmup=1)
    assert 2.5 < t.median_ms < 60
    assert t.runs * t.block >= 4  # at least `repeats` calls were timed
    assert time_cpu(lambda: None, repeats=4, warmup=1).block > 1  # very short calls are timed in blocks
    assert t.img_s(8) == pytest.approx(8 / (t.median_ms / 1e3))
    s = summarize_ms([1.0, 2.0, 3.0, 4.0, 100.0])
    assert (s.median_ms, s.iqr_ms, s.runs) == (3.0, 2.0, 5)
    assert s.p95_ms == pytest.approx(80.8) and s.tail_ratio == pytest.approx(80.8 / 3)  # numpy's linear p95
    assert t.p95_ms >= t.median_ms
    with pytest.raises(ValueError):
        time_cpu(lambda: None, repeats=0)


def test_time_cpu_budget_caps_slow_calls():
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.06)

    t = time_cpu(slow, repeats=50, warmup=1, budget_s=0.2)
    # one warm-up, then as many 60-ms calls as fit in 0.2 s (3), timed one by one: not 50
    assert len(calls) == 4 and t.runs == 3 and t.block == 1
    assert 55 < t.median_ms < 600 and t.p95_ms >= t.median_ms
    calls.clear()
    assert time_cpu(slow, repeats=50, warmup=1, budget_s=0.01).runs == 1 and len(calls) == 2  # at least one


def test_other_load_counts_other_processes_not_this_one():
    import subprocess
    import sys

    with OtherLoad() as mine:  # this process busy: not "other" load
        end = time.perf_counter() + 0.4
        while time.perf_counter() < end:
            pass
    if mine.cores is None:
        pytest.skip("no /proc/stat: the load cannot be measured on this platform")
    assert mine.cores < 0.5 and mine.seconds >= 0.4
    burner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.3)  # the interpreter has started and spins
        busy = other_load(0.6)
    finally:
        burner.kill()
        burner.wait()
    assert busy is not None and busy > 0.6  # one spinning process: about one core


def test_threads_for_load():
    assert threads_for_load(2, 0.0, 2) == 2
    assert threads_for_load(2, 1.0, 2) == 1  # one core taken by another process: one thread
    assert threads_for_load(2, 0.4, 2) == 2  # rounds to the nearest whole core
    assert threads_for_load(4, 3.9, 2) == 1  # never below one
    assert threads_for_load(3, None, 2) == 3  # unknown load: as asked


def test_judge_and_remeasure():
    steady, unsteady = Timing(10.0, 0.5, 10, p95_ms=11.0), Timing(10.0, 0.5, 10, p95_ms=30.0)
    assert judge(steady, 0.1) is None and judge(steady, None) is None
    assert judge(steady, 1.0) == "1.0 cores busy with other work"
    assert judge(unsteady, 0.0) == "unsteady, p95 3.0× the median"

    stages = _Stages()
    results = iter([unsteady, steady])
    assert stages.timed("torch_ms", lambda: next(results)) is steady  # measured again, the doubt gone
    assert stages.flags == []
    assert stages.timed("onnx_ms", lambda: unsteady) is unsteady
    assert stages.flags == ["onnx_ms: unsteady, p95 3.0× the median (measured twice)"]


def test_profile_row_records_threads_load_tail_and_stage_seconds():
    row = profile_model("tiny", res=24, batch=2, in_chans=2, repeats=3, model=tiny_cbr())
    assert row["threads"] >= 1 and row["torch_p95_ms"] >= row["torch_ms"] and row["onnx_p95_ms"] >= row["onnx_ms"]
    assert row["load"] is None or row["load"] >= 0
    assert list(row["stage_seconds"]) == ["macs (fvcore)", "flops_torch", "onnx", "torch_ms", "torch_img_s"]
    assert all(v >= 0 for v in row["stage_seconds"].values())
    assert row["latency_flag"] is None or "(measured twice)" in row["latency_flag"]
    assert profile_model("tiny", res=24, batch=2, in_chans=2, repeats=1, threads=1, onnx=False,
                         model=tiny_cbr())["threads"] == 1  # asked for: kept


@pytest.mark.skipif(not NO_CUDA, reason="CUDA present")
def test_time_cuda_needs_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        time_cuda(lambda: None)


# ---------------------------------------------------------------- CLI


def test_cli_json_stdout_and_csv(tmp_path, capsys):
    csv = tmp_path / "out" / "profile.csv"
    rc = cli.main(["profile", "cbr_tiny", "--res", "32", "--batch", "2", "--repeats", "1",
                   "--threads", "1", "--no-onnx", "--json", "-", "--csv", str(csv)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    rows = json.loads(out.out)
    assert len(rows) == 1
    _check_schema(rows[0])
    assert rows[0]["onnx_ms"] is None and rows[0]["gpu_ms"] is None
    assert "cbr_tiny" in out.err  # the table goes to stderr when JSON takes stdout
    frame = pd.read_csv(csv)
    assert list(frame.columns) == list(ROW_KEYS)
    assert frame.loc[0, "macs"] == rows[0]["macs"] and np.isnan(frame.loc[0, "onnx_ms"])


def test_cli_json_file_and_table(tmp_path, capsys):
    path = tmp_path / "p.json"
    rc = cli.main(["profile", "cbr_small", "--res", "32", "--batch", "2", "--repeats", "1",
                   "--no-onnx", "--json", str(path)])
    out = capsys.readouterr()
    assert rc == 0
    assert "GMACs" in out.out and "cbr_small" in out.out
    assert json.loads(path.read_text())[0]["model"] == "cbr_small"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "known models: cbr_large_t"),
        (["inception_v3", "--res", "64"], "75 px"),
        (["cbr_tiny", "--batch", "0"], "--batch must be >= 1"),
        pytest.param(["cbr_tiny", "--device", "cuda"], "no CUDA device",
                     marks=pytest.mark.skipif(not NO_CUDA, reason="CUDA present")),
    ],
)
def test_cli_bad_input_exits_2(argv, message, capsys):
    assert cli.main(["profile", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_help_explains_macs(capsys):
    with pytest.raises(SystemExit):
        cli.main(["profile", "--help"])
    text = capsys.readouterr().out
    assert "one multiply-add" in text and "fvcore" in text and "BatchNorm" in text


def test_resolve_all():
    assert resolve_models(["all"]) == list_models()
    assert resolve_models(["resnet50", "all"])[0] == "resnet50"
    assert len(resolve_models(["resnet50", "resnet50"])) == 1


# ---------------------------------------------------------------- GPU check script


@pytest.mark.skipif(not NO_CUDA, reason="on a GPU machine the script really runs (minutes)")
def test_gpu_check_script_skips_without_cuda(tmp_path, capsys):
    script = runpy.run_path(str(ROOT / "scripts" / "gpu_check.py"), run_name="gpu_check")
    out = tmp_path / "gpu.json"
    assert script["main"]([str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["rows"] == [] and "no CUDA" in payload["skipped"]
    assert payload["env"]["torch"] == torch.__version__


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_stage_costs_sum_to_the_whole_and_match_each_stage_run_alone(name):
    from transfusion.cost.counts import stage_costs
    from transfusion.models import stages

    model = create_model(name, num_classes=2).eval()
    x = torch.randn(1, 3, 64, 64)
    rows = stage_costs(model, x)
    view = stages(model)
    assert [r["stage"] for r in rows] == [s.name for s in view] + ["(outside stages)"]
    assert sum(r["params"] for r in rows) == params(model)[0]
    assert sum(r["macs"] for r in rows) == count_macs(model, x)[0]
    # each body stage's MACs again: its modules run alone, in order, on the input the stage receives
    inputs = {}
    hooks = [model.get_submodule(s.prefixes[0]).register_forward_pre_hook(
        lambda m, a, s=s: inputs.__setitem__(s.name, a[0])) for s in view[:-1]]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    for s, r in zip(view[:-1], rows):
        assert count_macs(s.module, inputs[s.name])[0] == r["macs"], s.name


def test_profile_stages_cli(tmp_path, capsys):
    from transfusion.cli.main import main

    assert main(["profile", "cbr_small", "--res", "64", "--stages", "--csv", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "cbr_small @ 64 px" in out and "block4" in out and "head" in out
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "model,res,stage,params,macs" and len(lines) == 1 + 6
