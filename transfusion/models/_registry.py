"""Registry of models: a catalogue of :class:`ModelConfig` facts, readable without torch, and one
plain builder function per named model, imported only when a model is built.

Built-in models are declared in :mod:`.catalog` with the module that registers their builder;
``list_models``, ``model_config`` and ``check_input_size`` answer from the catalogue (so suite
validation and ``--dry-run`` never load torch), and ``create_model`` imports the builder's module
on first use. :func:`register_model` adds a model of your own (config and builder at once).

Names ``timm:NAME`` (any model of the optional package timm, see :mod:`.timm_models`) are resolved
on demand: their config comes from timm's ``pretrained_cfg`` and their builder is
``timm.create_model``; timm is imported only for those names, and :func:`list_models` keeps
listing the built-in models only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Static facts about a registered model.

    ``default_res_px`` is the input size the architecture was designed for (Inception-v3's
    299 px lives here, not in ``if`` branches); ``family`` groups models for reports;
    ``imagenet_weights`` names the torchvision weights enum entry, if one exists;
    ``first_conv`` / ``classifier`` name those modules; ``min_input_px`` is the smallest
    square input side the model accepts and ``num_stages`` the length of its stage view (head
    included) — both declared for the built-in models (tests check them against the built
    models) and found by building the model when ``None``; ``fixed_input_px`` is set for a model
    that takes only one input side (a timm ViT built for 224 px).
    """

    name: str
    family: str
    default_res_px: int = 224
    imagenet_weights: str | None = None
    first_conv: str | None = "conv1"
    classifier: str = "fc"
    min_input_px: int | None = None
    num_stages: int | None = None
    fixed_input_px: int | None = None


Builder = Callable[..., Any]  # fn(*, num_classes, in_chans, **kwargs) -> nn.Module
_BUILDERS: dict[str, Builder] = {}
_CONFIGS: dict[str, ModelConfig] = {}
_PROVIDERS: dict[str, str] = {}  # declared name -> module that registers its builder

#: prefix of the names resolved through timm (``timm:mobilenetv3_small_100``)
TIMM_PREFIX = "timm:"


def is_timm_name(name: object) -> bool:
    """Whether ``name`` is a ``timm:NAME`` model name (resolved through the optional timm)."""
    return isinstance(name, str) and name.startswith(TIMM_PREFIX)


def _timm() -> Any:
    """:mod:`.timm_models`, imported on the first ``timm:`` name."""
    return importlib.import_module("transfusion.models.timm_models")


def declare_models(module: str, configs: Iterable[ModelConfig]) -> None:
    """Declare models whose builders ``module`` registers (with :func:`register_builder`) when
    it is imported. Used by the catalogue of built-in models."""
    for config in configs:
        if config.name in _CONFIGS:
            raise ValueError(f"model {config.name!r} is already declared")
        _CONFIGS[config.name] = config
        _PROVIDERS[config.name] = module


def register_builder(name: str) -> Callable[[Builder], Builder]:
    """Decorator registering the builder of a model declared in the catalogue."""

    def wrap(fn: Builder) -> Builder:
        if name not in _CONFIGS:
            raise ValueError(f"model {name!r} is not declared; use register_model(ModelConfig(...)) for a new model")
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is already registered")
        _BUILDERS[name] = fn
        return fn

    return wrap


def register_model(config: ModelConfig) -> Callable[[Builder], Builder]:
    """Decorator registering ``fn(*, num_classes, in_chans, **kwargs) -> nn.Module`` as a new model
    ``config.name``; refuses a name that exists."""

    def wrap(fn: Builder) -> Builder:
        if config.name in _CONFIGS or config.name in _BUILDERS:
            raise ValueError(f"model {config.name!r} is already registered")
        _CONFIGS[config.name] = config
        _BUILDERS[config.name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """Names of all registered models, sorted (``timm:NAME`` models are not listed: any of timm's
    models can be named that way)."""
    return sorted(_CONFIGS)


def _check_name(name: str) -> None:
    if is_timm_name(name):
        _timm().timm_config(name)  # a ValueError for a missing timm or a name timm does not know
        return
    if name not in _CONFIGS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())} "
                         f"(or any timm model as timm:NAME)")


def is_model(name: str) -> bool:
    """Whether ``name`` names a model :func:`create_model` can build (for ``timm:NAME``: timm is
    installed and knows NAME)."""
    try:
        _check_name(name)
    except ValueError:
        return False
    return True


