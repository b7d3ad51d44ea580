"""``synth-retina``: colour fundus photographs with diabetic-retinopathy lesions graded 0–4.

Each image has a circular field of view, an optic disc, a vessel tree, a darker macula,
choroidal texture, uneven illumination and colour variation. Lesions follow the international
clinical DR scale:

| grade | name | lesions |
| --- | --- | --- |
| 0 | no DR | none |
| 1 | mild | a few microaneurysms (1–2 px red dots at 64 px) |
| 2 | moderate | more microaneurysms, blot haemorrhages, often hard exudates (yellow) |
| 3 | severe | many haemorrhages, exudates, cotton-wool spots |
| 4 | proliferative | as 3, plus new vessels near the disc and pre-retinal haemorrhage |

Distractors that are not DR (pigment spots, drusen, dust) appear at every grade, more with
``difficulty``. The binary task of the paper is referable DR, grade >= 2.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ._common import (
    TEMPLATE_SEED,
    counts_from_weights,
    gaussian_stamp,
    grid,
    irregular_stamps,
    labels_with_counts,
    random_walk_curve,
    rasterize,
    render_images,
    smooth_noise,
    stamp_max,
    white_noise,
)

GRADE_NAMES = ("no DR", "mild", "moderate", "severe", "proliferative")
REFERABLE_NAMES = ("non-referable", "referable")
# share of each grade inside the non-referable (0, 1) and referable (2, 3, 4) groups
_NONREF_MIX = np.array([0.6, 0.4])
_REF_MIX = np.array([0.5, 0.3, 0.2])
_N_TEMPLATES = 8
GENERATOR_VERSION = 1

_DISC = (0.0, 0.42)  # (y, x) of the optic disc in a right-eye template
_MACULA = (0.02, -0.06)


def retina_grades(n: int, balance: float, seed: int) -> np.ndarray:
    """Grades (n,) int64 with round(n * balance) referable (>= 2) images, shuffled."""
    n_ref = int(round(n * balance))
    counts = np.concatenate(
        [counts_from_weights(_NONREF_MIX, n - n_ref), counts_from_weights(_REF_MIX, n_ref)]
    )
    return labels_with_counts(counts, np.random.default_rng([seed, 0x5E7]))


@lru_cache(maxsize=4)
def _templates(res: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per resolution: field mask, illumination falloff (res, res), and a stack of anatomy maps
    (K, 3, res + 2 m, res + 2 m) — vessels, disc, macula — with an m = res // 20 px margin so a
    shifted crop is a view."""
    yy, xx = grid(res)
    r = np.sqrt(yy**2 + xx**2)
    field = np.clip((0.96 - r) * res / 2.0, 0, 1).astype(np.float32)
    falloff = (1 - 0.45 * r**2).astype(np.float32)
    m = _margin(res)
    yy, xx = grid(res, m)
    rng = np.random.default_rng(TEMPLATE_SEED + res)
    vessels, discs, maculas = [], [], []
    for _ in range(_N_TEMPLATES):
        dy, dx = rng.normal(0, 0.03, 2)
        disc_c = (_DISC[0] + dy, _DISC[1] + dx)
        mac_c = (_MACULA[0] + dy, _MACULA[1] + dx)
        main, branch = [], []
        ax = disc_c[1] - mac_c[1]
        for sign in (-1, 1):  # superior / inferior temporal arcades curving around the macula
            ay = rng.uniform(0.36, 0.5)
            th = np.linspace(0.12, rng.uniform(1.9, 2.4), 300)
            wob = 0.02 * np.sin(th * rng.uniform(3, 6) + rng.uniform(0, 6))
            pts = np.stack([mac_c[0] + sign * (ay + wob) * np.sin(th), mac_c[1] + (ax + wob) * np.cos(th)], 1)
            main.append(pts)
            for t in rng.choice(np.arange(60, 300), size=4, replace=False):
                ang = np.arctan2(pts[t, 0] - mac_c[0], pts[t, 1] - mac_c[1]) + rng.normal(0, 0.6)
                branch.append(random_walk_curve(rng, tuple(pts[t]), ang, rng.uniform(0.15, 0.35), 0.004, 0.05))
        for ang in (-0.7, -0.2, 0.25, 0.75):  # nasal vessels
            curve = random_walk_curve(rng, disc_c, ang + rng.normal(0, 0.1), rng.uniform(0.45, 0.7), 0.004, 0.03)
            (main if abs(ang) > 0.5 else branch).append(curve)
        for _ in range(6):  # small vessels towards the macula
            start = (mac_c[0] + rng.normal(0, 0.3), mac_c[1] + rng.normal(0, 0.3))
            branch.append(random_walk_curve(rng, start, rng.uniform(0, 6.3), rng.uniform(0.1, 0.25), 0.004, 0.08))
        v = np.maximum(
            rasterize(np.concatenate(main), res, 0.026 * res, m),
            0.8 * rasterize(np.concatenate(branch), res, 0.013 * res, m),
        )
        vessels.append(v)
        dd = np.sqrt((yy - disc_c[0]) ** 2 + (xx - disc_c[1]) ** 2)
        discs.append((1 / (1 + np.exp((dd - 0.085) * res * 0.5)) + 0.6 * np.exp(-((dd / 0.035) ** 2))).astype(np.float32))
        dm = (yy - mac_c[0]) ** 2 + (xx - mac_c[1]) ** 2
        maculas.append(np.exp(-dm / (2 * 0.09**2)).astype(np.float32))
    anatomy = np.stack([np.stack(vessels), np.stack(discs), np.stack(maculas)], 1)
    return field, falloff, np.ascontiguousarray(anatomy, dtype=np.float32)


