"""Run records for tests that write a results store by hand (no training)."""

from __future__ import annotations

from typing import Any

from transfusion.data import TaskSpec
from transfusion.train import RunSpec, RunSummary, TrainConfig

BINARY = TaskSpec("binary", ("negative", "positive"))


def run_summary(*, model: str = "cbr_small", data: str = "synth-retina?n=400", init: str = "random", seed: int = 0,
                train_size: Any = "all", source: str | None = None, kind: str = "train", task: TaskSpec = BINARY,
                target_auc: float | None = None, res: int = 32, **fields: Any) -> RunSummary:
    """A finished run's summary with the given spec axes and fields (the rest small defaults)."""
    spec = RunSpec(model=model, data=data, init=init, source=source, seed=seed, train_size=train_size, kind=kind,
                   train=TrainConfig(steps=10, target_auc=target_auc))
    base = {"run_id": spec.run_id, "spec": spec, "task": task, "res": res, "in_chans": 3, "n_train": 140,
            "steps": 10, "epochs": 1.0, "batch_size": 16}
    return RunSummary(**{**base, **fields})
