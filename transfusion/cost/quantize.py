"""Deployment variants of an ONNX model file: int8 (static QDQ calibrated on images, or dynamic)
and fp16 — made with ONNX Runtime's own tools, and measured by file size.

- ``static``: ONNX Runtime's ``quantize_static`` in QDQ format, int8 weights per output channel,
  uint8 activations whose ranges are calibrated (MinMax) on the ``calib`` images given.
- ``dynamic``: ``quantize_dynamic``, int8 weights, activations quantised at run time.
- ``fp16``: every float tensor in half precision (inputs and outputs stay float32), for GPUs;
  ONNX Runtime's CPU provider runs it too, often slower than fp32.

Whether a variant keeps the fp32 model's accuracy is judged where test images are at hand
(``transfusion export --quantize``, the suites' ``[cost] int8``).
"""

from __future__ import annotations

import logging
from pathlib import Path

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
    root = logging.getLogger()
    level = root.level
    # the quantiser logs each rank-1 weight it cannot quantise per channel (ConvNeXt's layer scales) on
    # the root logger; they stay float, which is what it should do
    root.setLevel(logging.ERROR)
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
        root.setLevel(level)
        merged.unlink(missing_ok=True)
        prepared.unlink(missing_ok=True)
    return out


def model_bytes(path: Path) -> int:
    """The model's size on disk: the graph and its external weights file, if any."""
    from .onnx import onnx_files

    return sum(f.stat().st_size for f in onnx_files(path))
