"""Training: the run spec and its id (:mod:`.spec`), the setup before the first step
(:mod:`.setup`), the loop (:mod:`.loop`), inference helpers (:mod:`.inference`), the optimiser
(:mod:`.optim`) and the typed record of a finished run (:mod:`.summary`)."""

from .inference import normalize, predict
from .loop import CURVE_FIELDS, TrainingDiverged, train_run
from .setup import Prepared, build_initial_model, prepare
from .spec import OPTIMIZERS, SCHEDULES, RunSpec, TrainConfig, normalise_spec, parse_train_size
from .summary import RunSummary

__all__ = [
    "CURVE_FIELDS",
    "OPTIMIZERS",
    "SCHEDULES",
    "Prepared",
    "RunSpec",
    "RunSummary",
    "TrainConfig",
    "TrainingDiverged",
    "build_initial_model",
    "normalise_spec",
    "normalize",
    "parse_train_size",
    "predict",
    "prepare",
    "train_run",
]