def model_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of a registered model, or of ``timm:NAME`` (from timm's
    ``pretrained_cfg``; raises ``ValueError`` when timm is missing or does not know NAME)."""
    if is_timm_name(name):
        return _timm().timm_config(name)
    _check_name(name)
    return _CONFIGS[name]


def _builder(name: str) -> Builder:
    if is_timm_name(name):
        return _timm().timm_builder(name)
    _check_name(name)
    if name not in _BUILDERS:
        importlib.import_module(_PROVIDERS[name])  # registers the builder
    return _BUILDERS[name]


def create_model(name: str, *, num_classes: int, in_chans: int = 3, **kwargs: Any) -> Any:
    """Build a registered model (an ``nn.Module``) with ``num_classes`` outputs and ``in_chans``
    input channels.

    Keyword arguments that are ``None`` are dropped, so a CLI flag overrides a builder default
    only when given. The model carries its registry name as ``model.transfusion_name``.
    """
    build = _builder(name)
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if int(in_chans) < 1:
        raise ValueError(f"in_chans must be >= 1, got {in_chans}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    model = build(num_classes=int(num_classes), in_chans=int(in_chans), **kwargs)
    model.transfusion_name = name
    model.transfusion_kwargs = dict(kwargs)
    return model


def accepts_input(name: str, res: int, in_chans: int = 3) -> bool:
    """Whether the built model runs on a ``res`` × ``res`` input (shape propagation on the meta
    device: no memory, no arithmetic)."""
    import torch

    _check_name(name)

    try:
        with torch.device("meta"):
            model = _builder(name)(num_classes=2, in_chans=in_chans)
    except NotImplementedError:  # a builder that computes with tensors (RegNet's widths): build, then move
        model = _builder(name)(num_classes=2, in_chans=in_chans).to("meta")
    model.eval()
    with torch.device("meta"):
        try:
            model(torch.empty(1, in_chans, res, res))
        except (RuntimeError, AssertionError):  # shape errors; timm asserts on a fixed input size
            return False
    return True


@cache
def probe_min_input_px(name: str, in_chans: int = 3) -> int:
    """Smallest square input side (px) the built model accepts, found by shape propagation on the
    meta device (no memory, no arithmetic): the check of a declared ``min_input_px``."""
    _check_name(name)
    lo, hi = 1, 1024
    if not accepts_input(name, hi, in_chans):
        raise ValueError(f"model {name!r} does not accept even {hi} px inputs")
    while lo < hi:
        mid = (lo + hi) // 2
        if accepts_input(name, mid, in_chans):
            hi = mid
        else:
            lo = mid + 1
    return lo


def min_input_px(name: str, in_chans: int = 3) -> int:
    """Smallest square input side (px) the model accepts: declared, or found by shape propagation."""
    declared = model_config(name).min_input_px
    return declared if declared is not None else probe_min_input_px(name, in_chans)


@cache
def probe_num_stages(name: str) -> int:
    """Length of the built model's stage view (head included), built on the meta device (no
    memory, no arithmetic): for a model that does not declare ``num_stages``."""
    import torch

    from .stage_view import stages

    try:
        with torch.device("meta"):
            model = create_model(name, num_classes=2)
    except NotImplementedError:  # a builder that computes with tensors: build for real
        model = create_model(name, num_classes=2)
    try:
        return len(stages(model))
    except TypeError as exc:  # no stage view: no regime can be applied, not even random
        raise ValueError(f"model {name!r} cannot be used here: {exc}") from None


def num_stages(name: str) -> int:
    """Length of the model's stage view, head included: declared, or counted on the built model."""
    declared = model_config(name).num_stages
    return declared if declared is not None else probe_num_stages(name)


def check_input_size(name: str, res_px: int, in_chans: int = 3) -> None:
    """Raise ``ValueError`` if ``name`` cannot take ``res_px`` × ``res_px`` inputs; no compute."""
    fixed = model_config(name).fixed_input_px
    if fixed is not None and int(res_px) != fixed:
        raise ValueError(
            f"model {name!r} takes only {fixed} px inputs, got {res_px} px; use a resolution (--res, or the "
            f"dataset's res=) of {fixed} px"
        )
    need = min_input_px(name, in_chans)
    if int(res_px) < need:
        raise ValueError(
            f"model {name!r} needs inputs of at least {need} px, got {res_px} px; "
            f"use a resolution (--res, or the dataset's res=) of {need} px or more "
            f"(its design size is {model_config(name).default_res_px} px)"
        )
