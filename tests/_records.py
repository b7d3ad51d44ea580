"""Run records for tests that write a results store by hand (no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from transfusion import stats
from transfusion.data import TaskSpec
from transfusion.harness.store import Store
from transfusion.train import RunSpec, RunSummary, TrainConfig

BINARY = TaskSpec("binary", ("neg", "pos"), "pos rule")


def run_summary(*, model: str = "cbr_small", data: str = "synth-retina?n=400", init: str = "random", seed: int = 0,
                train_size: Any = "all", source: str | None = None, kind: str = "train", task: TaskSpec = BINARY,
                target_auc: float | None = None, res: int = 32, **fields: Any) -> RunSummary:
    """A finished run's summary with the given spec axes and fields (the rest small defaults)."""
    spec = RunSpec(model=model, data=data, init=init, source=source, seed=seed, train_size=train_size, kind=kind,
                   train=TrainConfig(steps=10, target_auc=target_auc))
    base = {"run_id": spec.run_id, "spec": spec, "task": task, "res": res, "in_chans": 3, "n_train": 140,
            "steps": 10, "epochs": 1.0, "batch_size": 16}
    return RunSummary(**{**base, **fields})


def hand_store(path: Path, runs: list[dict], *, toml: str = 'name = "hand"\n[grid]\ndataset = ["x"]\n'
                'model = ["cbr_small"]\n[report]\nmargin = 0.01\ndelta = 0.02\n',
                costs: list[dict] = ()) -> Path:
    """A store written by hand. Each run: model, init, seed, scores, targets (binary task),
    optionally dataset, train_size and n_train (default "all", 140), scheme (default finetune),
    status ('done'/'failed'), error."""
    with Store(path) as store:
        store.add_suite(toml.split('"')[1], toml, "hash-of-hand-suite")
        for i, r in enumerate(runs):
            spec = {"model": r["model"], "data": r.get("dataset", "synth-retina?n=400"), "init": r["init"],
                    "seed": r.get("seed", 0), "train_size": r.get("train_size", "all"), "kind": "train",
                    "scheme": r.get("scheme", "finetune")}
            rid = f"run{i:03d}"
            store.add_runs([{"run_id": rid, "spec": spec}], suite=toml.split('"')[1])
            if r.get("status") == "failed":
                store.fail(rid, r["error"])
                continue
            ev = stats.evaluate(BINARY, r["scores"], r["targets"])
            ci = stats.bootstrap_ci(BINARY, r["scores"], r["targets"], n_boot=100, seed=0)
            summary = run_summary(model=spec["model"], data=spec["data"], init=spec["init"], seed=spec["seed"],
                                  train_size=spec["train_size"], n_train=r.get("n_train", 140), test_auc=ev["auc"], test_auc_ci=tuple(ci), test_auprc=ev["auprc"], test_acc=ev["acc"],
                                  train_seconds=1.5, test_per_label_auc=ev["per_label_auc"])
            store.finish(rid, summary, predictions={"scores": r["scores"], "targets": r["targets"]})
        for c in costs:
            row = {"res": 32, "in_chans": 3, "num_classes": 2, "batch": 4, "device": "cpu (test CPU, 1 thread)",
                   "torch_ms": None, "onnx_ms": None, **c}
            store.put_cost(f"{c['model']}|hand", row, {"cpu": "test CPU", "cores": 1, "torch": "x"})
    return path


def targets(n: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % 2)


def noisy(targets: np.ndarray, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(targets * 2.0 - 1.0 + rng.normal(0, noise, len(targets)))))


def seeded(model: str, init: str, make, seeds=(0, 1, 2)) -> list[dict]:
    return [{"model": model, "init": init, "seed": s, **make(s)} for s in seeds]
