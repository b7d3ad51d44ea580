"""Init regimes: each regime's exact effect on tensors, and the weight sources."""

from __future__ import annotations

import pytest
import torch
from _zoo import check_transfusion_exact, train_a_little
from _zoo import fresh as _fresh
from _zoo import source as _source

from transfusion.transfer import (
    CHECKPOINT_FORMAT,
    SourceUnavailable,
    apply_init,
    imagenet_file,
    load_imagenet,
    load_source,
    parse_regime,
)


def test_parse_regime_forms():
    assert str(parse_regime("transfusion:2")) == "transfusion:2"
    assert parse_regime("freeze:1").k == 1
    with pytest.raises(ValueError, match="unknown init regime 'imagenet'.*random, transfer"):
        parse_regime("imagenet")
    with pytest.raises(ValueError, match="needs a stage count"):
        parse_regime("transfusion")


def test_random_keeps_default_init():
    model = _fresh("cbr_small")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = apply_init(model, "random")
    assert set(report.counts()) == {"kept"}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ["cbr_small", "resnet18"])
def test_transfer_copies_everything_but_a_mismatched_head(name):
    src = _source(name, num_classes=10)
    model = _fresh(name, num_classes=2)
    fresh_head = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("fc.")}
    report = apply_init(model, "transfer", source=src)
    for k, v in model.state_dict().items():
        if k.startswith("fc."):
            assert torch.equal(v, fresh_head[k]) and report.actions[k] == "kept"
        else:
            assert torch.equal(v, src[k]) and report.actions[k] == "copied", k
    assert any("head: new" in n for n in report.notes)


def test_transfer_with_matching_head_copies_head_too():
    src = _source("cbr_tiny", num_classes=2)
    model = _fresh("cbr_tiny", num_classes=2)
    apply_init(model, "transfer", source=src)
    assert all(torch.equal(v, src[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ["cbr_small", "cbr_large_t", "resnet18",
                                  *(pytest.param(n, marks=pytest.mark.slow) for n in ("inception_v3", "densenet121")),
                                  "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf",
                                  "shufflenet_v2_x1_0", pytest.param("convnext_tiny", marks=pytest.mark.slow)])
def test_transfusion_boundary_exact_for_every_k(name):
    check_transfusion_exact(name)


def test_transfusion_zero_is_random_and_all_is_transfer():
    src = _source("cbr_small", num_classes=10)
    a, b = _fresh("cbr_small"), _fresh("cbr_small")
    apply_init(a, "transfusion:0", source=src)
    apply_init(b, "random")
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    c, d = _fresh("cbr_small"), _fresh("cbr_small")
    apply_init(c, "transfusion:4", source=src)
    apply_init(d, "transfer", source=src)
    assert all(torch.equal(v, d.state_dict()[k]) for k, v in c.state_dict().items())


def test_k_out_of_range_and_missing_source():
    with pytest.raises(ValueError, match="K must be between 0 and 4 for cbr_small"):
        apply_init(_fresh("cbr_small"), "transfusion:5", source=_source("cbr_small"))
    with pytest.raises(ValueError, match="needs source weights"):
        apply_init(_fresh("cbr_small"), "transfer")


def test_source_of_wrong_architecture_is_reported_per_tensor():
    with pytest.raises(ValueError, match=r"source does not fit .*block1\.0\.weight: source \(64, 3, 5, 5\) vs model \(32, 3, 7, 7\)"):
        apply_init(_fresh("cbr_small"), "transfer", source=_source("cbr_tiny"))
    with pytest.raises(ValueError, match="missing in source"):
        apply_init(_fresh("resnet18"), "transfer", source=_source("cbr_small"))


def test_meanvar_moments_match_and_features_destroyed():
    src = _source("cbr_large_w", num_classes=10)
    model = _fresh("cbr_large_w")
    report = apply_init(model, "meanvar", source=src, seed=3)
    sd = model.state_dict()
    for key in ["block2.0.weight", "block3.0.weight", "block4.0.weight", "block2.1.weight"]:
        w, s = sd[key].double(), src[key].double()
        assert report.actions[key] == "drawn"
        n = w.numel()
        # sample moments within a few standard errors of the source's
        assert abs(w.mean() - s.mean()) < 5 * s.std() / n**0.5
        assert abs(w.std() / s.std() - 1) < 5 / (2 * n) ** 0.5 + 1e-3
        # drawn independently of the source values
        corr = torch.corrcoef(torch.stack([w.flatten(), s.flatten()]))[0, 1]
        assert abs(corr) < 5 / n**0.5
    assert torch.equal(sd["block1.1.running_mean"], torch.zeros(64))
    assert torch.equal(sd["block1.1.running_var"], torch.ones(64))
    assert report.actions["block1.1.running_var"] == "reset"
    assert report.actions["fc.weight"] == "kept"  # head shape differs → new head


def test_meanvar_is_deterministic_by_seed():
    src = _source("cbr_small")
    a, b, c = _fresh("cbr_small"), _fresh("cbr_small"), _fresh("cbr_small")
    apply_init(a, "meanvar", source=src, seed=1)
    apply_init(b, "meanvar", source=src, seed=1)
    apply_init(c, "meanvar", source=src, seed=2)
    assert torch.equal(a.block3[0].weight, b.block3[0].weight)
    assert not torch.equal(a.block3[0].weight, c.block3[0].weight)


def test_freeze_leaves_frozen_stages_unchanged_after_optimizer_steps():
    src = _source("cbr_small", num_classes=2)
    model = _fresh("cbr_small")
    report = apply_init(model, "freeze:2", source=src)
    assert report.frozen_stages == ["block1", "block2"]
    frozen_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("block1", "block2"))}
    other_before = model.block3[0].weight.clone()
    train_a_little(model, 64, 3, weight_decay=0.1)
    after = model.state_dict()
    # parameters and BatchNorm running statistics of frozen stages are untouched
    assert all(torch.equal(after[k], v) for k, v in frozen_before.items())
    assert not torch.equal(model.block3[0].weight, other_before)
    assert not model.block1.training and model.block3.training


