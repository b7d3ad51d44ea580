#!/usr/bin/env python
"""One-shot GPU cost check: profile the paper's models with ``--device cuda`` and write JSON.

    python scripts/gpu_check.py gpu_profile.json [--batch 32] [--repeats 20] [--no-onnx]

Profiles cbr_small, cbr_tiny and resnet50 at 224 px and inception_v3 at 299 px with
:func:`transfusion.cost.profile.profile_models` on CUDA (``gpu_ms`` / ``gpu_amp_ms`` are batch-1
latencies from CUDA events, fp32 and bf16 autocast; ONNX Runtime uses its CUDA provider when
onnxruntime-gpu is installed — the ``device`` field says which provider ran). It also times
one batch of ``--batch`` images per model in fp32 and bf16 autocast (``batch_timings``), where
autocast pays off. The JSON is rewritten after every model, so a run cut short keeps what it
measured. Expected run time on one H100: about a minute (ONNX export dominates).

Without CUDA it writes the environment, ``"skipped"`` and no rows, and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

MODELS: tuple[tuple[str, int], ...] = (
    ("cbr_small", 224),
    ("cbr_tiny", 224),
    ("resnet50", 224),
    ("inception_v3", 299),
)


def environment() -> dict[str, Any]:
    """Versions and devices that the numbers depend on."""
    import onnxruntime as ort

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "cuda_available": torch.cuda.is_available(),
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_capability"] = list(torch.cuda.get_device_capability(0))
        env["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    return env


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def batch_timings(name: str, res: int, batch: int, repeats: int) -> dict[str, Any]:
    """Batch-``batch`` forward time (ms, CUDA events) in fp32 and bf16 autocast, with img/s."""
    from transfusion.cost.timing import time_cuda
    from transfusion.models import create_model

    model = create_model(name, num_classes=2).cuda().eval()
    x = torch.randn(batch, 3, res, res, device="cuda")

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    out: dict[str, Any] = {"model": name, "res": res, "batch": batch}
    for key, dtype in (("fp32", None), ("bf16_autocast", torch.bfloat16)):
        t = time_cuda(run, repeats=repeats, warmup=5, amp_dtype=dtype)
        out[f"{key}_ms"] = t.median_ms
        out[f"{key}_iqr_ms"] = t.iqr_ms
        out[f"{key}_img_s"] = t.img_s(batch)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="JSON file to write")
    parser.add_argument("--batch", type=int, default=32, help="throughput batch size (default 32)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per latency (default 20)")
    parser.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip ONNX Runtime")
    args = parser.parse_args(argv)

    payload: dict[str, Any] = {"env": environment(), "rows": [], "batch_timings": []}
    if not torch.cuda.is_available():
        payload["skipped"] = "no CUDA device (torch.cuda.is_available() is False)"
        write_json(args.out, payload)
        print(f"gpu_check: {payload['skipped']}; wrote environment only to {args.out}")
        return 0

    from transfusion.cost.profile import profile_models

    torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its kernels
    payload["env"]["cudnn_benchmark"] = True
    start = time.perf_counter()
    for name, res in MODELS:
        t0 = time.perf_counter()
        (row,) = profile_models(
            [name], res=res, batch=args.batch, device="cuda", onnx=args.onnx, repeats=args.repeats
        )
        payload["rows"].append(row)
        write_json(args.out, payload)
        try:
            payload["batch_timings"].append(batch_timings(name, res, args.batch, args.repeats))
        except Exception as exc:  # recorded in the JSON, the check goes on
            payload["batch_timings"].append({"model": name, "error": f"{type(exc).__name__}: {exc}"})
        torch.cuda.empty_cache()
        write_json(args.out, payload)
        print(
            f"gpu_check: {name} @ {res} px in {time.perf_counter() - t0:.1f} s: "
            f"torch {row['torch_ms']} ms, gpu {row['gpu_ms']} ms, amp {row['gpu_amp_ms']} ms, "
            f"onnx {row['onnx_ms']} ms, error {row['error']}",
            flush=True,
        )
    payload["seconds"] = time.perf_counter() - start
    write_json(args.out, payload)
    print(f"gpu_check: wrote {args.out} in {payload['seconds']:.0f} s")
    return 1 if any(r["error"] for r in payload["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
