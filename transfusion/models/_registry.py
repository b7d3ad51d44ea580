"""Registry of model builder functions (one plain function per named model)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Static facts about a registered model.

    ``default_res_px`` is the input size the architecture was designed for (Inception-v3's
    299 px lives here, not in ``if`` branches); ``family`` groups models for reports;
    ``imagenet_weights`` names the torchvision weights enum entry, if one exists.
    """

    name: str
    family: str
    default_res_px: int = 224
    imagenet_weights: str | None = None
    first_conv: str = "conv1"
    classifier: str = "fc"


Builder = Callable[..., nn.Module]
_BUILDERS: dict[str, Builder] = {}
_CONFIGS: dict[str, ModelConfig] = {}


def register_model(config: ModelConfig) -> Callable[[Builder], Builder]:
    """Decorator registering ``fn(num_classes, in_chans, **kwargs) -> nn.Module`` as ``config.name``."""

    def wrap(fn: Builder) -> Builder:
        if config.name in _BUILDERS:
            raise ValueError(f"model {config.name!r} is already registered")
        _BUILDERS[config.name] = fn
        _CONFIGS[config.name] = config
        return fn

    return wrap


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_BUILDERS)


def _check_name(name: str) -> None:
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")


def model_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of a registered model."""
    _check_name(name)
    return _CONFIGS[name]


def create_model(name: str, *, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """Build a registered model with ``num_classes`` outputs and ``in_chans`` input channels.

    Keyword arguments that are ``None`` are dropped, so a CLI flag overrides a builder default
    only when given. The model carries its registry name as ``model.transfusion_name``.
    """
    _check_name(name)
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if int(in_chans) < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    model = _BUILDERS[name](num_classes=int(num_classes), in_chans=int(in_chans), **kwargs)
    model.transfusion_name = name
    model.transfusion_kwargs = dict(kwargs)
    return model


def _fits(name: str, res: int, in_chans: int) -> bool:
    with torch.device("meta"):
        model = _BUILDERS[name](num_classes=2, in_chans=in_chans)
        model.eval()
        try:
            model(torch.empty(1, in_chans, res, res))
        except RuntimeError:
            return False
    return True


@cache
def min_input_px(name: str, in_chans: int = 3) -> int:
    """Smallest square input side (px) the model accepts, found by shape propagation on the
    meta device (no memory, no arithmetic)."""
    _check_name(name)
    lo, hi = 1, 1024
    if not _fits(name, hi, in_chans):
        raise ValueError(f"model {name!r} does not accept even {hi} px inputs")
    while lo < hi:
        mid = (lo + hi) // 2
        if _fits(name, mid, in_chans):
            hi = mid
        else:
            lo = mid + 1
    return lo


def check_input_size(name: str, res_px: int, in_chans: int = 3) -> None:
    """Raise ``ValueError`` if ``name`` cannot take ``res_px`` × ``res_px`` inputs; no compute."""
    need = min_input_px(name, in_chans)
    if int(res_px) < need:
        raise ValueError(
            f"model {name!r} needs inputs of at least {need} px, got {res_px} px; "
            f"use --res {need} or larger (its design size is {model_config(name).default_res_px} px)"
        )