def test_gabor_fills_first_conv_at_default_scale():
    model = _fresh("cbr_small")
    report = apply_init(model, "gabor", seed=0)
    w = model.block1[0].weight
    assert report.actions["block1.0.weight"] == "gabor"
    assert report.counts()["gabor"] == 1
    expected_std = (2.0 / (32 * 7 * 7)) ** 0.5
    assert abs(w.std().item() / expected_std - 1) < 1e-3
    other = _fresh("cbr_small")
    assert torch.equal(model.block2[0].weight, other.block2[0].weight)


def test_slim_copies_lower_stages_from_resnet50():
    src = _source("resnet50", num_classes=1000)
    model = _fresh("slim_resnet50")
    report = apply_init(model, "slim", source=src)
    for key, v in model.state_dict().items():
        if key.startswith(("conv1", "bn1", "layer1", "layer2")):
            assert torch.equal(v, src[key]) and report.actions[key] == "copied"
        else:
            assert report.actions[key] == "kept"
    with pytest.raises(ValueError, match="applies to model slim_resnet50"):
        apply_init(_fresh("resnet50"), "slim", source=src)


def test_one_channel_task_sums_rgb_first_conv():
    src = _source("resnet18", num_classes=10, in_chans=3)
    model = _fresh("resnet18", in_chans=1)
    report = apply_init(model, "transfer", source=src)
    assert torch.allclose(model.conv1.weight, src["conv1.weight"].sum(1, keepdim=True))
    assert any("summed over RGB" in n for n in report.notes)
    # equivalence: grey image replicated to RGB through the source conv == summed conv on grey
    grey = torch.rand(1, 1, 16, 16)
    full = torch.nn.functional.conv2d(grey.repeat(1, 3, 1, 1), src["conv1.weight"], stride=2, padding=3)
    summed = torch.nn.functional.conv2d(grey, model.conv1.weight, stride=2, padding=3)
    assert torch.allclose(full, summed, atol=1e-5)


def test_imagenet_offline_error_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("TRANSFUSION_OFFLINE", "1")
    with pytest.raises(SourceUnavailable, match=r"resnet50-0676ba61\.pth.*checkpoints.*--source file:"):
        load_imagenet("resnet50")
    with pytest.raises(ValueError, match="no published ImageNet weights.*transfusion pretrain cbr_small"):
        load_source("imagenet", "cbr_small")
    with pytest.raises(ValueError, match="no published ImageNet weights"):
        load_source("imagenet", "slim_resnet50")


def test_imagenet_loads_from_torchvision_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("TRANSFUSION_OFFLINE", "1")
    filename, path = imagenet_file("resnet18")
    assert path.parent == tmp_path / "hub" / "checkpoints"
    path.parent.mkdir(parents=True)
    sd = _source("resnet18", num_classes=1000)
    torch.save(sd, path)
    weights = load_imagenet("resnet18")
    assert weights.arch == "resnet18" and weights.mean == (0.485, 0.456, 0.406)
    assert torch.equal(weights.state_dict["conv1.weight"], sd["conv1.weight"])


def test_file_source_plain_and_checkpoint(tmp_path):
    sd = _source("cbr_small")
    torch.save(sd, tmp_path / "plain.pt")
    got = load_source(f"file:{tmp_path / 'plain.pt'}", "cbr_small")
    assert torch.equal(got.state_dict["block1.0.weight"], sd["block1.0.weight"])
    torch.save({"format": CHECKPOINT_FORMAT, "arch": "cbr_small", "state_dict": sd, "mean": [0.5] * 3,
                "std": [0.25] * 3}, tmp_path / "ck.pt")
    got = load_source(str(tmp_path / "ck.pt"), "cbr_small")
    assert got.mean == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="holds a cbr_small model, but cbr_tiny weights are needed"):
        load_source(f"file:{tmp_path / 'ck.pt'}", "cbr_tiny")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_source(f"file:{tmp_path / 'nope.pt'}", "cbr_small")
