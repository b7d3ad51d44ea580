"""``synth-cxr``: grayscale frontal chest radiographs with the five CheXpert pathologies.

Anatomy: body outline, two lung fields with domed diaphragms and sharp costophrenic angles,
heart and mediastinum, spine, ribs and clavicles, lung markings, exposure and gamma variation,
sensor noise, and distractors (support-device tubes, side markers). Signs:

| label | sign |
| --- | --- |
| Atelectasis | volume loss (raised hemidiaphragm) and a plate-like linear opacity |
| Cardiomegaly | cardiothoracic ratio ~0.45 → ~0.55 |
| Consolidation | a dense local irregular opacity |
| Edema | diffuse bilateral perihilar haze |
| Pleural Effusion | fluid at a lung base with a meniscus, blunting the costophrenic angle |

Labels co-occur through a Gaussian copula (cardiomegaly, edema and effusion travel together,
as in heart failure; atelectasis goes with effusion and consolidation). An ``uncertain``
share of the label entries is marked uncertain; such an image shows a faint version of that
sign, and the policy maps it to a masked label (``ignore``), a positive (``ones``) or a
negative (``zeros``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._common import (
    TEMPLATE_SEED,
    grid,
    random_walk_curve,
    rasterize,
    render_images,
    smooth_noise,
    white_noise,
)

CXR_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
GENERATOR_VERSION = 1
_BASE_PREVALENCE = np.array([0.30, 0.25, 0.18, 0.28, 0.35])
_CORR = np.array(
    [  # Atel  Card  Cons  Edem  Effu
        [1.00, 0.10, 0.30, 0.10, 0.35],
        [0.10, 1.00, 0.05, 0.40, 0.35],
        [0.30, 0.05, 1.00, 0.10, 0.15],
        [0.10, 0.40, 0.10, 1.00, 0.45],
        [0.35, 0.35, 0.15, 0.45, 1.00],
    ]
)
UNCERTAIN_STRENGTH = 0.45


def cxr_labels(n: int, balance: float, uncertain: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (n, 5) int8 0/1 and an uncertainty flag (n, 5) bool.

    ``balance`` is the mean prevalence over the five labels (each label keeps its relative
    prevalence); ``uncertain`` the share of entries flagged uncertain.
    """
    rng = np.random.default_rng([seed, 0xC7])
    prev = np.clip(_BASE_PREVALENCE * balance / _BASE_PREVALENCE.mean(), 0.01, 0.95)
    z = rng.standard_normal((n, 5)) @ np.linalg.cholesky(_CORR).T
    from scipy.special import ndtri

    labels = (z < ndtri(prev)).astype(np.int8)
    flags = np.zeros(n * 5, bool)
    flags[rng.permutation(n * 5)[: int(round(uncertain * n * 5))]] = True
    return labels, flags.reshape(n, 5)


@lru_cache(maxsize=4)
def _bones(res: int) -> tuple[np.ndarray, np.ndarray]:
    """Rib+clavicle maps (K, res + 2 m, res + 2 m), m = res // 24 (crops are views), and
    support-device tube maps (K, res, res)."""
    m = _bone_margin(res)
    rng = np.random.default_rng(TEMPLATE_SEED + 3 * res)
    ribs, tubes = [], []
    for _ in range(6):
        pts = []
        top = rng.uniform(-0.62, -0.55)
        gap = rng.uniform(0.1, 0.12)
        for k in range(9):
            for side in (-1, 1):
                u = np.linspace(0, 0.66, 120)  # distance from the spine
                y = top + k * gap - 0.08 + 0.55 * (u - 0.35) ** 2 - 0.1 * u + 0.1 * u * (k / 9)
                pts.append(np.stack([y, side * (0.06 + u)], 1))
        for side in (-1, 1):  # clavicles
            u = np.linspace(0.08, 0.55, 80)
            pts.append(np.stack([-0.66 - 0.12 * u + 0.15 * (u - 0.3) ** 2, side * u], 1))
        ribs.append(rasterize(np.concatenate(pts), res, 0.028 * res, m))
        start = (-1.0, rng.normal(0.02, 0.05))
        curve = random_walk_curve(rng, start, np.pi / 2 + rng.normal(0, 0.15), rng.uniform(0.6, 1.1), 0.004, 0.02)
        tubes.append(rasterize(curve, res, 0.012 * res))
    return np.stack(ribs), np.stack(tubes)


