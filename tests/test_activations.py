"""Activation capture on the stage view: shapes, equivalence, determinism, hygiene, probe sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transfusion.analysis.activations import (
    AdaptivePool,
    Full,
    SpatialSample,
    capture,
    probe_indices,
    probe_set,
)
from transfusion.data import ArraySplit
from transfusion.models import create_model, stages


@pytest.fixture(scope="module")
def cbr():
    torch.manual_seed(0)
    return create_model("cbr_small", num_classes=2)


@pytest.fixture(scope="module")
def images():
    return torch.randn(10, 3, 48, 48, generator=torch.Generator().manual_seed(1))


def no_hooks(model: torch.nn.Module) -> bool:
    return all(not m._forward_hooks for m in model.modules())


def test_mean_capture_matches_the_model(cbr, images):
    acts = capture(cbr, images, batch_size=4)
    assert list(acts) == ["block1", "block2", "block3", "block4", "head"]
    for s in stages(cbr):
        assert acts[s.name].shape == (10, s.out_channels)
        assert acts[s.name].dtype == torch.float32 and not acts[s.name].requires_grad
    cbr.eval()
    with torch.no_grad():
        torch.testing.assert_close(acts["block4"], cbr.forward_features(images))
        torch.testing.assert_close(acts["head"], cbr(images))
    assert no_hooks(cbr)


def test_deterministic_and_independent_of_batch_size(cbr, images):
    kw = {"stages": ["block1", "block2", "block3", "head"], "reducer": SpatialSample(5, seed=2)}
    a = capture(cbr, images, batch_size=3, **kw)
    b = capture(cbr, images, batch_size=10, **kw)
    c = capture(cbr, images, batch_size=3, **kw)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-5)
        assert torch.equal(a[name], c[name])
    assert a["block1"].shape == (10 * 5, 32)
    assert a["head"].shape == (10, 2)  # (N, C) outputs pass through
    with pytest.raises(ValueError, match=r"has only 4"):  # block4 is 2×2 at 48 px
        capture(cbr, images, stages=["block4"], reducer=SpatialSample(5))


def test_spatial_sample_rows_are_real_positions(cbr, images):
    full = capture(cbr, images, stages=["block2"], reducer="full")["block2"]  # (N, C, H, W)
    k = 7
    sampled = capture(cbr, images, stages=["block2"], reducer=SpatialSample(k, seed=0))["block2"]
    n, c, h, w = full.shape
    cols = full.reshape(n, c, h * w)
    for i in range(n):
        rows = sampled[i * k : (i + 1) * k]  # image-major
        dist = torch.cdist(rows, cols[i].T, compute_mode="donot_use_mm_for_euclid_dist")
        assert torch.all(dist.min(1).values < 1e-4)
        assert len(set(dist.argmin(1).tolist())) == k  # distinct positions


def test_full_and_pooled_reducers(cbr, images):
    acts = capture(cbr, images, stages=["block1", "block3"], reducer=Full())
    assert acts["block1"].shape == (10, 32, 23, 23) and acts["block3"].shape == (10, 128, 5, 5)
    pooled = capture(cbr, images, stages=["block1"], reducer=AdaptivePool(5))["block1"]
    torch.testing.assert_close(pooled, torch.nn.functional.adaptive_avg_pool2d(acts["block1"], 5))
    with pytest.raises(ValueError, match="pool"):
        capture(cbr, images, stages=["block3"], reducer=AdaptivePool(6))


def test_stops_after_the_last_needed_stage(cbr, images):
    calls = []
    h = cbr.block3.register_forward_hook(lambda *a: calls.append(1))
    try:
        acts = capture(cbr, images, stages=["block2", "block1"])
    finally:
        h.remove()
    assert list(acts) == ["block1", "block2"] and not calls


def test_mode_device_and_hooks_restored_also_on_error(cbr, images):
    cbr.train()
    bn = cbr.block1[1]
    before = bn.running_mean.clone()
    capture(cbr, images)
    assert cbr.training and torch.equal(bn.running_mean, before)  # ran in eval mode
    with pytest.raises(RuntimeError):
        capture(cbr, images[:, :1])  # wrong channel count fails inside the forward pass
    assert cbr.training and no_hooks(cbr)
    cbr.eval()
    capture(cbr, images)
    assert not cbr.training


def test_uint8_arrays_need_a_transform(cbr, images):
    raw = np.random.default_rng(0).integers(0, 256, size=(6, 3, 48, 48), dtype=np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        capture(cbr, raw)
    norm = lambda x: (x.float() / 255 - 0.5) / 0.25  # noqa: E731
    acts = capture(cbr, raw, transform=norm, batch_size=4)
    ref = capture(cbr, norm(torch.from_numpy(raw)))
    torch.testing.assert_close(acts["head"], ref["head"])


def test_callable_yielding_batches(cbr, images):
    acts = capture(cbr, lambda: (images[i : i + 3] for i in range(0, 10, 3)), stages=["head"])
    torch.testing.assert_close(acts["head"], capture(cbr, images, stages=["head"])["head"])


def test_bad_input(cbr, images):
    with pytest.raises(ValueError, match=r"unknown stages \['layer9'\].*block1"):
        capture(cbr, images, stages=["layer9"])
    with pytest.raises(ValueError, match=r"\(3, 48, 48\)"):
        capture(cbr, images[0])
    with pytest.raises(ValueError, match="reducer"):
        capture(cbr, images, reducer="max")
    with pytest.raises(ValueError, match="empty"):
        capture(cbr, images[:0])
    assert no_hooks(cbr)


def test_resnet18_stages():
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=2)
    x = torch.randn(4, 3, 64, 64)
    acts = capture(model, x, reducer=Full(), stages=["stem", "layer1", "layer4"])
    assert acts["stem"].shape == (4, 64, 16, 16)
    assert acts["layer1"].shape == (4, 64, 16, 16)
    assert acts["layer4"].shape == (4, 512, 2, 2)
    mean = capture(model, x, batch_size=3)
    torch.testing.assert_close(mean["layer4"], acts["layer4"].mean((2, 3)))
    assert mean["head"].shape == (4, 2)


def test_probe_set_is_fixed():
    split = ArraySplit(np.arange(50 * 3 * 2 * 2, dtype=np.uint8).reshape(50, 3, 2, 2), np.arange(50) % 2)
    a, b = probe_set(split, 20, seed=3), probe_set(split, 20, seed=3)
    assert len(a) == 20 and np.array_equal(a.images, b.images) and np.array_equal(a.targets, b.targets)
    idx = probe_indices(50, 20, seed=3)
    assert np.all(np.diff(idx) > 0) and np.array_equal(a.targets, split.targets[idx])
    assert not np.array_equal(idx, probe_indices(50, 20, seed=4))
    assert len(probe_set(split, None)) == 50
    with pytest.raises(ValueError, match="probe size 60 must lie in 1..50"):
        probe_set(split, 60)
