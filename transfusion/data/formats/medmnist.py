"""``medmnist:NAME[:PATH]`` — MedMNIST v2 / MedMNIST+ ``.npz`` files.

A file holds ``train_images``, ``train_labels``, ``val_images``, ``val_labels``, ``test_images``,
``test_labels`` (the official split): images uint8 (N, H, W) or (N, H, W, 3), labels (N, 1)
class indices or (N, L) 0/1. ``size=28`` reads ``NAME.npz``; 64, 128 and 224 read
``NAME_<size>.npz`` (MedMNIST+). ``PATH`` is the folder holding it (default ``~/.medmnist``,
the ``medmnist`` package's own default) or the ``.npz`` file itself. When the file is missing
and the ``medmnist`` package is installed, it is downloaded through that package; otherwise
the error names the file and the folder to place it in. Task kinds and label names come from
``medmnist.INFO`` when importable, else from the built-in table below.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from .._cache import SplitWriter
from .._registry import SEED_OPTION, BuildResult, DatasetKind, register_kind
from .._spec import Option, ParsedSpec, absolute_path
from ..base import TaskSpec
from ._common import stat_fingerprint

DEFAULT_ROOT = "~/.medmnist"
SIZES = (28, 64, 128, 224)
KEYS = ("train_images", "train_labels", "val_images", "val_labels", "test_images", "test_labels")
ZENODO = "https://zenodo.org/records/10519652"

_ORGAN = ("bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver",
          "lung-left", "lung-right", "pancreas", "spleen")
# name: (MedMNIST task string, channels, label names) for the 12 2-D datasets
BUILTIN_INFO: dict[str, tuple[str, int, tuple[str, ...]]] = {
    "pathmnist": ("multi-class", 3, ("adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
                                     "normal colon mucosa", "cancer-associated stroma", "colorectal adenocarcinoma epithelium")),
    "chestmnist": ("multi-label, binary-class", 1, ("atelectasis", "cardiomegaly", "effusion", "infiltration", "mass",
                                                    "nodule", "pneumonia", "pneumothorax", "consolidation", "edema",
                                                    "emphysema", "fibrosis", "pleural", "hernia")),
    "dermamnist": ("multi-class", 3, ("actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
                                      "benign keratosis-like lesions", "dermatofibroma", "melanoma",
                                      "melanocytic nevi", "vascular lesions")),
    "octmnist": ("multi-class", 1, ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal")),
    "pneumoniamnist": ("binary-class", 1, ("normal", "pneumonia")),
    "retinamnist": ("ordinal-regression", 3, ("0", "1", "2", "3", "4")),
    "breastmnist": ("binary-class", 1, ("malignant", "normal, benign")),
    "bloodmnist": ("multi-class", 3, ("basophil", "eosinophil", "erythroblast", "immature granulocytes", "lymphocyte",
                                      "monocyte", "neutrophil", "platelet")),
    "tissuemnist": ("multi-class", 1, ("Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule",
                                       "Glomerular endothelial cells", "Interstitial endothelial cells", "Leukocytes",
                                       "Podocytes", "Proximal Tubule Segments", "Thick Ascending Limb")),
    "organamnist": ("multi-class", 1, _ORGAN),
    "organcmnist": ("multi-class", 1, _ORGAN),
    "organsmnist": ("multi-class", 1, _ORGAN),
}
_KIND = {"binary-class": "binary", "multi-class": "multiclass", "ordinal-regression": "multiclass",
         "multi-label, binary-class": "multilabel"}


def medmnist_info(name: str) -> tuple[str, int, tuple[str, ...]]:
    """(MedMNIST task string, channels, label names) of dataset ``name``."""
    try:
        import medmnist  # type: ignore[import-not-found]

        meta = medmnist.INFO[name]
        labels = tuple(meta["label"][str(i)] for i in range(len(meta["label"])))
        return meta["task"], int(meta["n_channels"]), labels
    except (ImportError, KeyError):
        pass
    if name not in BUILTIN_INFO:
        raise ValueError(f"unknown MedMNIST dataset {name!r}; known: {', '.join(sorted(BUILTIN_INFO))}")
    return BUILTIN_INFO[name]


def _split_target(target: str) -> tuple[str, str]:
    name, _, path = target.partition(":")
    return name.strip().lower(), path.strip()


def file_name(name: str, size: int) -> str:
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def _file(parsed: ParsedSpec) -> Path:
    name, path = _split_target(parsed.target)
    p = Path(path)
    return p if p.suffix == ".npz" else p / file_name(name, parsed["size"])


def _finalize(parsed: ParsedSpec) -> ParsedSpec:
    name, path = _split_target(parsed.target)
    medmnist_info(name)  # validates the name
    path = absolute_path(path or os.environ.get("MEDMNIST_ROOT", DEFAULT_ROOT))
    opts = dict(parsed.options)
    if opts["size"] not in SIZES:
        raise ValueError(f"medmnist size={opts['size']} is not a MedMNIST size; expected one of {SIZES}")
    if opts["res"] is None:
        opts["res"] = opts["size"]
    return ParsedSpec(parsed.kind, f"{name}:{path}", opts)


def _fingerprint(parsed: ParsedSpec) -> str:
    return stat_fingerprint([_file(parsed)])


def _download(name: str, size: int, folder: Path) -> str | None:
    """Try the medmnist package; returns None on success or the reason it failed."""
    try:
        import medmnist  # type: ignore[import-not-found]
    except ImportError:
        return "the medmnist package is not installed (pip install 'transfusion[medmnist]')"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        cls = getattr(medmnist, medmnist.INFO[name]["python_class"])
        kwargs = {} if size == 28 else {"size": size}
        cls(split="train", root=str(folder), download=True, **kwargs)
    except Exception as exc:  # network errors come in many types; report the cause
        return f"download through medmnist failed ({type(exc).__name__}: {exc})"
    return None


def _resize(images: np.ndarray, res: int) -> np.ndarray:
    """uint8 (N, C, H, W) → (N, C, res, res), bilinear (antialiased when shrinking)."""
    n, c = images.shape[:2]
    out = np.empty((n, c, res, res), np.uint8)
    for i in range(n):
        for j in range(c):
            img = Image.fromarray(images[i, j]).resize((res, res), Image.Resampling.BILINEAR)
            out[i, j] = np.asarray(img)
    return out


# what a truncated or corrupt .npz raises, from the zip container or a member's data
_UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def _unreadable(path: Path, exc: BaseException) -> str:
    return (f"cannot read MedMNIST file {path} ({type(exc).__name__}: {exc}); it is truncated or not a "
            f".npz — download it again from {ZENODO}")


def _build(parsed: ParsedSpec, writer: SplitWriter) -> BuildResult:
    name, _ = _split_target(parsed.target)
    path = _file(parsed)
    if not path.is_file():
        why = _download(name, parsed["size"], path.parent) if parsed["download"] else "download=0"
        if not path.is_file():
            raise FileNotFoundError(
                f"MedMNIST file {path.name} not found in {path.parent} ({why}). Place {path.name} in "
                f"{path.parent} (from {ZENODO}), or give its folder as medmnist:{name}:/path/to/folder"
            )
    try:
        data = np.load(path)
        missing = [k for k in KEYS if k not in data.files]
    except (*_UNREADABLE, AttributeError) as exc:  # AttributeError: a plain .npy has no .files
        raise ValueError(_unreadable(path, exc)) from None
    if missing:
        raise ValueError(f"{path} is missing array(s) {', '.join(missing)}; expected {', '.join(KEYS)}")
    task_str, _, labels = medmnist_info(name)
    kind = _KIND[task_str]
    task = TaskSpec(kind, labels, f"class 1 ({labels[1]})" if kind == "binary" else "")
    res = parsed["res"]
    chans = None
    for split in ("train", "val", "test"):
        try:
            images = np.asarray(data[f"{split}_images"])
            y = np.asarray(data[f"{split}_labels"])
        except _UNREADABLE as exc:
            raise ValueError(_unreadable(path, exc)) from None
        if len(images) == 0 or len(y) == 0:
            raise ValueError(f"{path}: {split}_images has {len(images)} images and {split}_labels {len(y)} labels; "
                             "every split needs at least one — is this the right file?")
        if images.dtype != np.uint8:
            raise ValueError(f"{path}: {split}_images has dtype {images.dtype}; expected uint8")
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        chans = images.shape[1]
        y = y.reshape(len(y), -1)
        if kind == "multilabel":
            if y.shape[1] != len(labels) or not np.isin(y, (0, 1)).all():
                raise ValueError(f"{path}: {split}_labels must be (N, {len(labels)}) 0/1 for {name}; got shape {y.shape}, values {np.unique(y)[:10]}")
            targets = y.astype(np.float32)
        else:
            if y.shape[1] != 1 or y.min() < 0 or y.max() >= len(labels):
                raise ValueError(f"{path}: label out of range in {split}_labels (min {y.min()}, max {y.max()}); expected 0..{len(labels) - 1}")
            targets = y[:, 0].astype(np.int64)
        if len(targets) != len(images):
            raise ValueError(f"{path}: {len(images)} {split}_images but {len(targets)} {split}_labels")
        if images.shape[2:] != (res, res):
            images = _resize(images, res)
        out = writer.images(split, *images.shape)
        out[:] = images
        writer.labels(split, targets, None, np.array([f"{split}/{i}" for i in range(len(targets))]))
    return BuildResult(task, int(chans), {"source": str(path), "medmnist_task": task_str})


register_kind(DatasetKind(
    name="medmnist",
    summary="MedMNIST v2 / MedMNIST+ .npz (official split), e.g. medmnist:pneumoniamnist",
    options={
        "size": Option(int, 28, "MedMNIST image size of the file: 28, 64, 128 or 224"),
        "res": Option(int, None, "image side in px (default: size)", lo=4, hi=4096),
        "seed": SEED_OPTION,
        "download": Option(bool, True, "download through the medmnist package if the file is missing"),
    },
    build=_build,
    target="name",
    finalize=_finalize,
    fingerprint=_fingerprint,
    example="medmnist:pneumoniamnist[:/path/to/folder]",
))
