"""Model zoo: a registry of builders and the stage view.

>>> from transfusion.models import create_model, stages
>>> model = create_model("cbr_small", num_classes=2)
>>> [s.name for s in stages(model)]
['block1', 'block2', 'block3', 'block4', 'head']

Names, configs and input-size checks come from the catalogue without importing torch; the CBR
classes and the stage view load on first use. ``timm:NAME`` names any model of the optional timm
(:mod:`.timm_models`; timm is imported only for those names).
"""

from __future__ import annotations

from transfusion.core.lazy import lazy_names

from . import catalog as _catalog  # noqa: F401  (declares the built-in models)
from ._registry import (
    ModelConfig,
    accepts_input,
    check_input_size,
    create_model,
    is_model,
    is_timm_name,
    list_models,
    min_input_px,
    model_config,
    num_stages,
    probe_min_input_px,
    probe_num_stages,
    register_builder,
    register_model,
)
from .catalog import CBR_SPECS

_LAZY = {"CBR": ".cbr", "cbr_param_count": ".cbr", "Stage": ".stage_view", "stage_names": ".stage_view",
         "stage_of_keys": ".stage_view", "stages": ".stage_view"}


__getattr__ = lazy_names(__name__, _LAZY)  # PEP 562: torch-backed names load on first use


__all__ = [
    "CBR",
    "CBR_SPECS",
    "ModelConfig",
    "Stage",
    "cbr_param_count",
    "check_input_size",
    "create_model",
    "is_model",
    "is_timm_name",
    "list_models",
    "min_input_px",
    "model_config",
    "num_stages",
    "accepts_input",
    "probe_min_input_px",
    "probe_num_stages",
    "register_builder",
    "register_model",
    "stage_names",
    "stage_of_keys",
    "stages",
]
