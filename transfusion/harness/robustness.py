"""Robustness: each finished training run's best checkpoint scores its test split again under
every corruption × severity of the suite's ``[robustness]`` table — no retraining. The corrupted
images of a dataset are made once and shared by every run on it; each run's scores and AUC go
to the store's ``robustness`` table, so a rerun only scores what is missing (and a killed phase
resumes where it stopped)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import numpy as np

from transfusion.data import load_dataset
from transfusion.data.base import TaskSpec
from transfusion.data.corruptions import corrupt, modality_of

from .store import Store
from .suite import RobustnessOptions


def robustness_plan(store: Store, options: RobustnessOptions, run_ids: Iterable[str]) -> list[tuple[dict, list]]:
    """(run row, [(corruption, severity), ...] still to score) for the done training runs among
    ``run_ids``, in store order."""
    done = {k[:3] for k in store.robustness_keys() if k[4] == options.seed}
    plan = []
    for row in store.runs(status="done", kind="train", run_ids=run_ids):
        todo = [(c, s) for c in options.corruptions for s in options.severities if (row["run_id"], c, s) not in done]
        if todo:
            plan.append((row, todo))
    return plan


def evaluate_robustness(store: Store, options: RobustnessOptions, run_ids: Iterable[str], *,
                        threads: int | None = None, on_row: Callable[[dict], None] | None = None) -> int:
    """Score every missing (run, corruption, severity) of ``run_ids``; returns how many were
    scored. ``on_row`` gets each stored row (without its scores)."""
    import torch

    from transfusion.core.runtime import Runtime, torch_threads
    from transfusion.stats import evaluate
    from transfusion.train.inference import predict
    from transfusion.transfer.checkpoint import best_path, load_checkpoint, model_from_checkpoint

    if not options.enabled:
        return 0
    plan = robustness_plan(store, options, run_ids)
    corrupted: dict[tuple[str, str, int], np.ndarray] = {}  # (data spec, corruption, severity) → images
    n = 0
    with torch_threads(threads):
        for row, todo in plan:
            ck = load_checkpoint(best_path(row["out_dir"]))
            data = ck["spec"]["data"]
            test = load_dataset(data)["test"]
            modality = options.modality if options.modality != "auto" else modality_of(data, int(ck["in_chans"]))
            task = TaskSpec.from_dict(ck["task"])
            model = model_from_checkpoint(ck)
            images = np.array(test.images)
            for name, severity in todo:
                key = (data, name, severity)
                if key not in corrupted:
                    if len(corrupted) > 64:  # bound the memory: datasets come in run order
                        corrupted.clear()
                    corrupted[key] = corrupt(images, name, severity, modality=modality, seed=options.seed)
                split = dataclasses.replace(test, images=corrupted[key])
                with torch.inference_mode():
                    scores = predict(model, split, task, tuple(ck["mean"]), tuple(ck["std"]), runtime=Runtime())
                auc = evaluate(task, scores, test.targets, test.mask)["auc"]
                store.put_robustness(row["run_id"], name, severity, modality, options.seed, auc, scores)
                n += 1
                if on_row:
                    on_row({"run_id": row["run_id"], "model": row["model"], "init": row["init"],
                            "corruption": name, "severity": severity, "modality": modality, "auc": auc})
    return n
