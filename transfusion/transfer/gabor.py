"""Synthetic Gabor filter banks (the paper's Gabor init of conv1) and Gabor fits of filters.

Conventions. A k×k filter is indexed ``[row, col]``; ``x = col − (k−1)/2`` grows rightwards and
``y = row − (k−1)/2`` downwards. A 2-D Gabor is

    g(x, y) = exp(−((x−x0)² + (y−y0)²) / (2σ²)) · cos(2π·f·u + φ),  u = (x−x0)·cos θ + (y−y0)·sin θ

with ``θ`` ∈ [0, π) the direction of the wave vector (radians, from the +x axis towards +y,
i.e. clockwise on screen; the stripes run perpendicular to it), ``f`` the frequency in
cycles/px, ``φ`` the phase (0: even/cosine, π/2: odd/sine) and ``σ`` the envelope width in px.

The bank (:func:`gabor_bank`, :func:`gabor_params`) is a grid of orientations × frequencies ×
the two quadrature phases {0, π/2}, frequency-major (then orientation, then phase) so a
picture of conv1 reads row by row from coarse to fine. With C = ceil(out / 2) (θ, f) cells,
it uses n_f = max(1, round(sqrt(C / 2))) frequencies and n_θ = ceil(C / n_f) orientations
(64 filters → 8 orientations × 4 frequencies × 2 phases); frequencies are geometric from
1/(k−1) (one cycle across the kernel) to 0.35 cycles/px (safely below the 0.5 Nyquist limit,
so diagonal and axis-aligned filters are equally sharp); σ = 0.56/f (≈ one-octave bandwidth)
capped at (k−1)/4 so the envelope fades inside the kernel. Each filter is made zero-mean by
subtracting the multiple of its Gaussian envelope that cancels its sum (the Morlet
admissibility correction). If the grid holds more filters
than ``out_channels``, a subset is dropped at random with ``seed`` (the bank is otherwise
deterministic). Each filter is scaled to unit Frobenius norm over (in, k, k); the init regime rescales the bank to the default init's
variance.

Input channels: ``chroma="luminance"`` (default) puts the same spatial filter on every input
channel — an achromatic filter, as most of ImageNet-trained conv1 filters are; it responds to
brightness alone, so a grayscale image repeated over RGB gives the same response as the
1-channel filter summed over channels. ``chroma="per_channel"`` puts filter j on input
channel j mod in_chans only (zeros elsewhere): colour-specific Gabors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy.optimize import least_squares
from torch import Tensor

__all__ = ["GaborFit", "GaborParams", "gabor_bank", "gabor_fit", "gabor_fit_many", "gabor_kernel", "gabor_params"]

_F_MAX = 0.35  # highest bank frequency, cycles/px (Nyquist is 0.5)
_BANDWIDTH = 0.56  # σ·f for a one-octave frequency bandwidth


def _coords(k: int) -> tuple[np.ndarray, np.ndarray]:
    c = (k - 1) / 2
    y, x = np.mgrid[0:k, 0:k].astype(np.float64) - c
    return x, y


def gabor_kernel(
    kernel_size: int, theta: float, freq: float, phase: float, sigma: float, x0: float = 0.0, y0: float = 0.0
) -> np.ndarray:
    """The Gabor g(x, y) of the module docstring sampled on a (k, k) grid (float64, not normalised)."""
    x, y = _coords(kernel_size)
    dx, dy = x - x0, y - y0
    u = dx * math.cos(theta) + dy * math.sin(theta)
    return np.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)) * np.cos(2 * math.pi * freq * u + phase)


@dataclass(frozen=True)
class GaborParams:
    """Per-filter parameters of a bank, arrays of shape (out,): ``theta`` (rad, [0, π)),
    ``freq`` (cycles/px), ``phase`` (rad), ``sigma`` (px), ``channel`` (input channel of a
    ``per_channel`` filter; −1 for ``luminance``: all channels)."""

    theta: np.ndarray
    freq: np.ndarray
    phase: np.ndarray
    sigma: np.ndarray
    channel: np.ndarray


def _grid_shape(out_channels: int) -> tuple[int, int]:
    cells = math.ceil(out_channels / 2)
    n_f = max(1, round(math.sqrt(cells / 2)))
    return math.ceil(cells / n_f), n_f


def gabor_params(
    out_channels: int,
    in_chans: int,
    kernel_size: int,
    *,
    seed: int = 0,
    chroma: Literal["luminance", "per_channel"] = "luminance",
) -> GaborParams:
    """The parameters of :func:`gabor_bank`'s filters, in the bank's order (see module docstring)."""
    if out_channels < 1 or in_chans < 1:
        raise ValueError(f"need out_channels ≥ 1 and in_chans ≥ 1, got {out_channels}, {in_chans}")
    if kernel_size < 3:
        raise ValueError(f"a Gabor needs a kernel of at least 3×3, got kernel_size={kernel_size}")
    if chroma not in ("luminance", "per_channel"):
        raise ValueError(f"chroma must be 'luminance' or 'per_channel', got {chroma!r}")
    n_theta, n_f = _grid_shape(out_channels)
    f_min = min(1.0 / (kernel_size - 1), _F_MAX)
    freqs = np.geomspace(f_min, _F_MAX, n_f) if n_f > 1 else np.array([math.sqrt(f_min * _F_MAX)])
    thetas = np.arange(n_theta) * math.pi / n_theta
    f, t, p = np.meshgrid(freqs, thetas, np.array([0.0, math.pi / 2]), indexing="ij")
    f, t, p = f.ravel(), t.ravel(), p.ravel()
    if len(f) > out_channels:
        drop = np.random.default_rng(seed).choice(len(f), size=len(f) - out_channels, replace=False)
        keep = np.setdiff1d(np.arange(len(f)), drop)
        f, t, p = f[keep], t[keep], p[keep]
    sigma = np.minimum(_BANDWIDTH / f, (kernel_size - 1) / 4)
    channel = np.arange(out_channels) % in_chans if chroma == "per_channel" else np.full(out_channels, -1)
    return GaborParams(t, f, p, sigma, channel)


def gabor_bank(
    out_channels: int,
    in_chans: int,
    kernel_size: int,
    *,
    seed: int = 0,
    chroma: Literal["luminance", "per_channel"] = "luminance",
) -> Tensor:
    """A bank of zero-mean, unit-norm 2-D Gabor filters, float32 (out_channels, in_chans, k, k).

    Orientations × frequencies × phases as described in the module docstring; the per-filter
    parameters are :func:`gabor_params` with the same arguments.
    """
    prm = gabor_params(out_channels, in_chans, kernel_size, seed=seed, chroma=chroma)
    bank = np.zeros((out_channels, in_chans, kernel_size, kernel_size))
    for j in range(out_channels):
        g = gabor_kernel(kernel_size, prm.theta[j], prm.freq[j], prm.phase[j], prm.sigma[j])
        env = gabor_kernel(kernel_size, 0.0, 0.0, 0.0, prm.sigma[j])
        # zero-mean (no response to flat brightness) by subtracting a multiple of the isotropic
        # envelope, not a constant: a constant would bend the orientation of low frequencies
        # towards the kernel's axes (the square window's spectrum is not isotropic)
        g -= g.sum() / env.sum() * env
        if prm.channel[j] < 0:
            bank[j] = g
        else:
            bank[j, prm.channel[j]] = g
        bank[j] /= np.linalg.norm(bank[j])
    return torch.from_numpy(bank).float()


# --------------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class GaborFit:
    """Best-fitting 2-D Gabor (plus a constant) of one k×k filter.

    ``score``: R² = 1 − SS_res / SS_tot (SS_tot about the filter's mean), in [0, 1] — the
    "Gabor-likeness"; ``theta`` (rad, [0, π)), ``freq`` (cycles/px), ``sigma`` (px), ``phase``
    (rad, (−π, π]), centre ``x0``, ``y0`` (px from the kernel centre), ``amplitude``. A
    constant filter scores 0 with all parameters 0.
    """

    score: float
    theta: float
    freq: float
    sigma: float
    phase: float
    x0: float = 0.0
    y0: float = 0.0
    amplitude: float = 0.0


_GRID_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _fit_grid(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Coarse (θ, f, σ, x0, y0) grid (G, 5) and orthonormal bases (G, k², 3) of
    span{E·cos, E·sin, 1} at each grid point."""
    if k not in _GRID_CACHE:
        thetas = np.arange(12) * math.pi / 12
        freqs = np.geomspace(0.04, 0.5, 9)
        sigmas = np.geomspace(0.6, max(0.7, k / 2.5), 5)
        shift = (k - 1) / 6
        centres = [-shift, 0.0, shift]
        grid = np.array(np.meshgrid(thetas, freqs, sigmas, centres, centres, indexing="ij")).reshape(5, -1).T
        q = np.linalg.qr(_designs(k, grid))[0]  # (G, k², 3)
        _GRID_CACHE[k] = (grid, q)
    return _GRID_CACHE[k]


def _designs(k: int, prm: np.ndarray) -> np.ndarray:
    """Design matrices (B, k², 3) [E·cos, E·sin, 1] for parameter rows (B, 5) = (θ, f, σ, x0, y0)."""
    x, y = _flat_coords(k)
    t, f, s, x0, y0 = (prm[:, i, None] for i in range(5))
    dx, dy = x - x0, y - y0
    env = np.exp(-(dx * dx + dy * dy) / (2 * s * s))
    w = 2 * math.pi * f * (dx * np.cos(t) + dy * np.sin(t))
    return np.stack([env * np.cos(w), env * np.sin(w), np.ones_like(w)], axis=2)


_COORDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _flat_coords(k: int) -> tuple[np.ndarray, np.ndarray]:
    if k not in _COORDS:
        x, y = _coords(k)
        _COORDS[k] = (x.ravel(), y.ravel())
    return _COORDS[k]


def _solve_linear(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (B, 3) of designs a (B, k², 3) for w (k²,), normal equations."""
    g = np.einsum("bpi,bpj->bij", a, a)
    # a tiny ridge keeps the solve finite when f → 0 makes the sine column vanish
    g += (1e-12 * np.trace(g, axis1=1, axis2=2) + 1e-300)[:, None, None] * np.eye(3)
    return np.linalg.solve(g, np.einsum("bpi,p->bi", a, w)[..., None])[..., 0]


def _residuals(k: int, prm: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Residuals (B, k²) of the best linear fit at each parameter row (B, 5)."""
    a = _designs(k, prm)
    return np.einsum("bpi,bi->bp", a, _solve_linear(a, w)) - w


_STEPS = np.array([1e-6, 1e-7, 1e-6, 1e-6, 1e-6])  # forward-difference steps per parameter


def _refine(w: np.ndarray, k: int, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Variable projection: least squares over (θ, f, σ, x0, y0), the linear part solved inside."""
    half = (k - 1) / 2
    lo = np.array([-np.inf, 0.01, 0.4, -half, -half])
    hi = np.array([np.inf, 0.5, 2.0 * k, half, half])

    def resid(prm: np.ndarray) -> np.ndarray:
        return _residuals(k, prm[None], w)[0]

    def jac(prm: np.ndarray) -> np.ndarray:
        # all five forward differences in one batched evaluation (step away from an upper bound)
        h = np.where(prm + _STEPS > hi, -_STEPS, _STEPS)
        r = _residuals(k, np.vstack([prm, prm + np.diag(h)]), w)
        return ((r[1:] - r[0]) / h[:, None]).T

    start = np.clip(start, lo + 1e-9, hi - 1e-9)
    # R² is reported to ~1e-4, so loose tolerances and a bounded budget suffice
    sol = least_squares(
        resid, start, jac=jac, bounds=(lo, hi), x_scale=[0.3, 0.05, 0.5, 0.5, 0.5],
        xtol=1e-6, ftol=1e-6, max_nfev=60,
    )
    return sol.x, np.linalg.lstsq(_designs(k, sol.x[None])[0], w, rcond=None)[0]


def gabor_fit_many(filters: np.ndarray | Tensor) -> list[GaborFit]:
    """:func:`gabor_fit` for a stack of filters (F, k, k), sharing the coarse grid search."""
    w_all = np.asarray(filters.detach().cpu() if isinstance(filters, Tensor) else filters, dtype=np.float64)
    if w_all.ndim != 3 or w_all.shape[1] != w_all.shape[2]:
        raise ValueError(f"filters must be (F, k, k) square 2-D filters, got shape {w_all.shape}")
    k = w_all.shape[1]
    if k < 3:
        raise ValueError(f"a Gabor fit needs filters of at least 3×3, got shape {w_all.shape}")
    flat = w_all.reshape(len(w_all), -1)
    grid, q = _fit_grid(k)
    # explained energy of every filter at every grid point: ‖Qᵀw‖², best point per filter
    energy = np.square(np.einsum("gpb,fp->fgb", q, flat)).sum(2)
    best = energy.argmax(1)
    fits = []
    for i, w in enumerate(flat):
        ss_tot = float(np.square(w - w.mean()).sum())
        if ss_tot <= 1e-30 * max(float(np.square(w).sum()), 1e-300):
            fits.append(GaborFit(0.0, 0.0, 0.0, 0.0, 0.0))  # constant filter: nothing to fit
            continue
        prm, (a, b, c) = _refine(w, k, grid[best[i]].copy())
        ss_res = float(np.square(_designs(k, prm[None])[0] @ np.array([a, b, c]) - w).sum())
        theta, freq, sigma, x0, y0 = (float(v) for v in prm)
        phase = math.atan2(-b, a)  # a·cos w + b·sin w = A·cos(w + φ)
        theta %= 2 * math.pi
        if theta >= math.pi:  # θ+π is the same wave with u → −u, i.e. φ → −φ
            theta -= math.pi
            phase = -phase
        phase = math.atan2(math.sin(phase), math.cos(phase))
        score = min(max(1.0 - ss_res / ss_tot, 0.0), 1.0)
        fits.append(GaborFit(score, theta, freq, sigma, phase, x0, y0, float(math.hypot(a, b))))
    return fits


def gabor_fit(filter2d: np.ndarray | Tensor) -> GaborFit:
    """Best-fitting 2-D Gabor of one (k, k) filter and its fit quality R² (the Gabor-likeness).

    A coarse grid over orientation (12) × frequency (9, 0.04–0.5 cycles/px) × envelope width
    (5) × centre (3×3) picks a start — for each grid point amplitude, phase and offset are
    linear and solved in closed form — then scipy's bounded least squares refines
    (θ, f, σ, x0, y0) with the linear part re-solved at every step (variable projection).
    The model has 8 parameters, so on a 7×7 filter (49 values) pure noise still reaches
    R² ≈ 0.2–0.4; learned or synthetic Gabors score > 0.9.
    """
    w = np.asarray(filter2d.detach().cpu() if isinstance(filter2d, Tensor) else filter2d)
    if w.ndim != 2:
        raise ValueError(f"gabor_fit takes one (k, k) filter, got shape {w.shape}")
    return gabor_fit_many(w[None])[0]
