"""Any model of `timm <https://github.com/huggingface/pytorch-image-models>`_ by name, written
``timm:NAME`` (``timm:mobilenetv3_small_100``, ``timm:efficientnet_b0``, ``timm:resnet18``, or
with a pretrained tag, ``timm:resnet18.tv_in1k``) — an optional extra: ``pip install -e ".[timm]"``.

Everything comes from timm itself, nothing is tabulated here: the config from the model's
``pretrained_cfg`` (design resolution ``input_size``, ``first_conv``, ``classifier``, the hub
weights), the model from ``timm.create_model(NAME, pretrained=False, num_classes=, in_chans=)``,
the stage view from the model's ``feature_info`` (see :mod:`.stage_view`). The smallest input side
and the stage count are found by building the model on the meta device when they are needed.
This module imports timm only when a ``timm:`` name is used.
"""

from __future__ import annotations

import difflib
import importlib
from functools import cache
from typing import Any

from ._registry import TIMM_PREFIX, Builder, ModelConfig

#: how to install the optional dependency, for error messages
INSTALL_HINT = 'pip install -e ".[timm]" (or: pip install timm)'


def import_timm(name: str = "timm:NAME") -> Any:
    """The ``timm`` module; a ``ValueError`` saying what is missing and how to install it when
    timm is not installed (``name`` is the model name that needed it)."""
    try:
        return importlib.import_module("timm")
    except ImportError as exc:
        raise ValueError(
            f"model {name!r} needs the optional package timm, which is not installed ({exc}); "
            f"install it with {INSTALL_HINT}"
        ) from None


def timm_arch(name: str) -> str:
    """``timm:resnet18.tv_in1k`` → ``resnet18.tv_in1k`` (the name timm is given)."""
    if not name.startswith(TIMM_PREFIX):
        raise ValueError(f"{name!r} is not a timm model name (timm:NAME)")
    return name[len(TIMM_PREFIX):].strip()


def pretrained_cfg(name: str) -> Any:
    """timm's ``PretrainedCfg`` of ``timm:NAME`` (the default pretrained tag unless NAME has one);
    a ``ValueError`` naming the bad value for a model or tag timm does not know."""
    timm = import_timm(name)
    arch = timm_arch(name)
    base, _, tag = arch.partition(".")
    if not base:
        raise ValueError(f"{name!r} names no timm model; write timm:NAME, e.g. timm:resnet18")
    if not timm.is_model(base):
        close = difflib.get_close_matches(base, timm.list_models(), n=5, cutoff=0.7)
        maybe = f"did you mean {', '.join(close)}? " if close else ""
        pattern = base[: max(3, len(base) // 2)]
        raise ValueError(
            f"unknown timm model {base!r} (in {name!r}); {maybe}list timm's models with "
            f"python -c \"import timm; print(timm.list_models('*{pattern}*'))\""
        )
    try:
        cfg = timm.models.get_pretrained_cfg(arch)
    except RuntimeError:  # an unknown pretrained tag
        tags = sorted(timm.list_pretrained(f"{base}.*"))
        raise ValueError(
            f"unknown pretrained tag {tag!r} for timm model {base!r} (in {name!r}); its tags: "
            f"{', '.join(t.partition('.')[2] for t in tags) or 'none'}"
        ) from None
    if cfg is None:  # a model registered without any config
        from timm.models import PretrainedCfg

        cfg = PretrainedCfg(architecture=base)
    return cfg


def hub_weights(cfg: Any) -> str | None:
    """Where timm's pretrained weights of ``cfg`` come from: the Hugging Face hub id, else the
    download URL; ``None`` for a model without published weights."""
    return getattr(cfg, "hf_hub_id", None) or getattr(cfg, "url", None) or None


def _first(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value or None


@cache
def _config(name: str) -> ModelConfig:
    cfg = pretrained_cfg(name)
    size = tuple(cfg.input_size or (3, 224, 224))
    res = int(size[-1])
    fixed = res if cfg.fixed_input_size else None
    return ModelConfig(
        name,
        family="timm",
        default_res_px=res,
        imagenet_weights=hub_weights(cfg),
        first_conv=_first(cfg.first_conv),
        classifier=_first(cfg.classifier) or "fc",
        min_input_px=fixed,  # None: found by shape propagation when needed
        num_stages=None,  # counted on the built model's stage view when needed
        fixed_input_px=fixed,
    )


def timm_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of ``timm:NAME``, from timm's ``pretrained_cfg`` (cached)."""
    import_timm(name)  # checked on every call: a cached config must not hide an uninstalled timm
    return _config(name)


def timm_builder(name: str) -> Builder:
    """``fn(*, num_classes, in_chans, **kwargs)`` building ``timm:NAME`` with timm's default
    (random) initialisation; keyword arguments go to ``timm.create_model`` (``drop_rate=0.2``)."""
    timm_config(name)  # a clear error for a missing timm or an unknown name, before any build
    timm = import_timm(name)
    arch = timm_arch(name)

    def build(*, num_classes: int, in_chans: int = 3, **kwargs: Any) -> Any:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)

    build.__name__ = arch
    build.__doc__ = f"timm's {arch} (timm.create_model, pretrained=False)."
    return build
