"""Cost profile of a model: parameters, MACs, FLOPs and measured latency (PyTorch, ONNX Runtime,
CUDA).

One row per model, with the keys of :data:`ROW_KEYS` (``None`` where not measured):

* ``params`` / ``trainable_params``: parameter counts (shared tensors counted once).
* ``macs``: multiply-accumulates for **one image** (batch 1), counted by fvcore's
  ``FlopCountAnalysis`` (jit trace) with its default op handles: one multiply-add counts once
  (fvcore calls this unit a "flop"). Convolutions and linear layers count their MACs;
  BatchNorm in eval mode counts 2 per input element with an affine transform (1 without);
  adaptive average pooling counts 1 per input element. Ops fvcore has no handle for (max-pool,
  residual ``add_``, average pool) count 0 and are listed with their number of occurrences in
  ``unsupported_ops``; fvcore's own ignore list (ReLU, cat, flatten, …) counts 0 silently.
* ``flops_torch``: an independent count by ``torch.utils.flop_counter.FlopCounterMode`` for one
  image: 2 FLOPs per multiply-add of conv / matmul ops only, so ≈ 2 × ``macs`` for conv nets
  (within ~1%: the difference is BatchNorm and pooling).
* ``torch_ms``: batch-1 latency on ``device`` (median of timed runs after warm-up, ms, via
  ``torch.utils.benchmark``); ``torch_img_s``: throughput at batch ``batch`` (images/s).
* ``onnx_ms``: batch-1 latency of the ``torch.onnx.export(dynamo=True)`` model in ONNX Runtime
  (CPU provider; CUDA provider with ``device="cuda"`` when onnxruntime-gpu is installed, timed
  from host numpy arrays, so it includes the copies); ``onnx_max_abs_err`` /
  ``onnx_max_rel_err``: parity with PyTorch on the same batch of 2 inputs, the relative error
  taken against the output's scale (see :func:`transfusion.bench.onnx_export.parity`).
* ``gpu_ms`` / ``gpu_amp_ms``: with ``device="cuda"``, batch-1 latency from CUDA events, in
  fp32 and under bf16 autocast.
* ``device``: the device type followed by what it is, e.g. ``"cpu (Intel(R) Xeon(R) Processor, 2 threads)"``
  or ``"cuda (NVIDIA H100 80GB HBM3)"``, and which ONNX Runtime provider ran.
* ``error``: ``None``, or what failed (``"stage: ExceptionType: message"``, several joined by
  ``"; "``); a failing stage leaves its columns ``None`` and the rest of the row is kept.

All measurements use the model in eval mode, on random inputs (seeded).
"""

from __future__ import annotations

import json
import platform
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from transfusion.models import check_input_size, create_model, list_models, model_config

from .onnx_export import check_onnx, export_onnx, ort_session, parity
from .timing import time_cpu, time_cuda, torch_threads

ROW_KEYS: tuple[str, ...] = (
    "model",
    "res",
    "batch",
    "num_classes",
    "in_chans",
    "params",
    "trainable_params",
    "macs",
    "flops_torch",
    "torch_ms",
    "torch_img_s",
    "onnx_ms",
    "onnx_max_abs_err",
    "onnx_max_rel_err",
    "gpu_ms",
    "gpu_amp_ms",
    "device",
    "unsupported_ops",
    "error",
)
"""Keys of a profile row, in column order."""

DEFAULT_REPEATS = 10
_PARITY_BATCH = 2


def _unwrap(model: nn.Module) -> nn.Module:
    """The eager module behind a ``torch.compile`` wrapper (jit tracing and export need it)."""
    return getattr(model, "_orig_mod", model)


class _eval_mode:
    """Context manager: put a module in eval mode, restore its previous mode on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.was_training = model.training

    def __enter__(self) -> nn.Module:
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)


def _flop_count_analysis() -> type:
    """fvcore's ``FlopCountAnalysis``, imported lazily.

    Importing ``fvcore.nn`` also imports its focal-loss module, which calls ``torch.jit.script``
    at import time; torch >= 2.10 deprecates ``torch.jit.script`` with a ``FutureWarning``. That
    warning concerns an fvcore module we do not use, so it is silenced for the import only.
    (FLOP counting itself uses ``torch.jit`` tracing, which still works in torch 2.14.)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning
        )
        try:
            from fvcore.nn import FlopCountAnalysis
        except ImportError as exc:  # pragma: no cover - fvcore is a core dependency
            raise ImportError("MAC counting needs fvcore: pip install fvcore") from exc
    return FlopCountAnalysis


