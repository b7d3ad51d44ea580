"""Decode image files once into uint8 (C, res, res) arrays, with a policy for bad files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")
FITS = ("stretch", "crop", "pad")
BAD_IMAGE_POLICIES = ("fail", "skip")


class ImageReadError(ValueError):
    """An image file that is missing, unreadable or corrupt (the message names the path)."""


def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8))
    return img.convert("L" if channels == 1 else "RGB")


def _trim_dark_border(img: Image.Image) -> Image.Image:
    """Crop to the bounding box of pixels brighter than 7% of full scale (fundus black border)."""
    box = img.convert("L").point(lambda v: 255 if v > 18 else 0).getbbox()
    return img.crop(box) if box else img


def image_channels(paths: Sequence[str | Path], bad_images: str = "fail") -> int:
    """1 for a grayscale file, 3 otherwise, read from the header of the first readable file of
    ``paths``. An unreadable file raises :class:`ImageReadError` naming it — unless
    ``bad_images="skip"``, which looks on to the next (the decode then skips and counts it)."""
    for path in paths:
        try:
            with Image.open(path) as img:
                return 1 if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else 3
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            if bad_images != "skip":
                raise ImageReadError(f"cannot read image {path}: {exc} (bad_images=skip skips such files)") from None
    raise ImageReadError(f"none of the {len(paths)} image files could be read")


def decode_image(path: str | Path, res: int, channels: int, fit: str = "stretch", trim: bool = False) -> np.ndarray:
    """Read ``path`` and return uint8 (channels, res, res).

    ``fit``: ``stretch`` resizes the whole image to a square; ``crop`` takes the central square
    first; ``pad`` pads to a square with black first. ``trim`` first cuts a dark border away.
    Raises :class:`ImageReadError` naming the path if the file is missing or cannot be decoded.
    """
    try:
        with Image.open(path) as img:
            if img.format == "JPEG" and not trim:
                img.draft("L" if channels == 1 else "RGB", (res, res))
            img = _to_mode(img, channels)
            img.load()
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"cannot read image {path}: {exc}") from None
    if trim:
        img = _trim_dark_border(img)
    w, h = img.size
    if fit == "crop" and w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    elif fit == "pad" and w != h:
        s = max(w, h)
        canvas = Image.new(img.mode, (s, s))
        canvas.paste(img, ((s - w) // 2, (s - h) // 2))
        img = canvas
    if img.size != (res, res):
        img = img.resize((res, res), Image.Resampling.BILINEAR, reducing_gap=2.0)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def decode_into(
    paths: Sequence[str | Path],
    out: np.ndarray,
    *,
    fit: str = "stretch",
    trim: bool = False,
    bad_images: str = "fail",
    workers: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Decode ``paths`` into ``out`` uint8 (N, C, res, res) with a few threads.

    Returns a bool (N,) mask of images that were read and a list of problem strings. With
    ``bad_images="fail"`` the first bad file raises :class:`ImageReadError`; with ``"skip"``
    it is left black, marked False and reported.
    """
    if bad_images not in BAD_IMAGE_POLICIES:
        raise ValueError(f"bad_images must be one of {BAD_IMAGE_POLICIES}, got {bad_images!r}")
    n, c, res, _ = out.shape
    ok = np.ones(n, bool)
    problems: list[str] = []
    workers = workers or min(4, os.cpu_count() or 1)

    def one(i: int) -> str | None:
        try:
            out[i] = decode_image(paths[i], res, c, fit, trim)
        except ImageReadError as exc:
            if bad_images == "fail":
                raise
            ok[i] = False
            return f"skipped: {exc}"
        return None

    if workers <= 1 or n < 16:
        results = [one(i) for i in range(n)]
    else:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, range(n), chunksize=32))
    problems.extend(r for r in results if r)
    return ok, problems


def resample_through(images: np.ndarray, px: int) -> np.ndarray:
    """uint8 images (N, C, H, W) taken down to ``px`` × ``px`` (bilinear with antialiasing: an
    area-like low-pass) and back up to H × W (bilinear): what upsampling a ``px``-pixel image to
    the model's resolution gives — the detail finer than ``px`` is gone."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).float()
    small = F.interpolate(x, size=(px, px), mode="bilinear", antialias=True, align_corners=False)
    big = F.interpolate(small, size=tuple(images.shape[2:]), mode="bilinear", align_corners=False)
    return big.round().clamp(0, 255).to(torch.uint8).numpy()
