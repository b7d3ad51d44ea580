"""Deployment variants of an exported model: int8 (static QDQ calibrated on training images, or
dynamic) and fp16, each checked against the fp32 export on the run's test images.

- ``static``: ONNX Runtime's ``quantize_static`` in QDQ format, int8 weights per output channel,
  uint8 activations whose ranges are calibrated (MinMax) on ``calib`` training images.
- ``dynamic``: ``quantize_dynamic``, int8 weights, activations quantised at run time.
- ``fp16``: every float tensor in half precision (inputs and outputs stay float32), for GPUs;
  ONNX Runtime's CPU provider runs it too, often slower than fp32.

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

VARIANTS = ("static", "dynamic", "fp16")


class _Calibration:
    """ONNX Runtime's calibration reader over a float32 (N, C, H, W) array, in batches."""

    def __init__(self, name: str, images: np.ndarray, batch: int = 16) -> None:
        self.name, self.images, self.batch, self.i = name, images, batch, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.images):
            return None
        chunk = self.images[self.i:self.i + self.batch]
        self.i += self.batch
        return {self.name: np.ascontiguousarray(chunk, dtype=np.float32)}

    def rewind(self) -> None:
        self.i = 0


def make_variant(kind: str, fp32: Path, out_dir: Path, calib: np.ndarray | None = None) -> Path:
    """Write variant ``kind`` of the fp32 model ``fp32`` into ``out_dir``; returns its path.
    ``calib``: float32 normalised training images (needed by ``static``)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if kind not in VARIANTS:
        raise ValueError(f"unknown variant {kind!r}; use one of {', '.join(VARIANTS)}")
    out = Path(out_dir) / f"model.{kind if kind == 'fp16' else 'int8-' + kind}.onnx"
    if kind == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
        onnx.save(model, str(out))
        return out
    # one self-contained file (the quantiser's pre-processing loses an external weights file), then
    # shapes inferred: what the quantiser expects
    merged, prepared = Path(out_dir) / "model.merged.onnx", Path(out_dir) / "model.prepared.onnx"
    onnx.save(onnx.load(str(fp32)), str(merged))
    try:
        quant_pre_process(str(merged), str(prepared), skip_symbolic_shape=True)
        if kind == "dynamic":
            quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8)
        else:
            if calib is None or not len(calib):
                raise ValueError("static quantisation needs calibration images (--calib N, N >= 1)")
            name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name
            quantize_static(str(prepared), str(out), _Calibration(name, calib), quant_format=QuantFormat.QDQ,
                            per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    finally:
        merged.unlink(missing_ok=True)
        prepared.unlink(missing_ok=True)
    return out


def _bytes(path: Path) -> int:
    """The model's size on disk: the graph and its external weights file, if any."""
    from transfusion.cost.onnx import onnx_files

    return sum(f.stat().st_size for f in onnx_files(path))


def evaluate_variant(kind: str, path: Path, m: Any, fp32_scores: np.ndarray, *, margin: float, batch: int,
                     repeats: int, threads: int, eval_batch: int = 64, device: str = "cpu",
                     scores_of: Callable[[Any, Any], np.ndarray]) -> dict[str, Any]:
    """Size, latency, throughput, AUC and the non-inferiority check of one variant against the
    fp32 scores ``fp32_scores`` of the same test images ``m`` (an export's model and images)."""
    from transfusion import stats
    from transfusion.cost.onnx import ort_run, ort_session
    from transfusion.cost.timing import call_times_ms

    session = ort_session(path, threads=threads, device=device)
    scores = scores_of(session, m)
    auc = stats.evaluate(m.task, scores, m.targets, m.mask)["auc"]
    d = stats.paired_difference(m.task, scores, fp32_scores, m.targets, m.mask, n_boot=1000, seed=0)
    x1, xn = m.inputs(np.arange(1)), m.inputs(np.arange(int(batch)) % len(m))
    one = call_times_ms(lambda: ort_run(session, x1), repeats=repeats)
    many = call_times_ms(lambda: ort_run(session, xn), repeats=max(3, repeats // 4))
    return {"variant": kind, "file": path.name, "bytes": _bytes(path), "provider": session.get_providers()[0],
            "ms_batch1": float(np.median(one)), "p95_ms_batch1": float(np.percentile(one, 95)),
            "img_s_batchN": float(batch / (np.median(many) / 1e3)), "batch": int(batch), "test_auc": auc,
            "auc_diff": d.diff, "auc_diff_low": d.ci_low, "auc_diff_high": d.ci_high, "margin": margin,
            "passed": bool(d.ci_low > -margin)}
