"""Shared drawing helpers for the synthetic generators (float32 canvases in [0, 1]).

Everything expensive (coordinate grids, smooth-noise fields, blob stamps) is computed once per
resolution from a fixed seed and cached, so a generated image depends only on its own random
stream. Coordinates are in units where the image spans [-1, 1] on both axes (y down).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

TEMPLATE_SEED = 20190215  # fixed: templates are part of the generator, not of the data seed


@lru_cache(maxsize=8)
def grid(res: int, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(yy, xx) float32 pixel-centre coordinates, [-1, 1] across the image, on a
    (res + 2 margin) square grid that extends ``margin`` px beyond the image on each side."""
    c = (np.arange(-margin, res + margin, dtype=np.float32) + 0.5) / res * 2 - 1
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return yy, xx


@lru_cache(maxsize=16)
def smooth_noise_bank(res: int, sigma_frac: float, count: int = 8) -> np.ndarray:
    """``count`` periodic smooth noise fields, zero mean, unit std, tiled 2 × 2 to
    (count, 2 res, 2 res) so that any res × res crop is a seamless field (a view, no copy).

    ``sigma_frac`` is the Gaussian smoothing width as a fraction of the image size.
    """
    from scipy import ndimage  # imported here: 0.5 s that spec parsing need not pay
    rng = np.random.default_rng(TEMPLATE_SEED + int(sigma_frac * 1e4))
    raw = rng.standard_normal((count, res, res)).astype(np.float32)
    sigma = max(0.5, sigma_frac * res)
    out = ndimage.gaussian_filter(raw, sigma=(0, sigma, sigma), mode="wrap")
    out -= out.mean(axis=(1, 2), keepdims=True)
    out /= out.std(axis=(1, 2), keepdims=True) + 1e-8
    return np.tile(out, (1, 2, 2))


def smooth_noise(rng: np.random.Generator, res: int, sigma_frac: float) -> np.ndarray:
    """A random (res, res) view of a periodic smooth noise field: random pick, offset, transpose."""
    bank = smooth_noise_bank(res, sigma_frac)
    k, oy, ox, t = rng.integers((len(bank), res, res, 2))
    f = bank[k, oy : oy + res, ox : ox + res]
    return f.T if t else f


@lru_cache(maxsize=8)
def white_noise_tile(res: int, chans: int) -> np.ndarray:
    """A (chans, 2 res, 2 res) float32 standard-normal tile; random crops serve as sensor noise."""
    rng = np.random.default_rng(TEMPLATE_SEED + 7)
    return rng.standard_normal((chans, 2 * res, 2 * res)).astype(np.float32)


def white_noise(rng: np.random.Generator, res: int, chans: int) -> np.ndarray:
    """(chans, res, res) pixel noise: a random crop of :func:`white_noise_tile` (a view)."""
    tile = white_noise_tile(res, chans)
    oy, ox = rng.integers(res, size=2)
    return tile[:, oy : oy + res, ox : ox + res]


@lru_cache(maxsize=64)
def gaussian_stamp(radius_px: float) -> np.ndarray:
    """A (k, k) float32 soft disc of the given radius in px: ~1 inside, falling off over ~1 px."""
    r = max(radius_px, 0.3)
    half = int(np.ceil(r + 2))
    c = np.arange(-half, half + 1, dtype=np.float32)
    d = np.sqrt(c[:, None] ** 2 + c[None, :] ** 2)
    return np.clip(r + 0.5 - d, 0, 1) * np.exp(-np.maximum(d - r, 0) ** 2)


@lru_cache(maxsize=16)
def irregular_stamps(radius_px: int, count: int = 12, elong: float = 1.0) -> tuple[np.ndarray, ...]:
    """``count`` irregular blob stamps (blot haemorrhages, exudate plaques), values in [0, 1].

    ``elong`` > 1 stretches them horizontally (flame shapes are then rotated by transposition).
    """
    from scipy import ndimage  # imported here: 0.5 s that spec parsing need not pay
    rng = np.random.default_rng(TEMPLATE_SEED + 31 * radius_px + int(10 * elong))
    r = max(radius_px, 1)
    half = int(np.ceil(r * max(elong, 1.0) * 1.6 + 2))
    c = np.arange(-half, half + 1, dtype=np.float32)
    y, x = np.meshgrid(c, c, indexing="ij")
    stamps = []
    for _ in range(count):
        theta = np.arctan2(y, x)
        wobble = 1 + 0.25 * np.sin(3 * theta + rng.uniform(0, 6.3)) + 0.15 * np.sin(5 * theta + rng.uniform(0, 6.3))
        d = np.sqrt((x / elong) ** 2 + y**2) / (r * wobble)
        s = np.clip((1.15 - d) * 2.5, 0, 1).astype(np.float32)
        stamps.append(ndimage.gaussian_filter(s, 0.5))
    return tuple(stamps)


