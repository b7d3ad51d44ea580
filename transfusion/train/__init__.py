"""Training: the run spec and its id (:mod:`.spec`), the setup before the first step
(:mod:`.setup`), the loop (:mod:`.loop`), inference helpers (:mod:`.inference`), the optimiser
(:mod:`.optim`) and the typed record of a finished run (:mod:`.summary`).

The spec and the summary need no torch; the rest loads on first use.
"""

from __future__ import annotations

from transfusion.core.lazy import lazy_names

from .spec import OPTIMIZERS, SCHEDULES, RunSpec, TrainConfig, normalise_spec, parse_train_size
from .summary import RunSummary

_LAZY = {"normalize": ".inference", "predict": ".inference", "CURVE_FIELDS": ".loop", "TrainingDiverged": ".loop", "TrainingDegenerate": ".loop",
         "RunFolderTaken": ".loop", "folder_run_id": ".loop", "train_run": ".loop", "Prepared": ".setup", "build_initial_model": ".setup", "prepare": ".setup"}


__getattr__ = lazy_names(__name__, _LAZY)  # PEP 562: torch-backed names load on first use


__all__ = [
    "CURVE_FIELDS",
    "OPTIMIZERS",
    "SCHEDULES",
    "Prepared",
    "RunFolderTaken",
    "RunSpec",
    "RunSummary",
    "TrainConfig",
    "TrainingDegenerate",
    "TrainingDiverged",
    "build_initial_model",
    "folder_run_id",
    "normalise_spec",
    "normalize",
    "parse_train_size",
    "predict",
    "prepare",
    "train_run",
]
