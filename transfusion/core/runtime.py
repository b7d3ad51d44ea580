"""The runtime policy, decided in one place: where compute runs and in which precision and
memory layout, with how many CPU threads.

A :class:`Runtime` changes speed (and, for bf16, the rounding), never the experiment: it is
left out of run ids and recorded with every run. ``torch`` is imported only when a runtime is
resolved or used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEVICES = ("cpu", "cuda")


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when torch sees a CUDA device, else ``cpu``; any other name is returned
    as given (check it with :func:`check_device`)."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> torch.device:
    """``device`` as a ``torch.device``; ``ValueError`` naming the bad value for anything but
    ``cpu`` / ``cuda[:N]``, and for ``cuda`` on a machine without CUDA."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'") from exc
    if dev.type not in DEVICES:
        raise ValueError(f"unsupported device {device!r}; use 'cpu' or 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but there is no CUDA device on this machine "
                         "(torch.cuda.is_available() is False); use --device cpu")
    return dev


def check_threads(threads: int | None) -> int | None:
    """``threads`` as an int ≥ 1 (``None`` stays ``None``); ``ValueError`` otherwise."""
    if threads is None:
        return None
    if isinstance(threads, bool) or int(threads) != threads or int(threads) < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    return int(threads)


@dataclass(frozen=True)
class Runtime:
    """How a model runs: ``device`` (``cpu`` or ``cuda[:N]``), ``amp`` (bf16 autocast),
    ``channels_last`` (NHWC memory format for model and inputs) and ``threads`` (CPU intra-op
    threads; ``None``: leave torch's setting alone). Make one with :meth:`resolve`."""

    device: str = "cpu"
    amp: bool = False
    channels_last: bool = False
    threads: int | None = None

    @classmethod
    def resolve(cls, device: str = "cpu", *, amp: bool | None = None, threads: int | None = None,
                channels_last: bool | None = None) -> Runtime:
        """The policy. ``amp=None``: bf16 autocast on CUDA, fp32 on CPU (fp32 is the reference
        numerics; on CPU bf16 trains 2.3-2.6x faster but rounds differently per instruction set).
        ``channels_last=None``: on with CUDA or with bf16 autocast (oneDNN's AMX / AVX-512 bf16
        kernels want NHWC), off otherwise. ``threads=None`` on CPU: every core."""
        dev = check_device(device)
        threads = check_threads(threads)
        use_amp = dev.type == "cuda" if amp is None else bool(amp)
        if channels_last is None:
            channels_last = dev.type == "cuda" or use_amp
        if dev.type == "cpu" and threads is None:
            threads = os.cpu_count() or 1
        return cls(str(dev), use_amp, bool(channels_last), threads)

    @property
    def torch_device(self) -> torch.device:
        import torch

        return torch.device(self.device)

    def apply(self) -> None:
        """Set this process's torch intra-op threads (a worker process owns its threads)."""
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)

    def autocast(self) -> Any:
        """A context running the block under bf16 autocast when ``amp`` is on."""
        if not self.amp:
            return nullcontext()
        import torch

        return torch.autocast(self.torch_device.type, dtype=torch.bfloat16)

    def model(self, model: Any) -> Any:
        """``model`` moved to the device, in channels-last layout when the policy says so."""
        import torch

        model = model.to(self.torch_device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def input(self, x: Any) -> Any:
        """A batch (N, C, H, W) on the device, in channels-last layout when the policy says so."""
        import torch

        x = x.to(self.torch_device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @contextmanager
    def scoring(self, model: Any) -> Iterator[Any]:
        """The layout to score in: on a CPU whose policy is not channels-last, ``model`` is
        switched to channels-last for the block (oneDNN's inference kernels were 20% faster for
        CBR-Small and 47% for ResNet18 at 48 px on one thread; training was not) and back after.
        Parameters keep their identity (an optimiser holding them is unaffected). Yields whether
        inputs must be made channels-last too."""
        import torch

        switch = self.torch_device.type == "cpu" and not self.channels_last
        if not switch:
            yield self.channels_last
            return
        model.to(memory_format=torch.channels_last)
        try:
            yield True
        finally:
            model.to(memory_format=torch.contiguous_format)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Set torch's intra-op threads to ``threads`` inside the block and restore them after;
    ``None`` leaves them alone. Small eigendecompositions and timing loops need this: an
    oversubscribed 512x512 ``eigh`` took 7 s instead of 0.05 s on a shared 2-core machine."""
    threads = check_threads(threads)
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
