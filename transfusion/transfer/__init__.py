"""Weight sources (ImageNet, checkpoint files, pretraining runs), the checkpoint format and
initialisation regimes.

Regime parsing (:mod:`.regime`) needs no torch; the weight loaders and the regimes themselves
(:mod:`.sources`, :mod:`.checkpoint`, :mod:`.regimes`) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from transfusion.core.lazy import lazy_names

from .regime import REGIME_FORMS, REGIME_NAMES, Regime, parse_regime, source_arch, validate
from .scheme import (
    DEFAULT_SCHEME,
    SCHEME_FORMS,
    Scheme,
    check_scheme,
    parse_scheme,
    regime_of,
    scheme_label,
    scheme_of,
)

_LAZY = {
    "InitReport": ".regimes", "apply_init": ".regimes", "freeze_stages": ".regimes", "train_mode": ".regimes",
    "apply_scheme": ".regimes", "unfreeze": ".regimes", "fit_knn": ".regimes",
    "IMAGENET_MEAN": ".sources", "IMAGENET_STD": ".sources", "SourceUnavailable": ".sources",
    "SourceWeights": ".sources", "imagenet_file": ".sources", "load_checkpoint_file": ".sources",
    "load_imagenet": ".sources", "load_source": ".sources",
}


_lazy = lazy_names(__name__, _LAZY)


def __getattr__(name: str) -> Any:  # PEP 562: torch-backed names load on first use
    if name == "CHECKPOINT_FORMAT":
        return importlib.import_module(".checkpoint", __name__).FORMAT
    return _lazy(name)


__all__ = [
    "CHECKPOINT_FORMAT",
    "DEFAULT_SCHEME",
    "SCHEME_FORMS",
    "Scheme",
    "apply_scheme",
    "check_scheme",
    "fit_knn",
    "parse_scheme",
    "regime_of",
    "scheme_label",
    "scheme_of",
    "unfreeze",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "REGIME_FORMS",
    "REGIME_NAMES",
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
