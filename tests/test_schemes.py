"""Training schemes: linear trains only the head (the body bit-identical), knn scores as
scikit-learn's KNeighborsClassifier on the same features, lp-ft changes the body only in its
second phase, truncate:K has exactly stages 1..K and a head (MACs two ways), checkpoints rebuild
each scheme's network, refused combinations say why, and a suite with a scheme axis."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from _tiny import tiny_suite

from transfusion.cost.counts import count_macs
from transfusion.data import load_dataset
from transfusion.models import create_model, stages
from transfusion.stats import evaluate
from transfusion.train import RunSpec, TrainConfig
from transfusion.train.inference import normalize
from transfusion.train.loop import _Run, train_run
from transfusion.train.setup import prepare
from transfusion.train.spec import normalise_spec
from transfusion.transfer import apply_scheme, check_scheme, parse_scheme
from transfusion.transfer.checkpoint import best_path, load_checkpoint, model_from_checkpoint

DATA = "synth-retina?n=200&res=32"
CFG = TrainConfig(steps=6, batch_size=16, bootstrap=0, threads=1, select="last")


def _spec(scheme: str, **train) -> RunSpec:
    return normalise_spec(RunSpec("cbr_small", DATA, scheme=scheme, train=TrainConfig(**{**CFG.__dict__, **train})))


def _body(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every tensor (parameters and BatchNorm buffers) outside the head."""
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(("fc.", "pool."))}


def test_parse_and_refused_pairs():
    assert str(parse_scheme("truncate:2")) == "truncate:2" and parse_scheme("lp-ft").trains_body
    for bad, message in [("truncate", "needs the number of stages"), ("warm", "unknown training scheme 'warm'"),
                         ("truncate:0", "K >= 1")]:
        with pytest.raises(ValueError, match=message):
            parse_scheme(bad)
    # cbr_small: 4 body stages and the head
    with pytest.raises(ValueError, match="linear already freezes every stage, so freeze:2 adds nothing"):
        check_scheme("linear", "freeze:2", 5)
    with pytest.raises(ValueError, match="lp-ft trains every stage in its second phase, which freeze:1 forbids"):
        check_scheme("lp-ft", "freeze:1", 5)
    with pytest.raises(ValueError, match="transfusion:3 copies stages past the cut of truncate:2"):
        check_scheme("truncate:2", "transfusion:3", 5)
    with pytest.raises(ValueError, match="truncate:4 must keep 1..3 of the model's 4 body stages"):
        check_scheme("truncate:4", "random", 5)
    check_scheme("truncate:2", "freeze:2", 5)  # frozen stages inside the cut: fine
    check_scheme("knn", "transfer", 5)


def test_finetune_run_ids_unchanged():
    spec = _spec("finetune")
    assert "scheme" not in spec.identity() and not {"lp_fraction", "knn_k"} & set(spec.identity()["train"])
    assert _spec("linear").run_id != spec.run_id != _spec("lp-ft", lp_fraction=0.25).run_id


def test_linear_trains_only_the_head(tmp_path):
    spec = _spec("linear")
    before = _body(prepare(spec, cache_dir=tmp_path).model)
    summary = train_run(spec, tmp_path / "run", cache_dir=tmp_path)
    after = model_from_checkpoint(load_checkpoint(best_path(tmp_path / "run")))
    assert summary.trainable_params == 256 * 2 + 2  # one linear layer on CBR-Small's 256 pooled channels
    for key, value in _body(after).items():
        assert torch.equal(value, before[key]), key  # bit-identical, BatchNorm statistics included
    head0 = prepare(spec, cache_dir=tmp_path).model.fc.weight
    assert not torch.equal(after.fc.weight, head0)


def test_lp_ft_changes_the_body_only_in_its_second_phase(tmp_path):
    spec = _spec("lp-ft", lp_fraction=0.5)
    from transfusion.core.runtime import Runtime

    run = _Run(spec, prepare(spec, cache_dir=tmp_path), Runtime(threads=1), tmp_path)
    start, head = _body(run.model), copy.deepcopy(run.model.fc.state_dict())
    assert run.probe_steps == 3
    from transfusion.transfer import train_mode

    train_mode(run.model)
    for _ in range(3):
        run.step()
    probed = _body(run.model)
    assert all(torch.equal(probed[k], start[k]) for k in start)  # phase 1: the body untouched
    assert not torch.equal(run.model.fc.weight, head["weight"])
    for _ in range(3):
        run.step()
    tuned = _body(run.model)
    assert sum(not torch.equal(tuned[k], start[k]) for k in start) > len(start) // 2  # phase 2: the body trains


