"""Deployment check: export a trained run to ONNX, prove parity on its real test images, time
ONNX Runtime, and write a model card.

``export_run(target, out_dir)`` takes a run id (looked up in a results store) or a checkpoint
path (``best.pt`` written by the trainer, or its run folder), and:

1. rebuilds the model from the checkpoint (architecture, head size, input channels);
2. exports it with ``torch.onnx.export(dynamo=True)`` to ``model.onnx`` + ``model.onnx.data``
   and validates it with ``onnx.checker`` (full check);
3. runs PyTorch (fp32, eval mode) and ONNX Runtime on the run's test split, rebuilt from the
   run's data spec with :func:`transfusion.data.load_dataset`, and compares them:
   ``max_abs_err`` = max |torch − ort| over all logits, ``max_rel_err`` = that over max |torch|
   (relative to the outputs' scale, as :func:`transfusion.cost.onnx.parity`), and the
   test AUC recomputed from each side's outputs;
4. times ONNX Runtime at batch 1 and batch N (and PyTorch at batch 1, for reference);
5. writes ``model_card.md`` and ``model_card.json`` and records the export in the store.

Parity tolerances (both must hold, else the export *fails*): ``max_rel_err <= 1e-4`` — fp32
kernels in the two runtimes agree to ~1e-6 relative, so 1e-4 leaves two orders of margin
while catching any real graph difference (a wrong op, a missed normalisation, a train-mode
BatchNorm); and ``|AUC_onnx − AUC_torch| <= 1e-4`` — the AUC only moves if the tiny numeric
differences swap the order of two test images, which at 1e-6 relative practically never
happens. The PyTorch AUC here is recomputed in fp32; a run trained with bf16 autocast scored its
stored test AUC under autocast, so the stored figure may differ slightly (the card shows both).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from transfusion.core.files import write_json, write_text
from transfusion.core.machine import machine_info
from transfusion.core.runtime import torch_threads
from transfusion.cost.counts import count_macs, params
from transfusion.cost.onnx import (
    INPUT_NAME,
    OUTPUT_NAME,
    check_onnx,
    export_onnx,
    onnx_files,
    ort_run,
    ort_session,
)
from transfusion.cost.timing import time_cpu
from transfusion.data import TaskSpec, load_dataset
from transfusion.harness.int8 import calibration_images, onnx_scores
from transfusion.harness.store import Store
from transfusion.train.inference import normalize
from transfusion.train.summary import RunSummary
from transfusion.transfer.checkpoint import load_checkpoint, model_from_checkpoint

from .card import CARD_FORMAT, model_card_markdown, normalisation, score_rule
from .parity import AUC_TOL, REL_TOL, check_parity
from .target import DEFAULT_STORE, Target, resolve_target

__all__ = ["AUC_TOL", "DEFAULT_STORE", "REL_TOL", "ExportResult", "ParityError", "export_run"]

ONNX_NAME = "model.onnx"


class ParityError(RuntimeError):
    """ONNX Runtime's outputs differ from PyTorch's beyond the tolerances; ``result`` holds the
    figures (the model card was written, with ``parity.passed = false``)."""

    def __init__(self, message: str, result: ExportResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class ExportResult:
    """What :func:`export_run` wrote and found."""

    out_dir: Path
    onnx_path: Path
    card_md: Path
    card_json: Path
    card: dict[str, Any]
    passed: bool
    failures: list[str] = field(default_factory=list)
    store_path: Path | None = None
    export_id: int | None = None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _opset(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


@dataclass
class ExportModel:
    """The checkpoint's model and the test images it is compared on (normalised on demand)."""

    ck: dict
    model: nn.Module
    task: TaskSpec
    images: np.ndarray
    targets: np.ndarray
    mask: np.ndarray | None

    def inputs(self, index: slice | np.ndarray) -> torch.Tensor:
        return normalize(torch.from_numpy(np.ascontiguousarray(self.images[index])), tuple(self.ck["mean"]),
                         tuple(self.ck["std"]))

    def __len__(self) -> int:
        return len(self.images)


def _load(tgt: Target, max_images: int | None) -> ExportModel:
    """Rebuild the model and reload its run's test split (from the data spec it was trained on)."""
    ck = load_checkpoint(tgt.checkpoint)
    spec = ck["spec"]
    ds = load_dataset(spec["data"])
    if (ds.res, ds.in_chans) != (int(ck["res"]), int(ck["in_chans"])):
        raise ValueError(f"the data spec {spec['data']!r} now gives {ds.res} px × {ds.in_chans} channels, but the "
                         f"checkpoint was trained on {ck['res']} px × {ck['in_chans']}")
    test = ds["test"]
    n = len(test) if max_images is None else min(len(test), int(max_images))
    if n < 1:
        raise ValueError(f"the test split of {spec['data']!r} is empty")
    return ExportModel(ck, model_from_checkpoint(ck), TaskSpec.from_dict(ck["task"]),
                  np.array(test.images[:n]),  # a writable copy (the cache hands out read-only memmaps)
                  np.asarray(test.targets[:n]), None if test.mask is None else np.asarray(test.mask[:n]))


