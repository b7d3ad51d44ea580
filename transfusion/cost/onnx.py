"""ONNX export, checking, ONNX Runtime sessions and parity against PyTorch.

The dynamo exporter (``torch.onnx.export(..., dynamo=True)``) writes the graph to
``NAME.onnx`` and the weights beside it to ``NAME.onnx.data``: keep the two files together
(move or copy both; the graph refers to the data file by its name).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def onnx_files(path: str | Path) -> list[Path]:
    """The files that make up an exported model: ``path`` and, if present, ``path.data``."""
    path = Path(path)
    data = path.with_name(path.name + ".data")
    return [path, data] if data.exists() else [path]


def export_onnx(model: nn.Module, example: Tensor, path: str | Path) -> Path:
    """Export ``model`` to ONNX at ``path`` with ``torch.onnx.export(..., dynamo=True)``.

    ``example`` is one input batch of shape (N, C, H, W); the batch dimension is exported as
    dynamic (named ``batch``), C, H and W as fixed. The graph's input is named ``input`` and
    its output ``logits`` (a batch of 1 is exported as 2: torch.export specialises size-1
    dimensions). The model is exported in eval mode (its mode is restored after);
    weights go to ``path`` + ``.data`` beside the graph. Returns ``path``.
    """
    path = Path(path)
    if example.dim() != 4:
        raise ValueError(f"example must have shape (N, C, H, W), got {tuple(example.shape)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if example.shape[0] == 1:  # torch.export specialises size-1 dims; ConvNeXt's graph then fails to export
        example = example.repeat(2, 1, 1, 1)
    was_training = model.training
    model.eval()
    try:
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=True,
            verbose=False,
        )
    finally:
        model.train(was_training)
    return path


def check_onnx(path: str | Path) -> None:
    """Validate an exported model with ``onnx.checker`` (by path, so that external weight data
    and models over 2 GB are handled; full check including shape inference).

    Raises ``FileNotFoundError`` for a missing file and ``onnx.checker.ValidationError`` for an
    invalid model.
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}")
    onnx.checker.check_model(str(path), full_check=True)


def ort_providers(device: str = "cpu") -> list[str]:
    """ONNX Runtime execution providers for ``device``: CUDA first when ``device`` is CUDA,
    onnxruntime-gpu is installed and a GPU is present; otherwise the CPU provider alone."""
    import onnxruntime as ort

    if (
        str(device).startswith("cuda")
        and "CUDAExecutionProvider" in ort.get_available_providers()
        and torch.cuda.is_available()
    ):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def ort_session(
    path: str | Path, device: str = "cpu", *, threads: int | None = None
) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session for the model at ``path`` (see :func:`ort_providers` for the
    provider choice; ``session.get_providers()`` tells which one was taken). ``threads`` sets
    the intra-op thread count (default: ONNX Runtime's own)."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}")
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=ort_providers(device))


def ort_run(session: onnxruntime.InferenceSession, inputs: Tensor) -> np.ndarray:
    """Run ``session`` on a float tensor batch and return its first output as a numpy array."""
    name = session.get_inputs()[0].name
    feed = {name: inputs.detach().to("cpu", torch.float32).contiguous().numpy()}
    return session.run(None, feed)[0]


def parity(
    model: nn.Module, session: onnxruntime.InferenceSession, inputs: Tensor
) -> dict[str, float]:
    """Compare ``model(inputs)`` with the ONNX Runtime ``session`` on the same inputs.

    Returns ``max_abs_err`` = max |a − b| and ``max_rel_err`` = max |a − b| / max(max |a|, tiny),
    where a is PyTorch's output: the error relative to the output's *scale*, not elementwise
    (an untrained Inception-v3 in eval mode emits values near 1e12, and elementwise relative
    errors explode near zero). Computed in float64. The model runs in eval mode under
    ``torch.no_grad`` on the device of its parameters.
    """
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            ref = model(inputs.to(device)).detach().to("cpu", torch.float64).numpy()
    finally:
        model.train(was_training)
    got = ort_run(session, inputs).astype(np.float64)
    if ref.shape != got.shape:
        raise ValueError(f"output shapes differ: torch {ref.shape} vs onnxruntime {got.shape}")
    abs_err = float(np.max(np.abs(ref - got))) if ref.size else 0.0
    scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, float(np.finfo(np.float64).tiny))
    return {"max_abs_err": abs_err, "max_rel_err": abs_err / scale}
