"""Image corruptions at five severities, for robustness evaluation without retraining.

Eight corruptions: Gaussian and speckle noise, defocus and motion blur, JPEG compression,
pixelation, brightness and contrast (both lowered). ``corrupt(images, name, severity, ...)``
takes uint8 (N, C, H, W) images and returns new uint8 images of the same shape; severity 0 is
the identity, 1..5 grow in strength. Noise and the motion direction (nothing else) are random,
drawn from a generator seeded by (``seed``, corruption, image index) — not by severity, so the
severities of one image differ only in strength: the same image, corruption, severity and seed
give the same bytes every time, whatever the batch.

Severity parameters per modality are MedMNIST-C's published values (Di Salvo, Doerrich &
Ledig, "MedMNIST-C", 2024): ``fundus`` from its RetinaMNIST table, ``xray`` from its ChestMNIST
table. MedMNIST-C gives chest X-rays no defocus or motion blur (only a Gaussian blur); here X-rays
use the fundus blur values, and say so in :data:`NOTES`. Blur radii are MedMNIST-C's pixels at
224 px, scaled by ``res / 224`` to the images' side. Meanings: noise — standard deviation on
[0, 1] pixels (speckle: of the multiplicative factor); defocus — disk radius (px) and the
Gaussian softening of its edge (px); motion — streak length (px) and the Gaussian weight's
sigma along it, at an angle drawn in [−45°, 45°]; JPEG — quality; pixelate — the fraction of the
side the image is shrunk to (box filter) before it is scaled back; brightness / contrast —
torchvision's ``adjust_brightness`` / ``adjust_contrast`` factor.
"""

from __future__ import annotations

import zlib

import numpy as np

CORRUPTIONS = ("gaussian_noise", "speckle_noise", "defocus_blur", "motion_blur", "jpeg", "pixelate",
               "brightness", "contrast")
SEVERITIES = (1, 2, 3, 4, 5)
MODALITIES = ("fundus", "xray")

_FUNDUS_BLUR = {
    "defocus_blur": ((4, 0.1), (5, 0.2), (6, 0.3), (7, 0.4), (8, 0.5)),
    "motion_blur": ((8, 5), (15, 5), (15, 8), (15, 12), (20, 15)),
}
#: modality → corruption → the five severities' parameters (MedMNIST-C's tables)
PARAMETERS: dict[str, dict[str, tuple]] = {
    "fundus": {
        "gaussian_noise": (0.04, 0.08, 0.12, 0.16, 0.20),
        "speckle_noise": (0.10, 0.15, 0.20, 0.25, 0.30),
        **_FUNDUS_BLUR,
        "jpeg": (30, 25, 20, 10, 5),
        "pixelate": (0.8, 0.6, 0.5, 0.4, 0.35),
        "brightness": (0.9, 0.8, 0.7, 0.6, 0.5),
        "contrast": (0.9, 0.8, 0.7, 0.6, 0.4),
    },
    "xray": {
        "gaussian_noise": (0.04, 0.08, 0.12, 0.18, 0.26),
        "speckle_noise": (0.05, 0.15, 0.20, 0.35, 0.45),
        **_FUNDUS_BLUR,
        "jpeg": (50, 30, 15, 10, 7),
        "pixelate": (0.30, 0.25, 0.20, 0.15, 0.10),
        "brightness": (0.9, 0.8, 0.7, 0.6, 0.5),
        "contrast": (0.9, 0.8, 0.7, 0.6, 0.4),
    },
}
NOTES = {"xray": "defocus and motion blur use MedMNIST-C's fundus values (its chest X-ray table has only a "
                 "Gaussian blur)"}


def check(name: str, severity: int, modality: str = "fundus") -> None:
    """``ValueError`` naming the bad value and the allowed ones."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 5:
        raise ValueError(f"corruption severity must be a whole number 0..5 (0 = none), got {severity!r}")
    if modality not in MODALITIES:
        raise ValueError(f"unknown corruption modality {modality!r}; known: {', '.join(MODALITIES)}")


def _rng(seed: int, name: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()), int(index)])


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Each channel of float (C, H, W) convolved with ``kernel`` (edges mirrored)."""
    from scipy import ndimage

    return np.stack([ndimage.convolve(ch, kernel, mode="reflect") for ch in img])


