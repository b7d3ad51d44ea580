"""Parity of an exported model: ONNX Runtime against PyTorch on the same real test images.

Tolerances (both must hold, else the export *fails*): ``max_rel_err <= 1e-4`` — fp32 kernels in
the two runtimes agree to ~1e-6 relative, so 1e-4 leaves two orders of margin while catching any
real graph difference (a wrong op, a missed normalisation, a train-mode BatchNorm); and
``|AUC_onnx − AUC_torch| <= 1e-4`` — the AUC only moves if the tiny numeric differences swap the
order of two test images, which at 1e-6 relative practically never happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .export import ExportModel

REL_TOL = 1e-4
AUC_TOL = 1e-4


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def check_parity(m: ExportModel, session: Any, run_ort: Callable, eval_batch: int, rel_tol: float,
            auc_tol: float) -> dict[str, Any]:
    """Both runtimes on every test image: output errors, the AUC from each side, failures."""
    import torch

    from transfusion import stats

    ref, got = [], []
    with torch.no_grad():
        for sl in _batches(len(m), eval_batch):
            x = m.inputs(sl)
            ref.append(m.model(x).double().numpy())
            got.append(np.asarray(run_ort(session, x), dtype=np.float64))
    a, b = np.concatenate(ref), np.concatenate(got)
    if a.shape != b.shape:
        raise ValueError(f"output shapes differ: torch {a.shape} vs onnxruntime {b.shape}")
    max_abs = float(np.max(np.abs(a - b)))
    max_rel = max_abs / max(float(np.max(np.abs(a))), float(np.finfo(np.float64).tiny))
    finite = bool(np.all(np.isfinite(b)))
    ev_t = stats.evaluate(m.task, stats.scores_from_logits(m.task, a), m.targets, m.mask)
    ev_o = stats.evaluate(m.task, stats.scores_from_logits(m.task, b), m.targets, m.mask) if finite else None
    auc_t, auc_o = ev_t["auc"], None if ev_o is None else ev_o["auc"]
    auc_diff = None if auc_t is None or auc_o is None else auc_o - auc_t
    failures = []
    if not max_rel <= rel_tol:
        failures.append(f"max relative output error {max_rel:.3g} > {rel_tol:g}")
    if not finite:
        failures.append("ONNX Runtime produced NaN or inf")
    elif auc_diff is not None and not abs(auc_diff) <= auc_tol:
        failures.append(f"|AUC(ONNX) − AUC(PyTorch)| = {abs(auc_diff):.3g} > {auc_tol:g}")
    return {"n_images": len(m), "max_abs_err": max_abs, "max_rel_err": max_rel, "rel_tol": rel_tol,
            "auc_torch": auc_t, "auc_onnx": auc_o, "auc_diff": auc_diff, "auc_tol": auc_tol,
            "passed": not failures, "failures": failures, "acc_onnx": None if ev_o is None else ev_o["acc"]}