def test_knn_equals_scikit_learn_on_the_same_features(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    spec = _spec("knn", knn_k=7)
    summary = train_run(spec, tmp_path / "run", cache_dir=tmp_path)
    assert summary.steps == 0 and summary.trainable_params == 0
    net = model_from_checkpoint(load_checkpoint(best_path(tmp_path / "run")))
    ds = load_dataset(spec.data, cache_dir=tmp_path)
    ck = load_checkpoint(best_path(tmp_path / "run"))

    def features(split):
        x = normalize(torch.from_numpy(np.array(split.images)), tuple(ck["mean"]), tuple(ck["std"]))
        with torch.no_grad():
            return torch.flatten(net.pool(net.body(x)), 1).numpy()

    train, test = ds["train"], ds["test"]
    sk = KNeighborsClassifier(n_neighbors=7, metric="cosine", algorithm="brute").fit(features(train), train.targets)
    expected = sk.predict_proba(features(test))[:, 1]
    ours = np.load(tmp_path / "run" / "predictions.npz")["scores"]
    np.testing.assert_allclose(ours, expected, atol=1e-5)  # the vote fractions themselves
    assert summary.test_auc == pytest.approx(evaluate(ds.task, expected, test.targets)["auc"], abs=1e-12)


def test_truncate_keeps_exactly_stages_1_to_k_and_a_head(tmp_path):
    model = create_model("cbr_small", num_classes=2)
    view = stages(model)
    kept = [p for s in view[:2] for p in s.module.parameters()]
    torch.manual_seed(0)
    net = apply_scheme(model, "truncate:2", 2)
    width = view[1].out_channels
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in kept) + width * 2 + 2
    assert [s.name for s in stages(net)] == ["block1", "block2", "head"]
    # MACs two ways: fvcore on the truncated network, and stages 1..2 run alone + pooling + the head
    x = torch.zeros(1, 3, 32, 32)
    macs, _ = count_macs(net, x)
    body = torch.nn.Sequential(*(s.module for s in view[:2])).eval()
    body_macs, _ = count_macs(body, x)
    h = body(x)
    assert macs == body_macs + h[0].numel() + width * 2  # adaptive pool: 1 per element; linear: in x out
    summary = train_run(_spec("truncate:2"), tmp_path / "run", cache_dir=tmp_path)
    assert summary.params == sum(p.numel() for p in net.parameters())
    rebuilt = model_from_checkpoint(load_checkpoint(best_path(tmp_path / "run")))
    assert type(rebuilt).__name__ == "Truncated" and [s.name for s in stages(rebuilt)] == ["block1", "block2", "head"]


@pytest.mark.slow
def test_suite_with_a_scheme_axis(tmp_path):
    from transfusion.harness.runner import run_suite
    from transfusion.harness.suite import parse_suite

    body = tiny_suite("schemes", ("random",), pretrain=False, cost="[cost]\nonnx = false\nbatch = 4\nrepeats = 2\n",
                      grid_extra='scheme = ["finetune", "linear", "knn", "truncate:2"]\n')
    result = run_suite(parse_suite(body, origin="s.toml"), tmp_path / "out", threads=1)
    rows = {r["init"]: r for r in result.summary}
    assert set(rows) == {"random", "random · linear", "random · knn", "random · truncate:2"}
    assert all(r["n_seeds"] == 1 and r["auc_mean"] is not None for r in rows.values())
    # each scheme's own network is profiled: truncation is cheaper, the linear head costs what the model does
    assert rows["random · truncate:2"]["params"] < rows["random · linear"]["params"] <= rows["random"]["params"]
    assert rows["random · truncate:2"]["macs"] < rows["random"]["macs"]
    assert {c["model"] for c in result.costs} == {"cbr_small", "cbr_small · linear", "cbr_small · knn",
                                                  "cbr_small · truncate:2"}
    from transfusion.report.build import build_report

    md = build_report(result.store_path, tmp_path / "report", n_boot=50, studies=False)["md"].read_text()
    assert "### Training schemes: which is cheapest at equal AUC?" in md
    assert "| model | regime | finetune | linear | knn | truncate:2 |" in md
    assert "Cheapest arm within δ = 1 AUC points of each model's best (by MACs, then training time)" in md
    assert "- cbr_small: random" in md


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["knn", "truncate:2"])
def test_scheme_networks_export_to_onnx_with_parity(tmp_path, scheme):
    from transfusion.deploy.export import export_run

    train_run(_spec(scheme), tmp_path / "run", cache_dir=tmp_path)
    result = export_run(tmp_path / "run", tmp_path / "onnx", repeats=2, max_images=24)
    assert result.passed, result.failures  # the kNN head's top-k search too
    assert f"training scheme: {scheme}" in result.card_md.read_text()