def count_macs(model: nn.Module, input: Tensor) -> tuple[int, dict[str, int]]:
    """Multiply-accumulates of ``model(input)`` counted by fvcore (one multiply-add = 1).

    ``input`` is a whole batch (N, C, H, W): the count is for that batch, so pass N = 1 for a
    per-image figure. The model is traced in eval mode (restored after); BatchNorm counts
    2 per element (affine), adaptive average pooling 1 per element. Returns
    ``(macs, unsupported_ops)``, the latter mapping each op fvcore could not count (e.g.
    ``"aten::max_pool2d"``) to its number of occurrences — those ops contribute 0.
    """
    analysis_cls = _flop_count_analysis()
    module = _unwrap(model)
    with _eval_mode(module), torch.no_grad():
        analysis = analysis_cls(module, input)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        macs = int(analysis.total())
        unsupported = {str(op): int(n) for op, n in sorted(analysis.unsupported_ops().items())}
    return macs, unsupported


def count_flops_torch(model: nn.Module, input: Tensor) -> int:
    """FLOPs of ``model(input)`` by ``torch.utils.flop_counter.FlopCounterMode`` (2 per
    multiply-add, conv and matmul-like ops only), in eval mode, for the whole batch ``input``."""
    from torch.utils.flop_counter import FlopCounterMode

    module = _unwrap(model)
    counter = FlopCounterMode(display=False)
    with _eval_mode(module), torch.no_grad(), counter:
        module(input)
    return int(counter.get_total_flops())


def params(model: nn.Module) -> tuple[int, int]:
    """``(total, trainable)`` parameter counts; a tensor shared by several modules counts once."""
    total = trainable = 0
    for p in _unwrap(model).parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return total, trainable


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: fall back to what platform knows
    return platform.processor() or platform.machine() or "unknown CPU"


