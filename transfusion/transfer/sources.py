"""Weight sources: torchvision ImageNet weights (timm's pretrained weights for ``timm:NAME``
models, from the Hugging Face cache: :mod:`.timm_weights`), checkpoint files, pretraining runs.

A source is resolved to a :class:`SourceWeights` — a state dict (name → tensor) for one
architecture, plus the input normalisation it was trained with. Every load uses
``torch.load(..., weights_only=True)``: checkpoints are data, never code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from transfusion.models import is_timm_name, model_config

from .checkpoint import is_checkpoint, read_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SourceUnavailable(FileNotFoundError):
    """The requested pretrained weights are not on this machine and cannot be fetched."""


@dataclass
class SourceWeights:
    """Pretrained weights for one architecture.

    ``arch`` is the registry name they fit; ``mean``/``std`` the per-channel input
    normalisation (on [0, 1] pixel values) they were trained with; ``origin`` says where they
    came from (for reports).
    """

    state_dict: dict[str, torch.Tensor]
    arch: str
    origin: str
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    meta: dict = field(default_factory=dict)


def imagenet_file(arch: str) -> tuple[str, Path]:
    """The torchvision weights file name for ``arch`` and where torchvision caches it.

    For ``timm:NAME``: the hub repository and file names, and the cached file when it is on this
    machine, else the repository's folder in the Hugging Face cache (not a file)."""
    if is_timm_name(arch):
        from .timm_weights import timm_weights

        w = timm_weights(arch)
        return w.label, w.path or w.folder
    enum_name = model_config(arch).imagenet_weights
    if enum_name is None:
        raise ValueError(
            f"{arch!r} has no published ImageNet weights; pretrain it yourself with "
            f"`transfusion pretrain {arch} --data folder:/path/to/imagenet/train --out {arch}.pt` "
            f"(or offline: --data synth-natural) and pass --source file:{arch}.pt"
        )
    import torchvision.models as tvm

    weights = tvm.get_weight(enum_name)
    filename = os.path.basename(weights.url)
    return filename, Path(torch.hub.get_dir()) / "checkpoints" / filename


def imagenet_missing(arch: str) -> str:
    """Why ``arch``'s ImageNet file is not usable here: which file, where it must go."""
    if is_timm_name(arch):
        from .timm_weights import timm_weights

        return timm_weights(arch).missing()
    filename, path = imagenet_file(arch)
    return f"ImageNet weights for {arch} ({filename}) are not in {path.parent}"


def downloads_allowed() -> bool:
    """False when the environment sets ``TRANSFUSION_OFFLINE`` to 1/true/yes."""
    return os.environ.get("TRANSFUSION_OFFLINE", "").lower() not in ("1", "true", "yes")


def load_imagenet(arch: str, *, allow_download: bool | None = None) -> SourceWeights:
    """torchvision's ImageNet weights for ``arch`` (resnet18, resnet50, inception_v3, densenet121).

    Uses the file in torchvision's cache when present. Otherwise downloads it, unless
    ``allow_download`` is False (default: False when the environment sets
    ``TRANSFUSION_OFFLINE=1``). Never falls back to random weights: a missing file raises
    :class:`SourceUnavailable` naming the file and the folder to put it in.

    ``timm:NAME``: timm's pretrained weights (the default tag, or NAME's ``.tag``) from the
    Hugging Face cache, with the normalisation of timm's ``pretrained_cfg``.
    """
    if allow_download is None:
        allow_download = downloads_allowed()
    if is_timm_name(arch):
        from .timm_weights import load_timm_weights

        state, mean, std, where = load_timm_weights(arch, allow_download=allow_download)
        return SourceWeights(
            state_dict=state,
            arch=arch,
            origin=f"imagenet:{model_config(arch).imagenet_weights}",
            mean=mean or IMAGENET_MEAN,
            std=std or IMAGENET_STD,
            meta={"file": str(where.path)},
        )
    filename, path = imagenet_file(arch)
    import torchvision.models as tvm

    weights = tvm.get_weight(model_config(arch).imagenet_weights)
    if path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        hint = (
            f"ImageNet weights for {arch} are not cached: place {filename} (from {weights.url}) "
            f"in {path.parent} (torchvision's cache; set TORCH_HOME to move it), "
            f"or pass --source file:PATH with a checkpoint of your own"
        )
        if not allow_download:
            raise SourceUnavailable(hint)
        try:
            state = torch.hub.load_state_dict_from_url(
                weights.url, map_location="cpu", progress=False, weights_only=True
            )
        except Exception as exc:  # network errors come in many types (URLError, OSError, ...)
            raise SourceUnavailable(f"{hint} (download failed: {exc})") from exc
    transforms = weights.transforms()
    return SourceWeights(
        state_dict=dict(state),
        arch=arch,
        origin=f"imagenet:{model_config(arch).imagenet_weights}",
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        meta={"file": str(path)},
    )


def load_checkpoint_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a plain state dict or a transfusion checkpoint; returns (state_dict, metadata).

    Metadata is ``{}`` for a plain state dict, else the checkpoint's ``spec``, ``arch``,
    ``mean``, ``std``, ``task``.
    """
    obj = read_file(path)
    if is_checkpoint(obj):
        meta = {k: obj.get(k) for k in ("spec", "arch", "mean", "std", "task", "step")}
        return dict(obj["state_dict"]), meta
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj), {}
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            return dict(obj[key]), {}
    raise ValueError(f"{path} holds neither a state dict nor a transfusion checkpoint")


def load_source(spec: str, arch: str) -> SourceWeights:
    """Resolve a source spec for architecture ``arch``.

    ``spec``: ``imagenet`` (torchvision weights), ``file:PATH`` or a bare path (a state dict or
    a checkpoint written by ``transfusion train``/``pretrain``).
    """
    if spec == "imagenet":
        return load_imagenet(arch)
    path = spec[len("file:"):] if spec.startswith("file:") else spec
    if not spec.startswith("file:") and not Path(path).suffix:
        raise ValueError(f"unknown weight source {spec!r}; use 'imagenet' or 'file:PATH'")
    state, meta = load_checkpoint_file(path)
    src_arch = meta.get("arch") or arch
    if meta.get("arch") and meta["arch"] != arch:
        raise ValueError(
            f"checkpoint {path} holds a {meta['arch']} model, but {arch} weights are needed"
        )
    return SourceWeights(
        state_dict=state,
        arch=src_arch,
        origin=f"file:{Path(path).resolve()}",
        mean=tuple(meta.get("mean") or IMAGENET_MEAN),
        std=tuple(meta.get("std") or IMAGENET_STD),
        meta=meta,
    )
