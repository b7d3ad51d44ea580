"""Filter pictures and Gabor-likeness of conv weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transfusion.analysis.filters import filter_grid, gabor_likeness, spatial_component
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


def test_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"\(10, 3, 5\)"):
        filter_grid(torch.zeros(10, 3, 5), tmp_path / "x.png")
    with pytest.raises(ValueError, match="scores has 3 entries for 10 filters"):
        filter_grid(torch.zeros(10, 3, 5, 5), tmp_path / "x.png", scores=np.zeros(3))
    with pytest.raises(ValueError, match=r"\(4, 3, 5, 3\)"):
        gabor_likeness(torch.zeros(4, 3, 5, 3))