def device_label(device: str, threads: int | None = None) -> str:
    """What ``device`` is, in words: ``"cpu (<model name>, N threads)"`` or ``"cuda (<GPU>)"``."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    n = int(threads) if threads is not None else torch.get_num_threads()
    return f"cpu ({_cpu_name()}, {n} thread{'s' if n != 1 else ''})"


def _check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'") from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; use 'cpu' or 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device 'cuda' was requested but no CUDA device is available "
            "(torch.cuda.is_available() is False); use --device cpu"
        )
    return dev


def _positive(**values: int | None) -> None:
    for key, value in values.items():
        if value is not None and int(value) < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")


def empty_row(
    name: str, *, res: int | None, batch: int, num_classes: int, in_chans: int, device: str
) -> dict[str, Any]:
    """A row with the identifying keys set and every measurement ``None``."""
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(
        model=name,
        res=None if res is None else int(res),
        batch=int(batch),
        num_classes=int(num_classes),
        in_chans=int(in_chans),
        device=str(device),
        unsupported_ops={},
    )
    return row


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def profile_model(
    name: str,
    *,
    res: int,
    batch: int = 32,
    num_classes: int = 2,
    in_chans: int = 3,
    device: str = "cpu",
    onnx: bool = True,
    repeats: int = DEFAULT_REPEATS,
    threads: int | None = None,
    model: nn.Module | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Profile one model at ``res`` × ``res`` px; returns a row with the keys of :data:`ROW_KEYS`.

    ``name`` is a registered model name; with ``model`` given, that module is profiled instead
    and ``name`` only labels the row (the module is left in its original mode and device).
    ``batch`` is the batch size of the throughput measurement (``torch_img_s``); latencies are
    at batch 1. ``repeats`` is the number of timed runs per latency (after warm-up);
    ``threads`` sets torch's and ONNX Runtime's intra-op threads for the whole profile
    (default: torch's current count, used for ONNX Runtime as well).
    ``onnx=False`` skips export (the ``onnx_*`` keys stay ``None``).

    Raises ``ValueError`` before any compute for bad input: an unknown model name, a resolution
    below what the model accepts, a non-positive count, or ``device="cuda"`` without CUDA.
    A stage that fails while measuring is recorded in ``row["error"]`` and leaves its keys
    ``None``; the other stages still run.
    """
    _positive(res=res, batch=batch, num_classes=num_classes, in_chans=in_chans,
              repeats=repeats, threads=threads)
    dev = _check_device(device)
    if model is None:
        model_config(name)  # unknown name -> ValueError listing the known ones
        check_input_size(name, int(res), int(in_chans))
        model = create_model(name, num_classes=int(num_classes), in_chans=int(in_chans))
    res, batch, repeats = int(res), int(batch), int(repeats)

    row = empty_row(name, res=res, batch=batch, num_classes=num_classes,
                    in_chans=in_chans, device=device)
    errors: list[str] = []

    def stage(label: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:  # recorded in the row, never dropped
            errors.append(f"{label}: {type(exc).__name__}: {exc}")
            return None

    first = next(model.parameters(), None)
    orig_device = first.device if first is not None else torch.device("cpu")
    orig_training = model.training
    gen = torch.Generator().manual_seed(int(seed))
    x1 = torch.randn(1, in_chans, res, res, generator=gen)
    xb = torch.randn(batch, in_chans, res, res, generator=gen)
    xp = torch.randn(_PARITY_BATCH, in_chans, res, res, generator=gen)

    with torch_threads(threads):
        row["device"] = device_label(device, threads)
        row["params"], row["trainable_params"] = params(model)
        model.eval()
        try:
            # Counting and ONNX export run on the CPU: counts do not depend on the device.
            model.to("cpu")
            counted = stage("macs (fvcore)", lambda: count_macs(model, x1))
            if counted is not None:
                row["macs"], row["unsupported_ops"] = counted
            row["flops_torch"] = stage("flops_torch", lambda: count_flops_torch(model, x1))
            if onnx:
                measured = stage(
                    "onnx", lambda: _profile_onnx(model, x1, xp, device, repeats, threads)
                )
                if measured is not None:
                    provider, row["onnx_ms"], err = measured
                    row["onnx_max_abs_err"] = err["max_abs_err"]
                    row["onnx_max_rel_err"] = err["max_rel_err"]
                    row["device"] += f"; onnxruntime {provider}"

            model.to(dev)
            x1d, xbd = x1.to(dev), xb.to(dev)

            def forward(x: Tensor) -> Callable[[], Tensor]:
                def run() -> Tensor:
                    with torch.inference_mode():
                        return model(x)

                return run

            lat = stage("torch_ms", lambda: time_cpu(forward(x1d), repeats=repeats, threads=threads))
            row["torch_ms"] = None if lat is None else lat.median_ms
            thr = stage(
                "torch_img_s",
                lambda: time_cpu(forward(xbd), repeats=repeats, warmup=1, threads=threads),
            )
            row["torch_img_s"] = None if thr is None else thr.img_s(batch)
            if dev.type == "cuda":
                _sync(dev)
                gpu = stage("gpu_ms", lambda: time_cuda(forward(x1d), repeats=max(repeats, 20)))
                row["gpu_ms"] = None if gpu is None else gpu.median_ms
                amp = stage(
                    "gpu_amp_ms",
                    lambda: time_cuda(
                        forward(x1d), repeats=max(repeats, 20), amp_dtype=torch.bfloat16
                    ),
                )
                row["gpu_amp_ms"] = None if amp is None else amp.median_ms
        finally:
            model.to(orig_device)
            model.train(orig_training)
    row["error"] = "; ".join(errors) or None
    return row


def _profile_onnx(
    model: nn.Module,
    x1: Tensor,
    xp: Tensor,
    device: str,
    repeats: int,
    threads: int | None,
) -> tuple[str, float, dict[str, float]]:
    """Export, check, open and time the model in ONNX Runtime; returns
    ``(provider, batch-1 median ms, parity dict)``."""
    module = _unwrap(model)
    with tempfile.TemporaryDirectory(prefix="transfusion-onnx-") as tmp:
        path = export_onnx(module, x1, Path(tmp) / "model.onnx")
        check_onnx(path)
        # Same intra-op thread count as torch, so that the two latencies compare.
        ort_threads = threads if threads is not None else torch.get_num_threads()
        session = ort_session(path, device, threads=ort_threads)
        err = parity(module, session, xp)
        feed = {session.get_inputs()[0].name: x1.numpy()}
        timing = time_cpu(lambda: session.run(None, feed), repeats=repeats, threads=threads)
        provider = session.get_providers()[0]
    return provider, timing.median_ms, err


def profile_models(
    names: Iterable[str],
    *,
    res: int | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Profile several models; one row per name, in order (see :func:`profile_model` for the
    keyword arguments). ``res=None`` profiles each model at its design size
    (``model_config(name).default_res_px``). A model that cannot be profiled at all keeps its
    row, with ``error`` set and the measurements ``None``. ``on_row(row)`` is called after each
    model (for progress display)."""
    rows = []
    for name in names:
        try:
            px = int(res) if res is not None else model_config(name).default_res_px
            row = profile_model(name, res=px, **kwargs)
        except Exception as exc:  # recorded in the row, never dropped
            row = empty_row(
                name,
                res=res if res is not None else _default_res(name),
                batch=kwargs.get("batch", 32),
                num_classes=kwargs.get("num_classes", 2),
                in_chans=kwargs.get("in_chans", 3),
                device=kwargs.get("device", "cpu"),
            )
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def _default_res(name: str) -> int | None:
    return model_config(name).default_res_px if name in list_models() else None


def rows_to_frame(rows: Iterable[dict[str, Any]]):
    """Rows as a ``pandas.DataFrame`` with the columns of :data:`ROW_KEYS` in that order;
    ``unsupported_ops`` becomes a JSON string (so the frame writes cleanly to CSV)."""
    import pandas as pd

    records = []
    for row in rows:
        rec = {key: row.get(key) for key in ROW_KEYS}
        rec["unsupported_ops"] = json.dumps(rec["unsupported_ops"] or {}, sort_keys=True)
        records.append(rec)
    return pd.DataFrame.from_records(records, columns=list(ROW_KEYS))