def _margin(res: int) -> int:
    return max(1, res // 20)


def _random_points(rng: np.random.Generator, k: int, res: int, radius: float = 0.82) -> np.ndarray:
    """k pixel positions (k, 2) uniform in the central disc of the given radius."""
    rr = radius * np.sqrt(rng.random(k))
    th = rng.uniform(0, 2 * np.pi, k)
    return np.stack([(rr * np.sin(th) + 1) / 2 * res, (rr * np.cos(th) + 1) / 2 * res], 1).astype(np.int64)


def _dots(rng, layer, k, res, radius_frac, alpha, radius=0.82):
    for (cy, cx), rad, a in zip(
        _random_points(rng, k, res, radius), rng.uniform(*radius_frac, k) * res, rng.uniform(*alpha, k)
    ):
        stamp_max(layer, gaussian_stamp(round(rad * 4) / 4), cy, cx, a)


def _blots(rng, layer, k, res, radius_frac, alpha, centre=None, spread=0.0):
    if centre is None:
        pts = _random_points(rng, k, res)
    else:
        pts = np.stack([rng.normal(centre[0], spread, k), rng.normal(centre[1], spread, k)], 1)
        pts = ((np.clip(pts, -0.85, 0.85) + 1) / 2 * res).astype(np.int64)
    for (cy, cx), rad, a in zip(pts, rng.uniform(*radius_frac, k) * res, rng.uniform(*alpha, k)):
        elong = 1.0 if rng.random() < 0.6 else 2.0
        stamps = irregular_stamps(max(1, int(round(rad))), elong=elong)
        s = stamps[rng.integers(len(stamps))]
        stamp_max(layer, s.T if rng.random() < 0.5 else s, cy, cx, a)


def render_retina(grade: int, rng: np.random.Generator, res: int, difficulty: float) -> np.ndarray:
    """One fundus image as float32 (3, res, res) in [0, 1] (not yet clipped)."""
    field, falloff, anatomy = _templates(res)
    m = _margin(res)
    t, oy, ox, flip = (int(v) for v in rng.integers((len(anatomy), 2 * m + 1, 2 * m + 1, 2)))
    anat = anatomy[t, :, oy : oy + res, ox : ox + res]
    if flip:
        anat = anat[:, :, ::-1]
    vessel, disc, macula = anat

    contrast = 1.3 - 0.8 * difficulty  # lesion visibility: 1.3 (easy) .. 0.5 (hard)
    red = np.zeros((res, res), np.float32)
    yellow = np.zeros((res, res), np.float32)
    white = np.zeros((res, res), np.float32)
    gray = np.zeros((res, res), np.float32)
    c = contrast
    if grade >= 1:
        _dots(rng, red, 1 + rng.poisson(1.5 + 2.5 * (grade >= 2) + 3 * (grade >= 3)), res, (0.007, 0.013), (0.6 * c, 0.95 * c))
    if grade == 2:
        _blots(rng, red, 1 + rng.poisson(1.2), res, (0.02, 0.04), (0.55 * c, 0.9 * c))
    if grade >= 3:
        _blots(rng, red, 4 + rng.poisson(4), res, (0.022, 0.05), (0.6 * c, 0.95 * c))
        _blots(rng, white, 1 + rng.poisson(1.2), res, (0.035, 0.06), (0.35 * c, 0.6 * c), centre=_MACULA, spread=0.35)
    if grade >= 2:
        n_clusters = int(rng.random() < 0.55) if grade == 2 else 1 + rng.poisson(0.8)
        for _ in range(n_clusters):
            centre = (_MACULA[0] + rng.normal(0, 0.25), _MACULA[1] + rng.normal(0, 0.25))
            _blots(rng, yellow, 2 + rng.poisson(3), res, (0.008, 0.02), (0.5 * c, 0.9 * c), centre, 0.08)
    if grade == 4:
        for _ in range(1 + int(rng.random() < 0.5)):
            dy, dx = _DISC[0] + rng.normal(0, 0.08), (_DISC[1] if not flip else -_DISC[1]) + rng.normal(0, 0.08)
            curve = random_walk_curve(rng, (dy, dx), rng.uniform(0, 6.3), 0.25, 0.004, 0.5)
            cx0 = 2 * m - ox if flip else ox  # the curve is drawn unflipped, so mirror the offset
            new = rasterize(curve, res, 0.01 * res, m)[oy : oy + res, cx0 : cx0 + res]
            np.maximum(red, 0.8 * c * new, out=red)
        if rng.random() < 0.5:
            _blots(rng, red, 1, res, (0.07, 0.1), (0.7 * c, 0.9 * c))
    # distractors at every grade: pigment and dust (gray), drusen (pale yellow)
    _dots(rng, gray, rng.poisson(0.5 + 3 * difficulty), res, (0.008, 0.02), (0.25, 0.5))
    _blots(rng, gray, rng.poisson(1.5 * difficulty), res, (0.03, 0.05), (0.1, 0.2))
    _dots(rng, yellow, rng.poisson(0.3 + 3 * difficulty), res, (0.006, 0.012), (0.2, 0.45))

    base = np.array([0.80, 0.38, 0.17], np.float32) * np.exp(rng.normal(0, [0.08, 0.14, 0.2])).astype(np.float32)
    base *= np.float32(rng.uniform(0.75, 1.15))
    yy, xx = grid(res)
    gy, gx = rng.normal(0, 0.15, 2)
    illum = falloff * (1 + np.float32(gy) * yy + np.float32(gx) * xx)
    illum *= 1 + 0.07 * smooth_noise(rng, res, 0.08)
    img = base[:, None, None] * illum[None]
    img *= 1 - (rng.uniform(0.6, 0.95) * vessel)[None] * np.array([0.35, 0.6, 0.55], np.float32)[:, None, None]
    img *= 1 - (0.3 * macula)[None]
    img += disc[None] * (np.array([0.25, 0.32, 0.22], np.float32) * np.float32(rng.uniform(0.7, 1.2)))[:, None, None]
    img *= 1 - red[None] * np.array([0.45, 0.8, 0.75], np.float32)[:, None, None]
    img *= 1 - 0.5 * gray[None]
    ycol = np.array([1.0, 0.88, 0.4], np.float32)[:, None, None] * np.float32(rng.uniform(0.85, 1.05))
    img += yellow[None] * (ycol - img)
    white *= 0.7
    img += white[None] * (np.array([0.92, 0.86, 0.78], np.float32)[:, None, None] - img)
    img *= field[None]
    img += np.float32(0.012 + 0.04 * difficulty) * white_noise(rng, res, 3)
    return img


def generate_retina(
    n: int, res: int, *, seed: int, balance: float, difficulty: float,
    out: np.ndarray | None = None, index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` fundus images uint8 (n, 3, res, res) and their grades int64 (n,).

    Image ``i`` depends only on (seed, i, grade, res, difficulty). With ``index`` only those
    images are rendered, in that order, into ``out`` (len(index), 3, res, res); the grades
    returned are always all n.
    """
    grades = retina_grades(n, balance, seed)
    out = render_images(n, res, 3, seed=seed, salt=0xF0, out=out, index=index,
                        draw=lambda i, rng: render_retina(int(grades[i]), rng, res, difficulty))
    return out, grades
