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
  taken against the output's scale (see :func:`transfusion.cost.onnx.parity`).
* ``int8_onnx_ms`` / ``int8_onnx_p95_ms`` (with ``int8=True``): batch-1 latency of the model's
  static int8 QDQ variant (:mod:`.quantize`; per-channel weights, activations calibrated on 16
  random inputs — the latency does not depend on the ranges) in the same ONNX Runtime session
  settings; ``onnx_bytes`` / ``int8_bytes``: the two files' sizes (graph and weights).
* ``gpu_ms`` / ``gpu_amp_ms``: with ``device="cuda"``, batch-1 latency from CUDA events, in
  fp32 and under bf16 autocast.
* ``torch_p95_ms`` / ``onnx_p95_ms``: the 95th percentile of the same timed calls (the tail).
* ``threads``: the intra-op thread count the CPU timings used: the one asked for, or by default
  torch's count lowered to the cores other processes left free when the profile started.
* ``load``: cores kept busy by *other* processes while the latencies were timed (the worst
  measurement; see :mod:`.load`), ``None`` where it cannot be measured.
* ``latency_flag``: ``None`` when the batch-1 latencies can be trusted, else why not — other
  processes busy (``load`` ≥ :data:`.load.BUSY_CORES`) or an unsteady tail (p95 over
  :data:`TAIL_RATIO` × the median). A flagged latency is measured once more before it is kept,
  and the flag says so.
* ``stage_seconds``: wall seconds of each stage of the profile (counting, ONNX export and
  timing, PyTorch latency, throughput), to see where a profile's time goes.
* ``device``: the device type followed by what it is, e.g. ``"cpu (Intel(R) Xeon(R) Processor, 2 threads)"``
  or ``"cuda (NVIDIA H100 80GB HBM3)"``, and which ONNX Runtime provider ran.
* ``error``: ``None``, or what failed (``"stage: ExceptionType: message"``, several joined by
  ``"; "``); a failing stage leaves its columns ``None`` and the rest of the row is kept.

All measurements use the model in eval mode, on random inputs (seeded).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from transfusion.core.machine import device_label
from transfusion.core.runtime import check_device, torch_threads
from transfusion.models import check_input_size, create_model, is_model, model_config

from . import DEFAULT_REPEATS
from .counts import count_flops_torch, count_macs, params, unwrap
from .load import BUSY_CORES, OtherLoad, other_load, threads_for_load
from .onnx import check_onnx, export_onnx, ort_session, parity
from .quantize import make_variant, model_bytes
from .timing import Timing, time_cpu, time_cuda

ROW_KEYS: tuple[str, ...] = (
    "model", "res", "batch", "num_classes", "in_chans", "params", "trainable_params", "macs", "flops_torch",
    "torch_ms", "torch_p95_ms", "torch_img_s", "onnx_ms", "onnx_p95_ms", "onnx_max_abs_err", "onnx_max_rel_err",
    "int8_onnx_ms", "int8_onnx_p95_ms", "onnx_bytes", "int8_bytes", "gpu_ms", "gpu_amp_ms", "device", "threads", "load", "latency_flag", "unsupported_ops", "stage_seconds", "error",
)
"""Keys of a profile row, in column order."""

_PARITY_BATCH = 2

#: a batch-1 latency whose p95 exceeds this multiple of its median is flagged unsteady
TAIL_RATIO = 1.5

#: seconds the batch-N throughput measurement may take (after its warm-up call), at least 2 calls
THROUGHPUT_BUDGET_S = 3.0


def _positive(**values: int | None) -> None:
    for key, value in values.items():
        if value is not None and int(value) < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")


def empty_row(name: str, *, res: int | None, batch: int, num_classes: int, in_chans: int,
              device: str) -> dict[str, Any]:
    """A row with the identifying keys set and every measurement ``None``."""
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(model=name, res=None if res is None else int(res), batch=int(batch), num_classes=int(num_classes),
               in_chans=int(in_chans), device=str(device), unsupported_ops={}, stage_seconds={})
    return row


