"""Latency helpers: median and spread of repeated timed runs after warm-up, in milliseconds.

* :func:`time_cpu` times any callable with the host clock through ``torch.utils.benchmark``
  (which also synchronises CUDA, so it is valid for GPU work and for ONNX Runtime sessions).
* :func:`time_cuda` times a callable with CUDA events, optionally under bf16 autocast.

Both return a :class:`Timing`: the median, the interquartile range (IQR, p75 − p25) and the 95th
percentile (p95) of the per-call time in ms. Report the median, and the p95 as the tail; this
machine class is noisy, so compare only numbers measured side by side (and see
:mod:`.load` for the other processes' load during a measurement).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Timing:
    """Per-call time of a repeatedly timed callable.

    ``median_ms``, ``iqr_ms`` (p75 − p25) and ``p95_ms`` (95th percentile) are in milliseconds
    per call; ``runs`` is the number of timed replicates (blocks of ``block`` calls each,
    ``block`` > 1 only for calls too short to time one at a time, whose p95 is then that of the
    blocks' means).
    """

    median_ms: float
    iqr_ms: float
    runs: int
    block: int = 1
    p95_ms: float | None = None

    @property
    def tail_ratio(self) -> float:
        """p95 over median: 1 for perfectly steady calls; large when some calls were held up."""
        if self.p95_ms is None or self.median_ms <= 0:
            return 1.0
        return self.p95_ms / self.median_ms

    def img_s(self, batch: int) -> float:
        """Throughput in images per second for a call that processes ``batch`` images."""
        return batch / (self.median_ms / 1e3)


def _check_counts(repeats: int, warmup: int) -> None:
    if int(repeats) < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if int(warmup) < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")


def _sync_cuda() -> None:
    # The benchmark Timer synchronises CUDA itself; the warm-up estimate must as well.
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_cpu(
    fn: Callable[[], object],
    *,
    repeats: int = 10,
    warmup: int = 2,
    threads: int | None = None,
    budget_s: float | None = None,
) -> Timing:
    """Time ``fn()`` with ``torch.utils.benchmark.Timer.blocked_autorange``.

    ``warmup`` untimed calls come first (the last one also estimates the per-call time, so the
    measurement runs for about ``repeats`` calls; very short calls are grouped in blocks so the
    timer overhead stays negligible). ``budget_s`` caps the timed part at about that many
    seconds for calls so slow that ``repeats`` of them would take longer — a throughput batch at
    224 px: those are timed one by one with the host clock, as many as fit in the budget (at
    least one after the warm-up), without the Timer's extra untimed estimation call. ``threads`` is the intra-op thread count for torch during
    timing (default: the current ``torch.get_num_threads()``; note that the Timer's own default
    would be 1). Returns median and IQR per call in ms.
    """
    _check_counts(repeats, warmup)
    estimate = 0.0
    for _ in range(max(int(warmup), 1)):
        _sync_cuda()
        start = time.perf_counter()
        fn()
        _sync_cuda()
        estimate = time.perf_counter() - start
    num_threads = int(threads) if threads is not None else torch.get_num_threads()
    if budget_s is not None and estimate * int(repeats) > float(budget_s) and estimate > 0.05:
        from transfusion.core.runtime import torch_threads

        calls = max(1, min(int(repeats), int(float(budget_s) / estimate)))
        with torch_threads(num_threads):
            return summarize_ms(call_times_ms(fn, repeats=calls, warmup=0))
    # imported here: torch.utils.benchmark pulls in cpp_extension, which logs a CUDA_HOME warning
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils import benchmark

    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=num_threads)
    # blocked_autorange stops once the timed total exceeds min_run_time: aim at `repeats` calls.
    min_run_time = max(estimate, 1e-6) * int(repeats)
    measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return Timing(
        median_ms=measurement.median * 1e3,
        iqr_ms=measurement.iqr * 1e3,
        runs=len(measurement.times),
        block=int(measurement.number_per_run),
        p95_ms=float(np.percentile(measurement.times, 95)) * 1e3,
    )


def time_cuda(
    fn: Callable[[], object],
    *,
    repeats: int = 20,
    warmup: int = 5,
    amp_dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Timing:
    """Time ``fn()`` on the current CUDA stream with CUDA events (one event pair per call).

    With ``amp_dtype`` (e.g. ``torch.bfloat16``) every call runs under
    ``torch.autocast("cuda", dtype=amp_dtype)``. Raises ``ValueError`` without CUDA.
    Returns median and IQR per call in ms.
    """
    _check_counts(repeats, warmup)
    if not torch.cuda.is_available():
        raise ValueError("time_cuda needs a CUDA device, and torch.cuda.is_available() is False")
    autocast = (
        torch.autocast("cuda", dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    )
    with torch.cuda.device(device) if device is not None else nullcontext(), autocast:
        for _ in range(int(warmup)):
            fn()
        torch.cuda.synchronize()
        pairs = []
        for _ in range(int(repeats)):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            pairs.append((start, end))
        torch.cuda.synchronize()
    times_ms = np.array([s.elapsed_time(e) for s, e in pairs], dtype=np.float64)
    return summarize_ms(times_ms)


def summarize_ms(times_ms: np.ndarray | list[float]) -> Timing:
    """Median, IQR and p95 (ms) of per-call times already in ms, one call per entry."""
    arr = np.asarray(times_ms, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no times to summarise")
    p25, p50, p75, p95 = np.percentile(arr, [25, 50, 75, 95])
    return Timing(median_ms=float(p50), iqr_ms=float(p75 - p25), runs=int(arr.size), p95_ms=float(p95))


def call_times_ms(fn: Callable[[], object], *, repeats: int = 20, warmup: int = 2) -> np.ndarray:
    """Wall time of each of ``repeats`` calls of ``fn()`` (ms), after ``warmup`` untimed calls:
    for a median and a tail (p95) of the same calls."""
    _check_counts(repeats, warmup)
    for _ in range(int(warmup)):
        fn()
    out = np.empty(int(repeats))
    for i in range(int(repeats)):
        start = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - start) * 1e3
    return out
