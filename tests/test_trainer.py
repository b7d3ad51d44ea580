"""The trainer: learning, determinism, resume after a kill, divergence, CLI summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transfusion.cli.main import main
from transfusion.data import load_dataset
from transfusion.train import RunSummary, TrainingDiverged, normalise_spec, train_run
from transfusion.train.spec import RunSpec, TrainConfig

DATA = "synth-retina?n=480&res=32"


@pytest.fixture(scope="module")
def retina(data_cache):
    return load_dataset(DATA, cache_dir=data_cache)


def _spec(**kw) -> RunSpec:
    train = TrainConfig(**{"steps": 12, "batch_size": 16, "eval_every": 4, "threads": 1, "bootstrap": 200,
                           **kw.pop("train", {})})
    return RunSpec(model=kw.pop("model", "cbr_small"), data=DATA, train=train, **kw)


def _strip(curve):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in curve]


@pytest.mark.slow
def test_short_run_learns(retina, tmp_path):
    spec = _spec(train={"steps": None, "epochs": 6, "eval_every": None, "lr": 3e-3})
    s = train_run(spec, tmp_path / "run", dataset=retina)
    assert s.status == "done"
    assert s.test_auc > 0.65, s.test_auc
    assert RunSummary.from_dict(json.loads((tmp_path / "run" / "summary.json").read_text())) == s
    lo, hi = s.test_auc_ci
    assert lo <= s.test_auc <= hi
    assert s.n_train == len(retina["train"])
    curve = (tmp_path / "run" / "curve.csv").read_text().splitlines()
    assert curve[0] == "step,epoch,train_loss,val_auc,val_acc,seconds"
    assert len(curve) == 1 + 6
    for name in ("best.pt", "last.pt", "summary.json", "predictions.npz"):
        assert (tmp_path / "run" / name).exists()
    pred = np.load(tmp_path / "run" / "predictions.npz")
    assert pred["scores"].shape == (len(retina["test"]),)


@pytest.mark.slow
def test_same_seed_same_metrics(retina, tmp_path):
    a = train_run(_spec(), tmp_path / "a", dataset=retina)
    b = train_run(_spec(), tmp_path / "b", dataset=retina)
    assert a.test_auc == b.test_auc and a.test_acc == b.test_acc
    ca = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert ca["run_id"] == b.run_id and ca["format"] == "transfusion-run-summary/2"
    sa = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["state_dict"]
    sb = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = train_run(_spec(seed=1), tmp_path / "c", dataset=retina)
    assert c.run_id != a.run_id


class _Killed(Exception):
    pass


@pytest.mark.slow
def test_resume_after_kill_ends_as_if_never_stopped(retina, tmp_path):
    spec = _spec(train={"steps": 16})
    whole = train_run(spec, tmp_path / "whole", dataset=retina)

    evals = []

    def kill_after_second_eval(row):
        evals.append(row)
        if len(evals) == 2:
            raise _Killed

    with pytest.raises(_Killed):
        train_run(spec, tmp_path / "resumed", dataset=retina, on_eval=kill_after_second_eval)
    mid = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert mid["step"] == 8 and "optimizer" in mid and "scheduler" in mid  # enough to resume from
    resumed = train_run(spec, tmp_path / "resumed", dataset=retina)
    for key in ("test_auc", "test_acc", "test_auprc", "best_step", "val_auc_best"):
        assert getattr(resumed, key) == getattr(whole, key), key
    w = json.loads((tmp_path / "whole" / "summary.json").read_text())
    r = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert w["steps"] == r["steps"] == 16
    wl = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    rl = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert all(torch.equal(wl["state_dict"][k], rl["state_dict"][k]) for k in wl["state_dict"])
    assert _strip(wl["trainer"]["curve"]) == _strip(rl["trainer"]["curve"])
    # finished checkpoints hold weights only; re-running a finished run trains no further step
    assert "optimizer" not in wl and "optimizer" not in torch.load(tmp_path / "whole" / "best.pt", weights_only=True)
    again = train_run(spec, tmp_path / "whole", dataset=retina)
    assert again.test_auc == whole.test_auc and _strip(again.curve) == _strip(whole.curve)


@pytest.mark.slow
def test_divergence_is_a_failure_not_a_nan(retina, tmp_path):
    spec = _spec(train={"optimizer": "sgd", "lr": 1e12, "warmup": 0.0})
    with pytest.raises(TrainingDiverged, match=r"diverged at step \d+"):
        train_run(spec, tmp_path / "nan", dataset=retina)


@pytest.mark.slow
def test_pretrain_then_transfer_from_checkpoint(retina, tmp_path):
    ck = tmp_path / "src.pt"
    rc = main(["pretrain", "cbr_small", "--data", "synth-natural?n=320&res=32", "--steps", "6", "--batch", "16",
               "--threads", "1", "--out", str(ck)])
    assert rc == 0 and ck.exists()
    spec = _spec(init="transfusion:2", source=f"file:{ck}")
    s = train_run(spec, tmp_path / "tr", dataset=retina)
    assert s.init_report["counts"]["copied"] == 12  # 2 blocks × (conv w, BN w, b, mean, var, count)
    assert s.source_origin.startswith("file:")


def test_regime_errors_before_training(retina, tmp_path):
    with pytest.raises(ValueError, match="unknown init regime 'warm'"):
        train_run(_spec(init="warm"), tmp_path / "x", dataset=retina)
    with pytest.raises(ValueError, match="K must be between 0 and 4"):
        train_run(_spec(init="transfusion:9", source="file:/nonexistent.pt"), tmp_path / "x", dataset=retina)
    with pytest.raises(ValueError, match="needs --source"):
        train_run(_spec(init="transfer"), tmp_path / "x", dataset=retina)
    with pytest.raises(ValueError, match="no published ImageNet weights"):
        train_run(_spec(init="transfer", source="imagenet"), tmp_path / "x", dataset=retina)


def test_spec_normalisation_gives_one_id_for_two_spellings():
    a = normalise_spec(RunSpec(model="cbr_small", data="synth-retina?res=32&n=480"))
    b = normalise_spec(RunSpec(model="cbr_small", data="synth-retina?n=480", res=32))
    assert a.run_id == b.run_id
    c = normalise_spec(RunSpec(model="cbr_small", data="synth-retina?n=480", res=32,
                               train=TrainConfig(threads=1, device="cpu")))
    assert c.run_id == a.run_id  # runtime-only options do not change the experiment


@pytest.mark.slow
def test_cli_train_json(tmp_path):
    out = tmp_path / "cli"
    rc = main(["train", "cbr_small", "--data", DATA, "--init", "random", "--steps", "4", "--batch", "16",
               "--threads", "1", "--target-auc", "0.55", "--out", str(out), "--json", str(tmp_path / "s.json")])
    assert rc == 0
    s = json.loads((tmp_path / "s.json").read_text())
    for key in ("model", "init", "data", "seed", "test_auc", "test_auc_ci", "test_auprc", "test_acc",
                "steps_to_target", "train_seconds", "status"):
        assert key in s
    assert s["status"] == "done" and s["model"] == "cbr_small"


def test_cli_bad_input_exit_2(tmp_path, capsys):
    assert main(["train", "cbr_huge", "--data", DATA, "--out", str(tmp_path)]) == 2
    assert "unknown model 'cbr_huge'" in capsys.readouterr().err
    assert main(["train", "inception_v3", "--data", DATA, "--out", str(tmp_path)]) == 2
    assert "at least 75 px" in capsys.readouterr().err


@pytest.mark.slow
def test_select_last_scores_the_final_weights(retina, tmp_path):
    best = train_run(_spec(), tmp_path / "best", dataset=retina)
    last = train_run(_spec(train={"select": "last"}), tmp_path / "last", dataset=retina)
    assert last.best_step == last.steps == 12 and last.val_auc_best == last.curve[-1]["val_auc"]
    final = torch.load(tmp_path / "last" / "last.pt", weights_only=True)["state_dict"]
    chosen = torch.load(tmp_path / "last" / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(final[k], chosen[k]) for k in final)
    # the same training, so the same curve; only the scored checkpoint may differ
    assert _strip(last.curve) == _strip(best.curve)
    if best.best_step == 12:
        assert last.test_auc == best.test_auc


def test_a_later_option_at_its_default_keeps_earlier_run_ids():
    spec = normalise_spec(RunSpec(model="cbr_small", data="synth-retina?n=480&res=32"))
    assert "select" not in spec.identity()["train"]  # ids computed before the option existed stay valid
    other = spec.with_(train=TrainConfig(select="last"))
    assert other.run_id != spec.run_id and other.identity()["train"]["select"] == "last"
    with pytest.raises(ValueError, match="select must be one of"):
        TrainConfig(select="median")