def _bone_margin(res: int) -> int:
    return max(1, res // 24)


def _window(res: int, cy: float, cx: float, half: float) -> tuple[slice, slice]:
    """Pixel slices covering the square of half-size ``half`` (coordinate units) around (cy, cx)."""
    def one(c: float) -> slice:
        lo = int(np.floor((c - half + 1) / 2 * res))
        hi = int(np.ceil((c + half + 1) / 2 * res))
        return slice(min(max(lo, 0), res), min(max(hi, 0), res))

    return one(cy), one(cx)


def render_cxr(strength: np.ndarray, rng: np.random.Generator, res: int, difficulty: float) -> np.ndarray:
    """One radiograph as float32 (1, res, res). ``strength`` (5,): 0 = absent, else sign strength.

    Shapes are built from a column of y and a row of x coordinates (broadcasting), and local
    signs are drawn only inside their bounding window, to keep a 128 px image near 1 ms.
    """
    yy, xx = grid(res)
    y, x = yy[:, :1], xx[:1, :]  # (res, 1), (1, res)
    s = float(rng.uniform(0.92, 1.05))
    ty, tx = (float(v) for v in rng.normal(0, 0.03, 2))
    sharp = res / 3.0
    body = np.clip(1 - ((y - 0.25 - ty) / (1.3 * s)) ** 2 - ((x - tx) / (1.02 * s)) ** 2, 0, 1 / sharp) * sharp

    atel, card, cons, edema, effu = (float(v) for v in strength)
    atel_side = int(rng.choice((-1, 1)))
    effu_sides = ((-1,), (1,), (-1, 1))[int(rng.choice(3, p=(0.35, 0.35, 0.3)))]
    lungs = []
    centres = []
    for side in (-1, 1):
        cx, cy = side * 0.4 * s + tx, -0.07 + ty
        a, b = (0.32 if side < 0 else 0.3) * s, 0.6 * s
        d0 = cy + 0.9 * b - (0.1 * b * atel if side == atel_side else 0.0)
        u2 = ((x - cx) / a) ** 2
        dome = d0 - 0.17 * s * (1 - u2)
        e = (1 - u2) - ((y - cy) / b) ** 2
        lung = np.clip(e * (sharp * a), 0, 1) * np.clip((dome - y) * sharp, 0, 1)
        if effu > 0 and side in effu_sides:
            level = d0 - float(rng.uniform(0.16, 0.34)) * b
            meniscus = level - 0.12 * np.clip(side * (x - cx) / a, 0, 1)  # climbs laterally
            fluid = np.clip((y - meniscus) * (sharp * 0.5), 0, 1)
            lung *= 1 - min(1.1 * effu, 1.0) * fluid
        lungs.append(lung)
        centres.append((cx, cy, a, b, d0))
    lung = np.maximum(lungs[0], lungs[1])

    ctr = float(rng.normal(0.45, 0.03)) + card * (0.14 - 0.08 * difficulty)
    hx, hy = ctr * 1.4 * s / 2, 0.25 * s
    hcx, hcy = 0.07 * s + tx, 0.3 + ty
    heart = np.clip(1 - ((x - hcx) / hx) ** 2 - ((y - hcy) / hy) ** 2, 0, 1 / (sharp * 0.3)) * (sharp * 0.3)
    lung *= 1 - heart
    medi = np.clip((0.09 * s - np.abs(x - tx - 0.01)) * sharp, 0, 1) * (y < hcy)

    A = 0.45 * body - 0.33 * lung + 0.1 * medi
    ribs, tubes = _bones(res)
    m = _bone_margin(res)
    sh = (int(rng.integers(-m, m + 1)), int(rng.integers(-m, m + 1)))
    rib = ribs[rng.integers(len(ribs)), m + sh[0] : m + sh[0] + res, m + sh[1] : m + sh[1] + res]
    A += (0.03 + 0.07 * lung) * rib
    spine = np.clip((0.055 * s - np.abs(x - tx)) * sharp, 0, 1) * (0.1 + 0.04 * np.cos(y * (2 * np.pi * 5.5)))
    A += spine
    A += lung * (0.035 * smooth_noise(rng, res, 0.015) + 0.06 * np.exp(-((np.abs(x - tx) - 0.2 * s) ** 2 / 0.01)) * np.exp(-((y - ty) ** 2 / 0.03)))

    if edema > 0:
        haze = np.exp(-((np.abs(x - tx) - 0.25 * s) ** 2 / 0.07)) * np.exp(-((y - 0.05 - ty) ** 2 / 0.14))
        A += lung * (0.09 * edema) * haze * (1 + 0.6 * smooth_noise(rng, res, 0.03))
    if cons > 0:
        for _ in range(1 + int(rng.random() < 0.3)):
            cx, cy, a, b, d0 = centres[int(rng.integers(2))]
            py, px = cy + float(rng.uniform(-0.5, 0.6)) * b, cx + float(rng.uniform(-0.5, 0.5)) * a
            rad = float(rng.uniform(0.07, 0.13))
            wy, wx = _window(res, py, px, 3 * rad)
            env = np.exp(-((y[wy] - py) ** 2) / (2 * rad**2)) * np.exp(-((x[:, wx] - px) ** 2) / (2 * rad**2))
            tex = smooth_noise(rng, res, 0.025)[wy, wx]
            blob = np.clip(env * (1.3 + 0.6 * tex) - 0.45, 0, 1)
            A[wy, wx] += (0.3 * cons) * blob * np.maximum(lung[wy, wx], 0.3)
    if atel > 0:
        cx, cy, a, b, d0 = centres[0 if atel_side < 0 else 1]
        py, px = d0 - float(rng.uniform(0.2, 0.45)) * b, cx + float(rng.uniform(-0.4, 0.1)) * a
        half = float(rng.uniform(0.12, 0.2))
        slope = float(rng.normal(0, 0.12))
        wy, wx = _window(res, py, px, half + 0.08)
        dist = (y[wy] - py) - slope * (x[:, wx] - px)
        along = np.clip(1 - np.abs(x[:, wx] - px) / half, 0, 0.2) * 5
        line = np.exp(-(dist**2) / (2 * 0.018**2)) * along
        A[wy, wx] += (0.2 * atel) * line * np.maximum(lung[wy, wx], 0.3)
    if rng.random() < 0.2 + 0.3 * difficulty:
        A += 0.25 * tubes[rng.integers(len(tubes))]
    if rng.random() < 0.5:
        my, mx = (int(v) for v in rng.integers(res // 16, res // 5, 2))
        if rng.random() < 0.5:
            mx = res - mx - res // 16
        A[my : my + max(1, res // 20), mx : mx + max(1, res // 16)] += 0.5

    gain = float(rng.uniform(0.95, 1.25))
    A *= 1 + (0.08 * gain) * smooth_noise(rng, res, 0.2)
    A += float(rng.normal(0.08, 0.03))
    np.clip(A, 0, 1, out=A)
    A **= float(rng.uniform(0.8, 1.25))
    img = A[None]
    img += np.float32(0.015 + 0.035 * difficulty) * white_noise(rng, res, 1)
    return img


def generate_cxr(
    n: int, res: int, *, seed: int, balance: float, difficulty: float, uncertain: float,
    out: np.ndarray | None = None, index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` radiographs uint8 (n, 1, res, res), labels (n, 5) int8 0/1, uncertain flags (n, 5)
    (``index``: as in :func:`~transfusion.data.synthetic.retina.generate_retina`)."""
    labels, flags = cxr_labels(n, balance, uncertain, seed)
    visibility = 1.25 - 0.7 * difficulty

    def draw(i: int, rng: np.random.Generator) -> np.ndarray:
        strength = labels[i] * visibility * rng.uniform(0.6, 1.0, 5)
        strength = np.where(flags[i], UNCERTAIN_STRENGTH * visibility, strength)
        return render_cxr(strength, rng, res, difficulty)

    out = render_images(n, res, 1, seed=seed, salt=0xC8, out=out, index=index, draw=draw)
    return out, labels, flags
