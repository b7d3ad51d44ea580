"""Filter pictures and Gabor-likeness of conv weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transfusion.analysis.filters import (
    filter_grid,
    filter_mosaic,
    gabor_likeness,
    spatial_component,
)
from transfusion.transfer.gabor import gabor_bank


def test_gabor_likeness_separates_gabor_and_random_weights():
    bank = gabor_bank(16, 3, 7)
    scores = gabor_likeness(bank)
    assert scores.shape == (16,) and scores.min() > 0.98
    rand = gabor_likeness(torch.randn(16, 3, 7, 7, generator=torch.Generator().manual_seed(0)))
    assert rand.mean() < 0.5


def test_dominant_component_handles_colour_opponent_filters():
    g = gabor_bank(4, 1, 7)[:, 0].numpy()
    opponent = np.stack([g, -g, np.zeros_like(g)], 1)  # +pattern on red, −pattern on green
    assert gabor_likeness(opponent).min() > 0.98
    np.testing.assert_allclose(np.abs(spatial_component(opponent)), np.abs(g) * np.sqrt(2), atol=1e-6)
    assert np.allclose(spatial_component(opponent, reduce="mean"), 0.0)


@pytest.mark.parametrize("cin", [1, 3, 2])
def test_filter_grid_writes_png(tmp_path, cin):
    w = torch.randn(10, cin, 5, 5)
    scores = gabor_likeness(w) if cin == 3 else None
    out = filter_grid(w, tmp_path / "sub" / f"conv1_{cin}.png", title="conv1", scores=scores)
    data = out.read_bytes()
    assert out.exists() and len(data) > 500 and data[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("cin", [1, 3])
def test_filter_mosaic_tiles_each_filter_scaled_about_grey(cin):
    w = torch.randn(5, cin, 3, 3, generator=torch.Generator().manual_seed(1))
    m = filter_mosaic(w, cols=2)
    assert m.shape == (3 * 4 - 1, 2 * 4 - 1, 3) and m.min() >= 0.0 and m.max() <= 1.0
    tile = m[4:7, 4:7]  # filter 3: row 1, column 1
    want = w[3].permute(1, 2, 0).double().numpy() if cin == 3 else w[3, 0, :, :, None].double().numpy()
    np.testing.assert_allclose(tile, 0.5 + 0.5 * want / np.abs(want).max() * np.ones(3), atol=1e-6)
    assert (m[3] == 1.0).all() and (m[-3:, -3:] == 1.0).all()  # white gaps and the empty sixth tile


def test_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"\(10, 3, 5\)"):
        filter_grid(torch.zeros(10, 3, 5), tmp_path / "x.png")
    with pytest.raises(ValueError, match="scores has 3 entries for 10 filters"):
        filter_grid(torch.zeros(10, 3, 5, 5), tmp_path / "x.png", scores=np.zeros(3))
    with pytest.raises(ValueError, match=r"\(4, 3, 5, 3\)"):
        gabor_likeness(torch.zeros(4, 3, 5, 3))