def stamp_max(layer: np.ndarray, patch: np.ndarray, cy: int, cx: int, weight: float = 1.0) -> None:
    """``layer[...] = max(layer, weight * patch)`` with ``patch`` centred at pixel (cy, cx), clipped."""
    h, w = layer.shape
    ph, pw = patch.shape
    y0, x0 = cy - ph // 2, cx - pw // 2
    ys, xs = max(0, -y0), max(0, -x0)
    ye, xe = min(ph, h - y0), min(pw, w - x0)
    if ye <= ys or xe <= xs:
        return
    region = layer[y0 + ys : y0 + ye, x0 + xs : x0 + xe]
    np.maximum(region, weight * patch[ys:ye, xs:xe], out=region)


def random_walk_curve(
    rng: np.random.Generator, start: tuple[float, float], angle: float, length: float,
    step: float, turn: float,
) -> np.ndarray:
    """Points (K, 2) as (y, x) of a smooth random curve: heading changes by N(0, turn) per step."""
    k = max(2, int(length / step))
    heading = angle + np.cumsum(rng.normal(0, turn, k))
    pts = np.empty((k, 2), np.float32)
    pts[:, 0] = start[0] + np.cumsum(step * np.sin(heading))
    pts[:, 1] = start[1] + np.cumsum(step * np.cos(heading))
    return pts


def rasterize(points: np.ndarray, res: int, width_px: float, margin: int = 0) -> np.ndarray:
    """Render points (K, 2) in [-1, 1] coordinates as a line map of ~``width_px``.

    The map is (res + 2 margin) square: the image plus a ``margin`` px border on each side.
    """
    from scipy import ndimage  # imported here: 0.5 s that spec parsing need not pay
    size = res + 2 * margin
    hit = np.zeros((size, size), bool)
    pix = np.round((points + 1) / 2 * res - 0.5).astype(np.int64) + margin
    ok = (pix >= 0).all(1) & (pix < size).all(1)
    hit[pix[ok, 0], pix[ok, 1]] = True
    if not hit.any():
        return np.zeros((size, size), np.float32)
    dist = ndimage.distance_transform_edt(~hit)
    return np.clip(width_px / 2 + 0.5 - dist, 0, 1).astype(np.float32)


def counts_from_weights(weights: np.ndarray, n: int) -> np.ndarray:
    """Whole counts summing to ``n`` in proportion to ``weights`` (largest remainder, ties low)."""
    w = np.asarray(weights, np.float64)
    exact = w / w.sum() * n
    base = np.floor(exact).astype(np.int64)
    rest = n - int(base.sum())
    base[np.argsort(-(exact - base), kind="stable")[:rest]] += 1
    return base


def labels_with_counts(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A shuffled int64 label vector with ``counts[k]`` copies of class ``k``."""
    labels = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return labels[rng.permutation(len(labels))]


def to_uint8(img: np.ndarray, out: np.ndarray) -> None:
    """Write a float image in [0, 1] into a uint8 array of the same shape."""
    np.clip(img, 0.0, 1.0, out=img)
    img *= 255.0
    img += 0.5
    out[...] = img.astype(np.uint8)


def render_images(
    n: int, res: int, chans: int, *, seed: int, salt: int,
    draw: Callable[[int, np.random.Generator], np.ndarray],
    out: np.ndarray | None = None, index: np.ndarray | None = None,
) -> np.ndarray:
    """Render images ``index`` (default all ``n``) into ``out`` uint8 (len(index), chans, res, res).

    Image ``i`` gets its own generator seeded by (seed, i, salt), so it depends only on those and
    on ``draw(i, rng)`` (a float image in [0, 1], channels first) — never on which other images
    are rendered or in what order.
    """
    index = np.arange(n) if index is None else np.asarray(index)
    if out is None:
        out = np.empty((len(index), chans, res, res), np.uint8)
    for j, i in enumerate(index):
        to_uint8(draw(int(i), np.random.default_rng([seed, int(i), salt])), out[j])
    return out