def _latency(m: ExportModel, session: Any, run_ort: Callable, batch: int, repeats: int, threads: int) -> dict[str, Any]:
    """ONNX Runtime at batch 1 and batch N, PyTorch at batch 1 (median and IQR, ms)."""
    n = len(m)
    x1, xn = m.inputs(np.arange(1)), m.inputs(np.arange(int(batch)) % n)
    t_ort1 = time_cpu(lambda: run_ort(session, x1), repeats=repeats, threads=threads)
    t_ortn = time_cpu(lambda: run_ort(session, xn), repeats=max(3, repeats // 4), threads=threads)
    with torch.no_grad():
        t_torch1 = time_cpu(lambda: m.model(x1), repeats=repeats, threads=threads)
    return {"ort_ms_batch1": t_ort1.median_ms, "ort_iqr_ms_batch1": t_ort1.iqr_ms,
            "ort_ms_batchN": t_ortn.median_ms, "ort_iqr_ms_batchN": t_ortn.iqr_ms, "batch": int(batch),
            "ort_img_s_batchN": t_ortn.img_s(int(batch)), "torch_ms_batch1": t_torch1.median_ms,
            "threads": threads, "provider": session.get_providers()[0], "machine": machine_info()}


def export_run(
    target: str | Path,
    out_dir: str | Path,
    *,
    store_path: str | Path | None = None,
    batch: int = 32,
    threads: int | None = None,
    repeats: int = 20,
    rel_tol: float = REL_TOL,
    auc_tol: float = AUC_TOL,
    max_images: int | None = None,
    eval_batch: int = 64,
    strict: bool = True,
    ort_runner: Callable[[Any, torch.Tensor], np.ndarray] | None = None,
    variants: tuple[str, ...] = (),
    calib: int = 256,
    margin: float | None = None,
) -> ExportResult:
    """Export, check, compare, time and describe one trained model (see the module docstring).

    ``batch``: the second latency batch size; ``threads``: intra-op threads for both runtimes
    (default: torch's current count); ``max_images``: compare on the first N test images only;
    ``strict``: raise :class:`ParityError` when parity fails (the card and the store record are
    written first). ``ort_runner`` replaces :func:`~transfusion.cost.onnx.ort_run`
    (tests use it to break parity on purpose). ``variants``: deployment variants to add
    (:data:`~transfusion.cost.quantize.VARIANTS`: int8 ``static`` calibrated on ``calib``
    training images, int8 ``dynamic``, ``fp16``), each checked for non-inferiority against the
    fp32 export at ``margin`` (AUC units; default the store's suite margin, else 0.005).
    """
    if int(batch) < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if not (rel_tol >= 0 and auc_tol >= 0):
        raise ValueError(f"tolerances must be >= 0, got rel_tol={rel_tol}, auc_tol={auc_tol}")
    if max_images is not None and int(max_images) < 2:
        raise ValueError(f"max_images must be >= 2, got {max_images}")
    run_ort = ort_runner or ort_run
    tgt = resolve_target(target, store_path)
    m = _load(tgt, max_images)
    threads = int(threads) if threads is not None else torch.get_num_threads()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / ONNX_NAME
    with torch_threads(threads):
        export_onnx(m.model, m.inputs(np.arange(2) % len(m)), onnx_path)  # batch 2: the batch axis stays dynamic
        check_onnx(onnx_path)
        session = ort_session(onnx_path, threads=threads)
        parity = check_parity(m, session, run_ort, eval_batch, rel_tol, auc_tol)
        latency = _latency(m, session, run_ort, batch, repeats, threads)
        macs, _ = count_macs(m.model, m.inputs(np.arange(1)))
        checked = _variants(m, tgt, onnx_path, session, variants, calib=calib, margin=margin, batch=batch,
                            repeats=repeats, threads=threads, eval_batch=eval_batch) if variants else []
    summary = (tgt.run or {}).get("summary") or _summary_beside(tgt.checkpoint)
    card = _card(m, tgt, onnx_path, parity, latency, macs, summary)
    card["variants"] = checked
    card_json, card_md = write_json(out / "model_card.json", card), write_text(out / "model_card.md",
                                                                                model_card_markdown(card))
    result = ExportResult(out, onnx_path, card_md, card_json, card, parity["passed"], parity["failures"],
                          tgt.store_path)
    if tgt.store_path is not None:
        with Store(tgt.store_path) as s:
            result.export_id = s.put_export(tgt.run_id, checkpoint=tgt.checkpoint, out_dir=out.resolve(),
                                            onnx_path=onnx_path.resolve(), passed=result.passed, card=card)
    if strict and not result.passed:
        raise ParityError("ONNX parity failed: " + "; ".join(result.failures), result)
    return result


def _ort_scores(session: Any, m: ExportModel, eval_batch: int = 64) -> np.ndarray:
    """Scores of every test image from an ONNX Runtime session (the task's link on its logits)."""
    return onnx_scores(session, m.images, m.task, tuple(m.ck["mean"]), tuple(m.ck["std"]), eval_batch)


def _suite_margin(tgt: Target) -> float:
    """The [report] margin of the run's suite in its store, else the default (AUC units)."""
    from transfusion.harness.suite import ReportOptions, tomllib

    margin = ReportOptions().margin
    if tgt.store_path is not None:
        with Store(tgt.store_path) as s:
            suites = s.suites()
        name = (tgt.run or {}).get("suite")
        mine = [x for x in suites if x["name"] == name] or suites
        if mine:
            margin = float(tomllib.loads(mine[-1]["toml"]).get("report", {}).get("margin", margin))
    return margin


def _variants(m: ExportModel, tgt: Target, fp32: Path, session: Any, kinds: tuple[str, ...], *, calib: int,
              margin: float | None, batch: int, repeats: int, threads: int, eval_batch: int) -> list[dict]:
    """Make and check each deployment variant (see :mod:`.quantize`)."""
    from .quantize import VARIANTS, evaluate_variant, make_variant

    bad = [k for k in kinds if k not in VARIANTS]
    if bad:
        raise ValueError(f"unknown variant(s) {', '.join(bad)}; use {', '.join(VARIANTS)}")
    margin = _suite_margin(tgt) if margin is None else float(margin)
    images = None
    if "static" in kinds:
        if int(calib) < 1:
            raise ValueError(f"--calib must be >= 1 training image, got {calib}")
        images = calibration_images(load_dataset(m.ck["spec"]["data"])["train"], calib, tuple(m.ck["mean"]),
                                    tuple(m.ck["std"]))
    fp32_scores = _ort_scores(session, m, eval_batch)
    out = []
    for kind in dict.fromkeys(kinds):
        path = make_variant(kind, fp32, fp32.parent, images)
        row = evaluate_variant(kind, path, m, fp32_scores, margin=margin, batch=batch, repeats=repeats,
                               threads=threads, scores_of=lambda sess, mm: _ort_scores(sess, mm, eval_batch))
        if kind == "static":
            row["calibration_images"] = len(images)
        out.append(row)
    return out


def _summary_beside(ck: Path) -> RunSummary | None:
    p = ck.parent / "summary.json"
    try:
        import json

        return RunSummary.from_dict(json.loads(p.read_text())) if p.is_file() else None
    except (OSError, ValueError, KeyError):
        return None


def _card(m: ExportModel, tgt: Target, onnx_path: Path, parity: dict, latency: dict, macs: int,
          summary: RunSummary | None) -> dict[str, Any]:
    import onnx
    import onnxruntime

    ck, spec, task = m.ck, m.ck["spec"], m.task
    res, chans = int(ck["res"]), int(ck["in_chans"])
    acc_onnx = parity.pop("acc_onnx")
    return {
        "format": CARD_FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": {"run_id": ck.get("run_id"), "checkpoint": str(tgt.checkpoint), "model": ck["arch"],
                   "init": spec.get("init"), "scheme": spec.get("scheme") or "finetune",
                   "weights_source": spec.get("source"), "seed": spec.get("seed"),
                   "dataset": spec.get("data"), "train_size": spec.get("train_size"), "step": ck.get("step"),
                   "store": str(tgt.store_path) if tgt.store_path else None},
        "task": {"kind": task.kind, "labels": list(task.labels), "positive_rule": task.positive_rule,
                 "scores": score_rule(task)},
        "input": {"name": INPUT_NAME, "shape": ["N", chans, res, res], "dtype": "float32", "layout": "NCHW",
                  "res_px": res, "in_chans": chans, "normalisation": normalisation(ck["mean"], ck["std"], chans)},
        "output": {"name": OUTPUT_NAME, "shape": ["N", task.num_outputs], "dtype": "float32"},
        "metrics": {"evaluated_on": f"test split of {spec.get('data')}", "n_test": len(m),
                    "test_auc_stored": summary.test_auc if summary else None,
                    "test_auc_ci_stored": list(summary.test_auc_ci) if summary and summary.test_auc_ci else None,
                    "test_auprc_stored": summary.test_auprc if summary else None,
                    "test_acc_stored": summary.test_acc if summary else None,
                    "trained_with_bf16_autocast": summary.runtime.amp if summary else None,
                    "test_auc_torch_fp32": parity["auc_torch"], "test_auc_onnx": parity["auc_onnx"],
                    "test_acc_onnx": acc_onnx},
        "clinical": summary.clinical if summary else None,
        "parity": parity,
        "latency": latency,
        "cost": {"params": params(m.model)[0], "macs": macs, "res_px": res,
                 "macs_note": "fvcore multiply-adds per image (max-pool counts 0)"},
        "files": {f.name: {"bytes": f.stat().st_size, "sha256": _sha256(f)} for f in onnx_files(onnx_path)},
        "export": {"exporter": "torch.onnx.export(dynamo=True)", "opset": _opset(onnx_path),
                   "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                   "checker": "onnx.checker.check_model(full_check=True): passed"},
    }
