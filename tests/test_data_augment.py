"""Training augmentation on uint8 tensors."""

from __future__ import annotations

import pytest
import torch

from transfusion.data import augment


def _batch(b=16, c=3, h=32, w=32):
    return torch.randint(0, 256, (b, c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_shape_dtype_and_determinism():
    x = _batch()
    a = augment(x, torch.Generator().manual_seed(0))
    b = augment(x, torch.Generator().manual_seed(0))
    c = augment(x, torch.Generator().manual_seed(1))
    assert a.dtype == torch.uint8 and a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, _batch())  # input untouched


def test_flip_only_gives_identity_or_mirror():
    x = _batch(b=64)
    y = augment(x, torch.Generator().manual_seed(0), max_shift_frac=0.0)
    same = (y == x).flatten(1).all(1)
    mirrored = (y == x.flip(-1)).flatten(1).all(1)
    assert torch.all(same | mirrored) and same.any() and mirrored.any()


def test_shift_is_a_translation_with_edge_fill():
    x = torch.arange(32, dtype=torch.uint8).repeat(8, 1, 32, 1)  # value = column index
    y = augment(x, torch.Generator().manual_seed(3), flip=False, max_shift_frac=0.125)
    for img in y:
        row = img[0, 0].int()
        steps = row.diff()
        assert set(steps.tolist()) <= {0, 1}  # a shifted ramp, border repeated
        assert (row == row[0]).sum() + (row == row[-1]).sum() <= 2 + 2 * 4


def test_errors():
    with pytest.raises(ValueError, match="uint8"):
        augment(torch.zeros(2, 1, 8, 8), torch.Generator())
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        augment(torch.zeros(1, 8, 8, dtype=torch.uint8), torch.Generator())