def _disk(radius: float, soften: float) -> np.ndarray:
    """A normalised disk kernel of ``radius`` px whose edge pixels weigh by the fraction of them
    inside the circle (8 × 8 supersampling), so sub-pixel radii still differ; then softened by
    a Gaussian of ``soften`` px."""
    half = int(np.ceil(radius)) + 1
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    grid = np.arange(-half, half + 1)
    ys = (grid[:, None] + sub[None, :]).reshape(-1)
    inside = (ys[:, None] ** 2 + ys[None, :] ** 2 <= radius * radius).astype(np.float64)
    k = inside.reshape(len(grid), 8, len(grid), 8).mean(axis=(1, 3))
    if soften > 0:
        from scipy import ndimage

        k = ndimage.gaussian_filter(k, soften)
    return k / k.sum()


def _streak(length: float, sigma: float, angle_deg: float) -> np.ndarray:
    """A one-sided motion streak: Gaussian weights (sigma px) along ``length`` px at the angle."""
    n = max(2, int(np.ceil(length)) + 1)
    half = n
    k = np.zeros((2 * half + 1, 2 * half + 1))
    t = np.deg2rad(angle_deg)
    for i in range(n):
        w = np.exp(-0.5 * (i / max(sigma, 1e-6)) ** 2)
        y, x = half - int(round(i * np.sin(t))), half + int(round(i * np.cos(t)))
        k[y, x] += w
    return k / k.sum()


def _one(img: np.ndarray, name: str, p: object, scale: float, rng: np.random.Generator) -> np.ndarray:
    """One uint8 (C, H, W) image corrupted with parameter ``p``."""
    import torch
    from torchvision.transforms.v2 import functional as F

    x = img.astype(np.float64) / 255.0
    if name == "gaussian_noise":
        out = x + rng.normal(0.0, float(p), x.shape)
    elif name == "speckle_noise":
        out = x + x * rng.normal(0.0, float(p), x.shape)
    elif name == "defocus_blur":
        radius, soften = p  # type: ignore[misc]
        out = _filter(x, _disk(radius * scale, soften * scale))
    elif name == "motion_blur":
        length, sigma = p  # type: ignore[misc]
        out = _filter(x, _streak(length * scale, sigma * scale, rng.uniform(-45.0, 45.0)))
    elif name == "pixelate":
        from PIL import Image

        h, w = img.shape[1:]
        small = (max(1, int(w * float(p))), max(1, int(h * float(p))))
        out = np.stack([np.asarray(Image.fromarray(ch).resize(small, Image.Resampling.BOX)
                                   .resize((w, h), Image.Resampling.BOX)) for ch in img]) / 255.0
    else:  # torchvision's uint8 transforms
        t = torch.from_numpy(np.array(img))  # a writable copy
        if name == "jpeg":
            t = F.jpeg(t, quality=int(p))
        elif name == "brightness":
            t = F.adjust_brightness(t, float(p))
        else:
            t = F.adjust_contrast(t, float(p)) if img.shape[0] in (1, 3) else t
        return t.numpy()
    return np.clip(np.rint(np.clip(out, 0.0, 1.0) * 255.0), 0, 255).astype(np.uint8)


def corrupt(images: np.ndarray, name: str, severity: int, *, modality: str = "fundus", seed: int = 0,
            start: int = 0) -> np.ndarray:
    """``images`` uint8 (N, C, H, W) under corruption ``name`` at ``severity`` (0 = unchanged
    copy). ``start``: the index of ``images[0]`` in its split, so that a chunk gets the same
    noise as the whole split would."""
    check(name, severity, modality)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    if severity == 0:
        return images.copy()
    p = PARAMETERS[modality][name][severity - 1]
    scale = images.shape[-1] / 224.0
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = _one(img, name, p, scale, _rng(seed, name, start + i))
    return out


_XRAY = ("synth-cxr", "chexpert", "medmnist:chestmnist", "medmnist:pneumoniamnist")
_FUNDUS = ("synth-retina", "aptos", "medmnist:retinamnist")


def modality_of(dataset: str, in_chans: int) -> str:
    """The severity table for a dataset spec: ``xray`` for chest X-ray kinds (synth-cxr, chexpert,
    ChestMNIST, PneumoniaMNIST), ``fundus`` for fundus kinds (synth-retina, aptos, RetinaMNIST);
    otherwise by channels (1 → xray, 3 → fundus)."""
    head = dataset.split("?")[0].lower()
    if any(head == k or head.startswith(k + ":") for k in _XRAY):
        return "xray"
    if any(head == k or head.startswith(k + ":") for k in _FUNDUS):
        return "fundus"
    return "xray" if in_chans == 1 else "fundus"
