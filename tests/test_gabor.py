"""Gabor filter bank (the `gabor` init regime) and Gabor fits (the Gabor-likeness score)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from transfusion.transfer.gabor import (
    gabor_bank,
    gabor_fit,
    gabor_fit_many,
    gabor_kernel,
    gabor_params,
)


def angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between orientations modulo π."""
    d = np.abs(a - b) % math.pi
    return np.minimum(d, math.pi - d)


def fft_peak(f2d: np.ndarray, pad: int = 256) -> tuple[float, float]:
    """Dominant orientation (mod π, from +x towards +y) and frequency (cycles/px) of a filter."""
    spec = np.abs(np.fft.fft2(f2d, s=(pad, pad)))
    r, c = np.unravel_index(spec.argmax(), spec.shape)
    fy, fx = np.fft.fftfreq(pad)[r], np.fft.fftfreq(pad)[c]
    return math.atan2(fy, fx) % math.pi, math.hypot(fx, fy)


def test_bank_shape_zero_mean_unit_norm_and_deterministic():
    bank = gabor_bank(64, 3, 7)
    assert bank.shape == (64, 3, 7, 7) and bank.dtype == torch.float32
    torch.testing.assert_close(bank.mean((2, 3)), torch.zeros(64, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(bank.flatten(1).norm(dim=1), torch.ones(64))
    assert torch.equal(bank, gabor_bank(64, 3, 7))
    assert torch.equal(bank[:, 0], bank[:, 2])  # luminance: the same filter on every channel
    assert len({tuple(f.flatten().tolist()) for f in bank[:, 0]}) == 64  # all distinct


def test_bank_grid_layout():
    p = gabor_params(64, 3, 7)
    assert len(np.unique(p.theta)) == 8 and len(np.unique(p.freq)) == 4
    assert set(np.round(p.phase, 6)) == {0.0, round(math.pi / 2, 6)}
    assert np.all(np.diff(p.freq) >= 0)  # frequency-major
    assert p.freq.max() < 0.5 and np.all(p.sigma <= 1.5)
    odd = gabor_params(50, 1, 5, seed=1)
    assert len(odd.theta) == 50
    assert not np.array_equal(odd.theta, gabor_params(50, 1, 5, seed=2).theta)  # seed picks the subset


@pytest.mark.parametrize("out,k", [(64, 7), (32, 11), (24, 5)])
def test_bank_orientations_and_frequencies_match_the_spectrum(out, k):
    bank, p = gabor_bank(out, 1, k), gabor_params(out, 1, k)
    meas = np.array([fft_peak(f[0].numpy()) for f in bank])
    n_theta = len(np.unique(p.theta))
    err = angle_diff(meas[:, 0], p.theta)
    assert err.max() < 0.25 * math.pi / n_theta, err.max()  # well within half the grid spacing
    if k >= 7:  # at 5×5 (σ = 1 px) the envelope's bandwidth swamps the carrier frequency
        high = p.freq >= 0.25  # low frequencies are pulled by the window and the zero-mean step
        np.testing.assert_allclose(meas[high, 1], p.freq[high], rtol=0.15)


def test_per_channel_bank():
    bank = gabor_bank(12, 3, 7, chroma="per_channel")
    p = gabor_params(12, 3, 7, chroma="per_channel")
    for j in range(12):
        energy = bank[j].square().sum((1, 2))
        assert int(energy.argmax()) == p.channel[j] and float(energy.sum() - energy.max()) == 0.0


def test_bank_bad_arguments():
    with pytest.raises(ValueError, match="kernel_size=2"):
        gabor_bank(8, 3, 2)
    with pytest.raises(ValueError, match="chroma"):
        gabor_bank(8, 3, 7, chroma="opponent")  # type: ignore[arg-type]


def test_fit_recovers_gabor_parameters():
    rng = np.random.default_rng(0)
    for _ in range(5):
        theta, freq, phase = rng.uniform(0, math.pi), rng.uniform(0.15, 0.4), rng.uniform(-3, 3)
        g = gabor_kernel(9, theta, freq, phase, sigma=2.0, x0=0.5, y0=-0.3)
        fit = gabor_fit(3.0 * g + 0.1)
        assert fit.score > 0.999
        assert angle_diff(np.array(fit.theta), np.array(theta)) < 1e-3
        assert fit.freq == pytest.approx(freq, rel=1e-3) and fit.sigma == pytest.approx(2.0, rel=1e-3)
        assert fit.amplitude == pytest.approx(3.0, rel=1e-3)
        assert (fit.x0, fit.y0) == pytest.approx((0.5, -0.3), abs=1e-3)
        assert 0 <= fit.theta < math.pi


def test_gabors_score_high_noise_scores_low_and_fits_recover_the_bank():
    """The speed of the 64-filter fit is benchmarked in tests/benchmarks/test_bench_gabor.py."""
    bank = gabor_bank(64, 1, 7)[:, 0]
    p = gabor_params(64, 1, 7)
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((64, 7, 7))
    fits = gabor_fit_many(bank)
    gab = np.array([f.score for f in fits])
    noisy = np.array([f.score for f in gabor_fit_many(bank.numpy() + 0.1 * rng.standard_normal((64, 7, 7)) * bank.std().item())])
    rnd = np.array([f.score for f in gabor_fit_many(noise)])
    assert gab.min() > 0.98 and noisy.mean() > 0.95
    assert rnd.mean() < 0.5
    # each fit finds the orientation its filter was drawn with, and the frequency where the
    # 7×7 window does not pull it (low frequencies read high: see the spectrum test above)
    assert angle_diff(np.array([f.theta for f in fits]), p.theta).max() < 0.01
    freq = np.array([f.freq for f in fits])
    high = p.freq >= 0.25
    np.testing.assert_allclose(freq[high], p.freq[high], rtol=0.02)
    assert np.all(freq >= 0.98 * p.freq) and np.all(freq <= 1.25 * p.freq)
    # the batched fit is the single-filter fit, filter by filter
    assert [gabor_fit(f) for f in bank[::16]] == fits[::16]


def test_fit_edge_cases():
    assert gabor_fit(np.ones((7, 7))).score == 0.0
    with pytest.raises(ValueError, match=r"7, 5\)"):
        gabor_fit(np.zeros((7, 5)))
    with pytest.raises(ValueError, match=r"\(3, 7, 7\)"):
        gabor_fit(np.zeros((3, 7, 7)))
