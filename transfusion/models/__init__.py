"""Model zoo: a registry of builders and the stage view.

>>> from transfusion.models import create_model, stages
>>> model = create_model("cbr_small", num_classes=2)
>>> [s.name for s in stages(model)]
['block1', 'block2', 'block3', 'block4', 'head']
"""

from . import cbr as _cbr  # noqa: F401  (registers the CBR family)
from . import zoo as _zoo  # noqa: F401  (registers torchvision models)
from ._registry import (
    ModelConfig,
    check_input_size,
    create_model,
    list_models,
    min_input_px,
    model_config,
    register_model,
)
from .cbr import CBR, CBR_SPECS, cbr_param_count
from .stages import Stage, stage_names, stage_of_keys, stages

__all__ = [
    "CBR",
    "CBR_SPECS",
    "ModelConfig",
    "Stage",
    "cbr_param_count",
    "check_input_size",
    "create_model",
    "list_models",
    "min_input_px",
    "model_config",
    "register_model",
    "stage_names",
    "stage_of_keys",
    "stages",
]
