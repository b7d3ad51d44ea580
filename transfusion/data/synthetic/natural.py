"""``synth-natural``: a 10-class source task with one global subject per image (for pretraining).

Each image shows one large shape — the class — in a random colour, size, position and
orientation, filled flat, striped or shaded, over a varied background (colour gradients,
smooth texture, stripes) with a few small clutter shapes of other kinds. Unlike the medical
tasks, the answer is the whole image's subject, as in ImageNet.
"""

from __future__ import annotations

import numpy as np

from ._common import (
    counts_from_weights,
    grid,
    labels_with_counts,
    render_images,
    smooth_noise,
    white_noise,
)

NATURAL_CLASSES = (
    "disc", "square", "triangle", "star", "ring", "cross", "hexagon", "crescent", "heart", "bar",
)
GENERATOR_VERSION = 1


def _shape(k: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed inside-ness of shape ``k`` at local coordinates (u, v) (unit size): > 0 inside."""
    if k == 0:
        return 1 - np.sqrt(u * u + v * v)
    if k == 1:
        return 0.8 - np.maximum(np.abs(u), np.abs(v))
    if k == 2:
        return np.minimum(v + 0.55, 0.5 * (0.95 - v) - 0.866 * np.abs(u))
    if k == 3:
        r = np.sqrt(u * u + v * v)
        th = np.arctan2(v, u)
        return 0.62 + 0.35 * np.cos(5 * th) - r
    if k == 4:
        r = np.sqrt(u * u + v * v)
        return 0.22 - np.abs(r - 0.75)
    if k == 5:
        au, av = np.abs(u), np.abs(v)
        return np.maximum(np.minimum(0.28 - au, 0.95 - av), np.minimum(0.28 - av, 0.95 - au))
    if k == 6:
        au, av = np.abs(u), np.abs(v)
        return 0.85 - np.maximum(au * 0.866 + av * 0.5, av)
    if k == 7:
        return np.minimum(1 - np.sqrt(u * u + v * v), np.sqrt((u - 0.45) ** 2 + v * v) - 0.75)
    if k == 8:
        uu, vv = 1.15 * u, -1.15 * v + 0.25
        return -((uu * uu + vv * vv - 1) ** 3 - uu * uu * vv**3)
    return np.minimum(1.0 - np.abs(u), 0.3 - np.abs(v))


def _hsv(rng: np.random.Generator, s_range=(0.4, 1.0), v_range=(0.3, 1.0)) -> np.ndarray:
    h = rng.random() * 6
    s, v = rng.uniform(*s_range), rng.uniform(*v_range)
    c = v * s
    x = c * (1 - abs(h % 2 - 1))
    rgb = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h) % 6]
    return (np.array(rgb) + (v - c)).astype(np.float32)


def render_natural(label: int, rng: np.random.Generator, res: int, difficulty: float) -> np.ndarray:
    """One image as float32 (3, res, res) with a shape of class ``label`` as its subject."""
    yy, xx = grid(res)
    c1, c2 = _hsv(rng, v_range=(0.2, 0.9)), _hsv(rng, v_range=(0.2, 0.9))
    gy, gx = (float(v) for v in rng.normal(0, 0.5, 2))
    ramp = np.clip(0.5 + 0.5 * (gy * yy + gx * xx), 0, 1)
    img = c1[:, None, None] + (c2 - c1)[:, None, None] * ramp[None]
    img *= 1 + (0.08 + 0.2 * difficulty) * smooth_noise(rng, res, float(rng.choice((0.02, 0.05, 0.12))))[None]
    if rng.random() < 0.3:
        freq = float(rng.uniform(4, 12))
        ang = float(rng.uniform(0, np.pi))
        img *= (1 + 0.15 * np.sin(freq * (np.cos(ang) * xx + np.sin(ang) * yy)))[None]

    n_clutter = int(rng.poisson(0.5 + 2 * difficulty))
    subjects = [(int(rng.integers(len(NATURAL_CLASSES))), float(rng.uniform(0.06, 0.12)), False) for _ in range(n_clutter)]
    subjects.append((label, float(rng.uniform(0.45, 0.7)), True))  # drawn last, on top
    contrast = 1.0 - 0.3 * difficulty
    bg_light = float(img.mean()) > 0.45
    for k, size, main in subjects:
        span = 0.9 - size if main else 0.95
        cy, cx = (float(v) for v in rng.uniform(-span, span, 2))
        th = float(rng.uniform(0, 2 * np.pi))
        ct, st = np.cos(th), np.sin(th)
        lo_y, hi_y = int(max(0, (cy - 1.3 * size + 1) / 2 * res)), int(min(res, (cy + 1.3 * size + 1) / 2 * res + 1))
        lo_x, hi_x = int(max(0, (cx - 1.3 * size + 1) / 2 * res)), int(min(res, (cx + 1.3 * size + 1) / 2 * res + 1))
        if hi_y <= lo_y or hi_x <= lo_x:
            continue
        dy, dx = yy[lo_y:hi_y, lo_x:hi_x] - cy, xx[lo_y:hi_y, lo_x:hi_x] - cx
        u = (ct * dx + st * dy) / size
        v = (-st * dx + ct * dy) / size
        inside = np.clip(_shape(k, u, v) * (size * res / 2), 0, 1)  # ~1 px soft edge
        # the subject stands out in brightness from the background; clutter is any colour
        v_range = ((0.08, 0.35) if bg_light else (0.65, 1.0)) if main else (0.25, 1.0)
        colour = _hsv(rng, s_range=(0.3, 1.0), v_range=v_range)
        patch = img[:, lo_y:hi_y, lo_x:hi_x]
        fill = colour[:, None, None] * np.ones_like(u)[None]
        style = rng.random()
        if style < 0.3:
            fill = fill * (1 + 0.3 * np.sin(rng.uniform(6, 14) * u))[None]
        elif style < 0.6:
            fill = fill * (0.75 + 0.25 * v)[None]
        fill = patch + contrast * (fill - patch)
        patch += inside[None] * (fill - patch)
    img += np.float32(0.01 + 0.03 * difficulty) * white_noise(rng, res, 3)
    return img


def natural_labels(n: int, balance: float, seed: int, classes: int = len(NATURAL_CLASSES)) -> np.ndarray:
    """Class labels (n,) int64; ``balance`` = frequency of the rarest over the commonest class."""
    weights = balance ** (np.arange(classes) / max(1, classes - 1))
    return labels_with_counts(counts_from_weights(weights, n), np.random.default_rng([seed, 0x9A]))


def generate_natural(
    n: int, res: int, *, seed: int, balance: float, difficulty: float,
    out: np.ndarray | None = None, index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images uint8 (n, 3, res, res) and class labels int64 (n,) (``index``: as in
    :func:`~transfusion.data.synthetic.retina.generate_retina`)."""
    labels = natural_labels(n, balance, seed)
    out = render_images(n, res, 3, seed=seed, salt=0x9B, out=out, index=index,
                        draw=lambda i, rng: render_natural(int(labels[i]), rng, res, difficulty))
    return out, labels
