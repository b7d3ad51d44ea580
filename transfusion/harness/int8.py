"""int8 deployment check of a suite's trained models (``[cost] int8 = true``): each finished
training run's best checkpoint is exported to ONNX, quantised to static int8 QDQ (per-channel
weights, activations calibrated on ``calib`` of its training images) and both files score the
run's test split in ONNX Runtime; the int8 AUC, its paired difference from the fp32 export with a
95% bootstrap interval and a non-inferiority verdict at the suite's margin go to the store's
``variants`` table. A rerun checks only the runs not yet checked.

The int8 *latency* belongs to the model, not to its weights: it is measured once per model in the
cost profile (:func:`transfusion.cost.profile.profile_model` with ``int8=True``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .store import Store
from .suite import CostOptions

#: the variant name in the store's ``variants`` table
INT8 = "int8-static"


def calibration_images(split: Any, n: int, mean: tuple[float, ...], std: tuple[float, ...],
                       seed: int = 0) -> np.ndarray:
    """``n`` images of ``split`` drawn without replacement (all of them if fewer), in index order,
    normalised as the model sees them: float32 (n, C, H, W)."""
    import torch

    from transfusion.train.inference import normalize

    pick = np.sort(np.random.default_rng(seed).choice(len(split), min(int(n), len(split)), replace=False))
    return normalize(torch.from_numpy(np.array(split.images[pick])), tuple(mean), tuple(std)).numpy()


def onnx_scores(session: Any, images: np.ndarray, task: Any, mean: tuple[float, ...], std: tuple[float, ...],
                batch: int = 64) -> np.ndarray:
    """Scores (the task's link on the logits) of uint8 ``images`` (N, C, H, W) from an ONNX Runtime
    session, normalised with ``mean`` / ``std`` and run ``batch`` at a time."""
    import torch

    from transfusion.cost.onnx import ort_run
    from transfusion.stats import scores_from_logits
    from transfusion.train.inference import normalize

    logits = [ort_run(session, normalize(torch.from_numpy(np.array(images[i:i + batch])),
                                         tuple(mean), tuple(std)))
              for i in range(0, len(images), batch)]
    return scores_from_logits(task, np.concatenate(logits).astype(np.float64))


def check_int8(checkpoint: str | Path, *, calib: int, margin: float, threads: int | None = None) -> dict:
    """The int8 check of one checkpoint (see the module docstring): ``test_auc`` (int8),
    ``fp32_auc`` (the fp32 export's), ``auc_diff`` (int8 − fp32) with ``auc_diff_low`` /
    ``auc_diff_high``, ``margin``, ``passed``, ``calibration_images`` and the two files' sizes
    (``fp32_bytes``, ``int8_bytes``)."""
    import torch

    from transfusion.core.runtime import torch_threads
    from transfusion.cost.onnx import export_onnx, ort_session
    from transfusion.cost.quantize import make_variant, model_bytes
    from transfusion.data import TaskSpec, load_dataset
    from transfusion.stats import evaluate, non_inferior
    from transfusion.train.inference import normalize
    from transfusion.transfer.checkpoint import load_checkpoint, model_from_checkpoint

    ck = load_checkpoint(checkpoint)
    mean, std = tuple(ck["mean"]), tuple(ck["std"])
    ds = load_dataset(ck["spec"]["data"])
    test, task = ds["test"], TaskSpec.from_dict(ck["task"])
    model = model_from_checkpoint(ck).eval()
    with torch_threads(threads), tempfile.TemporaryDirectory(prefix="transfusion-int8-") as tmp:
        example = normalize(torch.from_numpy(np.array(test.images[:2])), mean, std)
        fp32 = export_onnx(model, example, Path(tmp) / "model.onnx")
        images = calibration_images(ds["train"], calib, mean, std)
        int8 = make_variant("static", fp32, Path(tmp), images)
        n = threads if threads is not None else torch.get_num_threads()
        ref = onnx_scores(ort_session(fp32, threads=n), test.images, task, mean, std)
        scores = onnx_scores(ort_session(int8, threads=n), test.images, task, mean, std)
        record = non_inferior(task, scores, ref, test.targets, test.mask, margin=margin)
        record.update(fp32_auc=evaluate(task, ref, test.targets, test.mask)["auc"],
                      calibration_images=len(images), fp32_bytes=model_bytes(fp32), int8_bytes=model_bytes(int8))
    return record


def evaluate_int8(store: Store, options: CostOptions, run_ids: Iterable[str], *, margin: float,
                  threads: int | None = None, on_row: Callable[[dict], None] | None = None) -> int:
    """Check every done training run among ``run_ids`` that has no int8 record yet; returns how
    many were checked. A run whose check fails (its checkpoint gone, quantisation refused) gets a
    record with ``error`` set instead; ``on_row`` sees each record with ``run_id``, ``model`` and
    ``init``."""
    from transfusion.transfer.checkpoint import best_path

    if not (options.enabled and options.int8):
        return 0
    done = {r["run_id"] for r in store.variants(INT8)}
    n = 0
    for row in store.runs(status="done", kind="train", run_ids=run_ids):
        if row["run_id"] in done:
            continue
        try:
            record = check_int8(best_path(row["out_dir"]), calib=options.calib, margin=margin, threads=threads)
        except Exception as exc:  # recorded, never dropped: the report shows it
            record = {"error": f"{type(exc).__name__}: {exc}"}
        store.put_variant(row["run_id"], INT8, record)
        n += 1
        if on_row:
            on_row({"run_id": row["run_id"], "model": row["model"], "init": row["init"], **record})
    return n