class _Stages:
    """Runs measurement stages; a failing one is recorded (``"stage: Type: message"``) and its
    columns stay ``None`` — never dropped silently. Each stage's wall seconds go to ``seconds``;
    each latency's judgement (``judge``) to ``flags`` and the worst other-process load to ``load``."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.seconds: dict[str, float] = {}
        self.flags: list[str] = []
        self.load: float | None = None

    def __call__(self, label: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        except Exception as exc:  # recorded in the row, never dropped
            self.errors.append(f"{label}: {type(exc).__name__}: {exc}")
            return None
        finally:
            self.seconds[label] = round(self.seconds.get(label, 0.0) + time.perf_counter() - start, 3)

    def timed(self, label: str, measure: Callable[[], Timing]) -> Timing:
        """``measure()`` under a load meter, judged, and measured once more when the judgement
        says it cannot be trusted; the second measurement is kept and a remaining doubt flagged."""
        timing, load = _under_load(measure)
        doubt = judge(timing, load)
        if doubt:
            timing, load = _under_load(measure)
            doubt = judge(timing, load)
            if doubt:
                self.flags.append(f"{label}: {doubt} (measured twice)")
        if load is not None:
            self.load = load if self.load is None else max(self.load, load)
        return timing


def _under_load(measure: Callable[[], Timing]) -> tuple[Timing, float | None]:
    with OtherLoad() as meter:
        timing = measure()
    return timing, meter.cores


def judge(timing: Timing, load: float | None) -> str | None:
    """Why a latency measured as ``timing`` while other processes kept ``load`` cores busy
    cannot be trusted, or ``None`` when it can."""
    reasons = []
    if load is not None and load >= BUSY_CORES:
        reasons.append(f"{load:.1f} cores busy with other work")
    if timing.tail_ratio > TAIL_RATIO:
        reasons.append(f"unsteady, p95 {timing.tail_ratio:.1f}× the median")
    return "; ".join(reasons) or None


def _forward(model: nn.Module, x: Tensor) -> Callable[[], Tensor]:
    def run() -> Tensor:
        with torch.inference_mode():
            return model(x)

    return run


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
    int8: bool = False,
) -> dict[str, Any]:
    """Profile one model at ``res`` × ``res`` px; returns a row with the keys of :data:`ROW_KEYS`.

    ``name`` is a registered model name; with ``model`` given, that module is profiled instead
    and ``name`` only labels the row (the module is left in its original mode and device).
    ``batch`` is the batch size of the throughput measurement (``torch_img_s``); latencies are
    at batch 1. ``repeats`` is the number of timed runs per latency (after warm-up);
    ``threads`` sets torch's and ONNX Runtime's intra-op threads for the whole profile
    (default: torch's current count, lowered to the cores other processes leave free — sampled
    for a quarter of a second before timing — and used for ONNX Runtime as well).
    ``onnx=False`` skips export (the ``onnx_*`` keys stay ``None``); ``int8=True`` also times the
    model's static int8 variant (``int8_*`` keys; needs ``onnx``).

    Raises ``ValueError`` before any compute for bad input: an unknown model name, a resolution
    below what the model accepts, a non-positive count, or ``device="cuda"`` without CUDA.
    A stage that fails while measuring is recorded in ``row["error"]`` and leaves its keys
    ``None``; the other stages still run.
    """
    _positive(res=res, batch=batch, num_classes=num_classes, in_chans=in_chans, repeats=repeats, threads=threads)
    if int8 and not onnx:
        raise ValueError("int8=True times an ONNX variant: it needs onnx=True")
    dev = check_device(device)
    if model is None:
        model_config(name)  # unknown name -> ValueError listing the known ones
        check_input_size(name, int(res), int(in_chans))
        model = create_model(name, num_classes=int(num_classes), in_chans=int(in_chans))
    res, batch, repeats = int(res), int(batch), int(repeats)
    row = empty_row(name, res=res, batch=batch, num_classes=num_classes, in_chans=in_chans, device=device)
    stage = _Stages()
    first = next(model.parameters(), None)
    orig_device = first.device if first is not None else torch.device("cpu")
    orig_training = model.training
    gen = torch.Generator().manual_seed(int(seed))
    x1 = torch.randn(1, in_chans, res, res, generator=gen)
    xb = torch.randn(batch, in_chans, res, res, generator=gen)
    xp = torch.randn(_PARITY_BATCH, in_chans, res, res, generator=gen)
    if threads is None and dev.type == "cpu":
        threads = threads_for_load(torch.get_num_threads(), other_load())
    with torch_threads(threads):
        row["device"] = device_label(device, threads)
        row["params"], row["trainable_params"] = params(model)
        model.eval()
        try:
            model.to("cpu")  # counting and ONNX export run on the CPU: counts do not depend on the device
            _count(row, stage, model, x1)
            if onnx:
                _measure_onnx(row, stage, model, x1, xp, device, repeats, threads, int8=int8, gen=gen)
            model.to(dev)
            _measure_latency(row, stage, model, x1.to(dev), xb.to(dev), repeats, threads)
        finally:
            model.to(orig_device)
            model.train(orig_training)
        row["threads"] = torch.get_num_threads()
    row["load"] = None if stage.load is None else round(stage.load, 2)
    row["latency_flag"] = "; ".join(stage.flags) or None
    row["stage_seconds"] = stage.seconds
    row["error"] = "; ".join(stage.errors) or None
    return row


def _count(row: dict, stage: _Stages, model: nn.Module, x1: Tensor) -> None:
    counted = stage("macs (fvcore)", lambda: count_macs(model, x1))
    if counted is not None:
        row["macs"], row["unsupported_ops"] = counted
    row["flops_torch"] = stage("flops_torch", lambda: count_flops_torch(model, x1))


def _measure_onnx(row: dict, stage: _Stages, model: nn.Module, x1: Tensor, xp: Tensor, device: str,
                  repeats: int, threads: int | None, *, int8: bool = False,
                  gen: torch.Generator | None = None) -> None:
    """Export, check, open and time the model in ONNX Runtime; parity on ``xp``; with ``int8``,
    make and time its static int8 variant too."""

    def time_session(label: str, path: Path) -> tuple[Any, Timing]:
        # same intra-op thread count as torch, so that the latencies compare
        session = ort_session(path, device, threads=threads if threads is not None else torch.get_num_threads())
        feed = {session.get_inputs()[0].name: x1.numpy()}
        return session, stage.timed(label, lambda: time_cpu(lambda: session.run(None, feed), repeats=repeats,
                                                            threads=threads))

    def measure() -> tuple[str, float, dict[str, float]]:
        module = unwrap(model)
        with tempfile.TemporaryDirectory(prefix="transfusion-onnx-") as tmp:
            path = export_onnx(module, x1, Path(tmp) / "model.onnx")
            check_onnx(path)
            session, timing = time_session("onnx_ms", path)
            err = parity(module, session, xp)
            row["onnx_bytes"] = model_bytes(path)
            if int8:
                stage("int8", lambda: _measure_int8(row, time_session, path, x1, gen))
            return session.get_providers()[0], timing, err

    measured = stage("onnx", measure)
    if measured is not None:
        provider, timing, err = measured
        row["onnx_ms"], row["onnx_p95_ms"] = timing.median_ms, timing.p95_ms
        row["onnx_max_abs_err"], row["onnx_max_rel_err"] = err["max_abs_err"], err["max_rel_err"]
        row["device"] += f"; onnxruntime {provider}"


def _measure_int8(row: dict, time_session: Callable, fp32: Path, x1: Tensor, gen: torch.Generator | None) -> None:
    calib = torch.randn(16, *x1.shape[1:], generator=gen).numpy()
    path = make_variant("static", fp32, fp32.parent, calib)
    _, timing = time_session("int8_onnx_ms", path)
    row["int8_onnx_ms"], row["int8_onnx_p95_ms"] = timing.median_ms, timing.p95_ms
    row["int8_bytes"] = model_bytes(path)


def _measure_latency(row: dict, stage: _Stages, model: nn.Module, x1: Tensor, xb: Tensor, repeats: int,
                     threads: int | None) -> None:
    """Batch-1 latency and batch-N throughput in PyTorch; on CUDA, event-timed fp32 and bf16."""
    batch = xb.shape[0]
    lat = stage("torch_ms", lambda: stage.timed("torch_ms", lambda: time_cpu(_forward(model, x1), repeats=repeats,
                                                                              threads=threads)))
    if lat is not None:
        row["torch_ms"], row["torch_p95_ms"] = lat.median_ms, lat.p95_ms
    thr = stage("torch_img_s", lambda: time_cpu(_forward(model, xb), repeats=repeats, warmup=1, threads=threads,
                                                budget_s=THROUGHPUT_BUDGET_S))
    row["torch_img_s"] = None if thr is None else thr.img_s(batch)
    if x1.device.type != "cuda":
        return
    torch.cuda.synchronize(x1.device)
    gpu = stage("gpu_ms", lambda: time_cuda(_forward(model, x1), repeats=max(repeats, 20)))
    row["gpu_ms"] = None if gpu is None else gpu.median_ms
    amp = stage("gpu_amp_ms", lambda: time_cuda(_forward(model, x1), repeats=max(repeats, 20),
                                                 amp_dtype=torch.bfloat16))
    row["gpu_amp_ms"] = None if amp is None else amp.median_ms


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
                res=res if res is not None else (model_config(name).default_res_px if is_model(name) else None),
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


def rows_to_frame(rows: Iterable[dict[str, Any]]):
    """Rows as a ``pandas.DataFrame`` with the columns of :data:`ROW_KEYS` in that order;
    ``unsupported_ops`` becomes a JSON string (so the frame writes cleanly to CSV)."""
    import pandas as pd

    records = []
    for row in rows:
        rec = {key: row.get(key) for key in ROW_KEYS}
        rec["unsupported_ops"] = json.dumps(rec["unsupported_ops"] or {}, sort_keys=True)
        rec["stage_seconds"] = json.dumps(rec["stage_seconds"] or {})
        records.append(rec)
    return pd.DataFrame.from_records(records, columns=list(ROW_KEYS))
