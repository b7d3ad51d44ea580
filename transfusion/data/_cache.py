"""The uint8 split cache: one folder per (canonical spec, source fingerprint, format version).

Layout of ``<cache_dir>/data/<kind>-<key16>/``::

    meta.json                 canonical spec, task, info, split names
    <split>.images.npy        uint8 (N, C, H, W), opened as a read-only memmap
    <split>.targets.npy       int64 (N,) or float32 (N, L)
    <split>.mask.npy          bool (N, L), multilabel with uncertain labels only
    <split>.ids.npy           str (N,), optional

A cache folder is built under a temporary name and renamed into place when complete, so a
crash never leaves a half-written entry and concurrent builders do not corrupt each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .base import ArraySplit, Dataset, TaskSpec

CACHE_FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


def default_cache_dir() -> Path:
    """``$TRANSFUSION_CACHE`` if set, else ``~/.cache/transfusion``."""
    env = os.environ.get("TRANSFUSION_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/transfusion").expanduser()


def cache_key(canonical: str, fingerprint: str, generator_version: int) -> str:
    """Hex digest identifying a cache entry."""
    text = json.dumps([CACHE_FORMAT_VERSION, generator_version, canonical, fingerprint])
    return hashlib.sha256(text.encode()).hexdigest()


class SplitWriter:
    """Collects the arrays of one cache entry in a temporary folder (see module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._images: dict[str, np.memmap] = {}
        self._labels: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}

    def images(self, split: str, n: int, c: int, h: int, w: int) -> np.ndarray:
        """A writable uint8 (n, c, h, w) memmap for ``split``, zero-filled."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}")
        arr = np.lib.format.open_memmap(
            self.folder / f"{split}.images.npy", mode="w+", dtype=np.uint8, shape=(n, c, h, w)
        )
        self._images[split] = arr
        return arr

    def labels(
        self,
        split: str,
        targets: np.ndarray,
        mask: np.ndarray | None = None,
        ids: np.ndarray | None = None,
    ) -> None:
        """Targets (and optional mask / ids) of ``split``; lengths must match its images."""
        self._labels[split] = (targets, mask, ids)

    def keep(self, split: str, keep: np.ndarray) -> None:
        """Drop the rows of ``split`` where ``keep`` is False (images, targets, mask, ids)."""
        keep = np.asarray(keep, bool)
        if keep.all():
            return
        images = np.array(self._images[split][keep])
        self._images[split].flush()
        del self._images[split]
        arr = self.images(split, *images.shape)
        arr[:] = images
        if split in self._labels:
            t, m, i = self._labels[split]
            self._labels[split] = (t[keep], None if m is None else m[keep], None if i is None else i[keep])

    def transform_images(self, fn: Any, chunk: int = 256) -> None:
        """Replace every split's images by ``fn(images)`` (uint8 (n, C, H, W) in, the same shape
        out), ``chunk`` images at a time."""
        for arr in self._images.values():
            for i in range(0, len(arr), chunk):
                arr[i:i + chunk] = fn(np.asarray(arr[i:i + chunk]))

    def finish(self, meta: dict[str, Any]) -> None:
        """Flush every array and write ``meta.json`` (the completion marker)."""
        for split, arr in self._images.items():
            arr.flush()
            targets, mask, ids = self._labels[split]
            if len(targets) != len(arr):
                raise RuntimeError(f"split {split}: {len(arr)} images but {len(targets)} targets")
            np.save(self.folder / f"{split}.targets.npy", np.ascontiguousarray(targets))
            if mask is not None:
                np.save(self.folder / f"{split}.mask.npy", np.ascontiguousarray(mask, dtype=bool))
            if ids is not None:
                np.save(self.folder / f"{split}.ids.npy", np.asarray(ids).astype(str))
        meta = {**meta, "splits": [s for s in SPLITS if s in self._images]}
        (self.folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        self._images.clear()


def entry_dir(cache_dir: Path, kind: str, key: str) -> Path:
    return cache_dir / "data" / f"{kind}-{key[:16]}"


def build_entry(final: Path, build) -> None:
    """Run ``build(writer) -> meta`` in a temporary folder and rename it to ``final``.

    If another process finished the same entry first, ours is discarded.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
    try:
        writer = SplitWriter(tmp)
        meta = build(writer)
        writer.finish(meta)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "meta.json").exists():
                if final.exists():  # an incomplete leftover: replace it
                    shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def is_complete(folder: Path) -> bool:
    return (folder / "meta.json").is_file()


def open_entry(folder: Path) -> Dataset:
    """Open a complete cache entry; images are read-only memmaps."""
    meta = json.loads((folder / "meta.json").read_text())
    splits = {}
    for split in meta["splits"]:
        images = np.load(folder / f"{split}.images.npy", mmap_mode="r")
        targets = np.load(folder / f"{split}.targets.npy")
        mask_path = folder / f"{split}.mask.npy"
        ids_path = folder / f"{split}.ids.npy"
        mask = np.load(mask_path) if mask_path.exists() else None
        ids = np.load(ids_path) if ids_path.exists() else None
        splits[split] = ArraySplit(images, targets, mask, ids)
    task = TaskSpec.from_dict(meta["task"])
    info = dict(meta.get("info", {}))
    info["cache_dir"] = str(folder)
    return Dataset(meta["name"], task, splits, int(meta["res"]), int(meta["in_chans"]), info)
