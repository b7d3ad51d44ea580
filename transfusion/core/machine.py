"""What machine measured a cost or trained a run, and with which libraries."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

#: distributions whose versions the report's environment section lists
LIBRARIES = ("transfusion", "torch", "torchvision", "onnx", "onnxruntime", "onnxscript", "fvcore", "numpy",
             "scikit-learn", "scipy", "pandas", "matplotlib")


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info() -> dict[str, Any]:
    """``cpu``, ``cores``, ``platform``, ``python``, ``torch``, ``onnxruntime`` (if installed) and
    ``gpu`` (if CUDA is available) of this machine."""
    import torch

    info: dict[str, Any] = {"cpu": cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(), "torch": torch.__version__}
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        info["onnxruntime"] = importlib.metadata.version("onnxruntime")
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def device_label(device: str, threads: int | None = None) -> str:
    """What ``device`` is, in words: ``"cpu (<model name>, N threads)"`` or ``"cuda (<GPU>)"``."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    n = int(threads) if threads is not None else torch.get_num_threads()
    return f"cpu ({cpu_name()}, {n} thread{'s' if n != 1 else ''})"


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str]:
    """Installed version of each distribution in ``names`` (``"not installed"`` if absent)."""
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def pid_running(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
