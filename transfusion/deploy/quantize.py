"""Deployment variants of an exported model (made by :mod:`transfusion.cost.quantize`: int8
static QDQ calibrated on training images, int8 dynamic, fp16), each checked against the fp32
export on the run's test images.

Each variant reports its file size (graph + weights, bytes), batch-1 latency (median and p95 of
single calls, ms) and batch-N throughput (images/s) on ONNX Runtime (CPU provider; the CUDA one
where asked), its test AUC, the paired difference variant − fp32 with a 95% paired-bootstrap
interval over the test images, and a non-inferiority verdict: it passes when the interval's lower
end is above −``margin`` (AUC units).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from transfusion.cost.quantize import VARIANTS, make_variant, model_bytes

__all__ = ["VARIANTS", "evaluate_variant", "make_variant"]


def evaluate_variant(kind: str, path: Path, m: Any, fp32_scores: np.ndarray, *, margin: float, batch: int,
                     repeats: int, threads: int, eval_batch: int = 64, device: str = "cpu",
                     scores_of: Callable[[Any, Any], np.ndarray]) -> dict[str, Any]:
    """Size, latency, throughput, AUC and the non-inferiority check of one variant against the
    fp32 scores ``fp32_scores`` of the same test images ``m`` (an export's model and images)."""
    from transfusion import stats
    from transfusion.cost.onnx import ort_run, ort_session
    from transfusion.cost.timing import call_times_ms

    session = ort_session(path, threads=threads, device=device)
    check = stats.non_inferior(m.task, scores_of(session, m), fp32_scores, m.targets, m.mask, margin=margin)
    x1, xn = m.inputs(np.arange(1)), m.inputs(np.arange(int(batch)) % len(m))
    one = call_times_ms(lambda: ort_run(session, x1), repeats=repeats)
    many = call_times_ms(lambda: ort_run(session, xn), repeats=max(3, repeats // 4))
    return {"variant": kind, "file": path.name, "bytes": model_bytes(path), "provider": session.get_providers()[0],
            "ms_batch1": float(np.median(one)), "p95_ms_batch1": float(np.percentile(one, 95)),
            "img_s_batchN": float(batch / (np.median(many) / 1e3)), "batch": int(batch), **check}
