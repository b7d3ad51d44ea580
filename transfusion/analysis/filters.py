"""First-conv filter pictures and Gabor-likeness scores (the paper's conv1 filter study).

Pictures are drawn with matplotlib's object API on an Agg canvas (no pyplot state, no display).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
from torch import Tensor

from transfusion.core.files import atomic_path
from transfusion.core.text import num
from transfusion.transfer.gabor import gabor_fit_many

__all__ = ["filter_grid", "filter_mosaic", "gabor_likeness", "spatial_component"]


def _as_weight(weight: np.ndarray | Tensor) -> np.ndarray:
    w = np.asarray(weight.detach().float().cpu() if isinstance(weight, Tensor) else weight, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ValueError(f"weight must be (out, in, k, k) with square kernels, got shape {w.shape}")
    return w


def spatial_component(weight: np.ndarray | Tensor, *, reduce: Literal["dominant", "mean"] = "dominant") -> np.ndarray:
    """One (k, k) spatial pattern per filter of a conv weight (out, in, k, k) → (out, k, k).

    ``"dominant"`` (default): the leading right singular vector of each filter seen as an
    (in, k²) matrix, scaled by its singular value — the spatial pattern that best explains
    the filter across all input channels. An achromatic filter (the same pattern on every
    channel) gives that pattern; a colour-opponent one (+pattern on red, −pattern on green)
    gives it too, where a channel mean would cancel it. ``"mean"``: the channel mean.
    With one input channel both are the filter itself.
    """
    w = _as_weight(weight)
    out, cin, k, _ = w.shape
    if reduce == "mean" or cin == 1:
        return w.mean(1)
    if reduce != "dominant":
        raise ValueError(f"reduce must be 'dominant' or 'mean', got {reduce!r}")
    _, s, vh = np.linalg.svd(w.reshape(out, cin, k * k), full_matrices=False)
    return (s[:, :1, None] * vh[:, :1, :]).reshape(out, k, k)


def gabor_likeness(weight: np.ndarray | Tensor, *, reduce: Literal["dominant", "mean"] = "dominant") -> np.ndarray:
    """Gabor-likeness of every filter of a conv weight (out, in, k, k) → (out,) in [0, 1].

    The R² of the best-fitting 2-D Gabor (:func:`transfusion.transfer.gabor.gabor_fit`) to
    each filter's spatial pattern (:func:`spatial_component`, ``reduce`` as there). Learned
    or synthetic Gabors score > 0.9; random init and noise score about 0.2–0.4 at 7×7.
    """
    return np.array([f.score for f in gabor_fit_many(spatial_component(weight, reduce=reduce))])


def _tiles(w: np.ndarray) -> np.ndarray:
    """Per-filter normalised images (out, k, k, 3) or (out, k, k) in [0, 1], 0.5 = zero weight."""
    out, cin = w.shape[:2]
    img = w.transpose(0, 2, 3, 1) if cin == 3 else w.mean(1)
    # symmetric per-filter scaling keeps zero at mid-grey and the sign visible
    scale = np.abs(img).reshape(out, -1).max(1)
    scale[scale == 0] = 1.0
    return 0.5 + 0.5 * img / scale.reshape((out,) + (1,) * (img.ndim - 1))


def filter_mosaic(weight: np.ndarray | Tensor, *, cols: int | None = None, gap: int = 1) -> np.ndarray:
    """Conv weights (out, in, k, k) → one RGB image (rows·(k+gap)−gap, cols·(k+gap)−gap, 3) in
    [0, 1] for ``imshow``: the tiles of :func:`filter_grid` (channel mean in grey unless in = 3)
    drawn as a single image, so that dozens of filter banks fit one figure quickly. Gaps are
    white; ``cols`` defaults to ceil(sqrt(out))."""
    w = _as_weight(weight)
    tiles = _tiles(w)
    if tiles.ndim == 3:
        tiles = np.repeat(tiles[..., None], 3, axis=3)  # grey as RGB
    out, k = w.shape[0], w.shape[2]
    ncol = cols or math.ceil(math.sqrt(out))
    nrow = math.ceil(out / ncol)
    mosaic = np.ones((nrow * (k + gap) - gap, ncol * (k + gap) - gap, 3))
    for i in range(out):
        r, c = divmod(i, ncol)
        mosaic[r * (k + gap):r * (k + gap) + k, c * (k + gap):c * (k + gap) + k] = tiles[i]
    return mosaic


def filter_grid(
    weight: np.ndarray | Tensor,
    path: str | Path,
    *,
    title: str | None = None,
    scores: np.ndarray | None = None,
    cols: int | None = None,
    tile_in: float = 0.45,
) -> Path:
    """Save a PNG grid of first-conv filters (out, in, k, k) to ``path`` and return the path.

    Each filter is normalised on its own, symmetric about zero (mid-grey = 0), shown in RGB
    when in == 3 and in grayscale otherwise (the channel mean when in ∉ {1, 3}). ``scores``
    (out,), e.g. :func:`gabor_likeness`, are printed under the tiles; ``cols`` defaults to
    ceil(sqrt(out)); ``tile_in`` is the tile size in inches.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w = _as_weight(weight)
    out = w.shape[0]
    if scores is not None and len(scores) != out:
        raise ValueError(f"scores has {len(scores)} entries for {out} filters (weight {w.shape})")
    tiles = _tiles(w)
    ncol = cols or math.ceil(math.sqrt(out))
    nrow = math.ceil(out / ncol)
    extra = 0.35 if title else 0.0
    fig = Figure(figsize=(ncol * tile_in, nrow * tile_in * (1.25 if scores is not None else 1.0) + extra))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= out:
            continue
        ax.imshow(tiles[i], cmap=None if tiles.ndim == 4 else "gray", vmin=0, vmax=1, interpolation="nearest")
        if scores is not None:
            ax.set_title(num(scores[i], ".2f"), fontsize=6, pad=1)
    if title:
        fig.suptitle(title, fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)
