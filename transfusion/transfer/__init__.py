"""Weight sources (ImageNet, checkpoint files, pretraining runs) and initialisation regimes."""

from .checkpoint import FORMAT as CHECKPOINT_FORMAT
from .regimes import (
    REGIME_FORMS,
    InitReport,
    Regime,
    apply_init,
    freeze_stages,
    parse_regime,
    source_arch,
    train_mode,
    validate,
)
from .sources import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SourceUnavailable,
    SourceWeights,
    imagenet_file,
    load_checkpoint_file,
    load_imagenet,
    load_source,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "REGIME_FORMS",
    "InitReport",
    "Regime",
    "SourceUnavailable",
    "SourceWeights",
    "apply_init",
    "freeze_stages",
    "imagenet_file",
    "load_checkpoint_file",
    "load_imagenet",
    "load_source",
    "parse_regime",
    "source_arch",
    "train_mode",
    "validate",
]
