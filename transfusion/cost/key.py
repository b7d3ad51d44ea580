"""Which cost profile belongs to a run: :class:`CostKey`, and the cost columns a summary row
carries."""

from __future__ import annotations

from dataclasses import dataclass

#: the profile columns joined to every accuracy row (params: count; macs: multiply-adds per
#: image; *_ms: batch-1 latency in ms)
COST_COLUMNS: tuple[str, ...] = ("params", "macs", "torch_ms", "onnx_ms", "gpu_ms", "gpu_amp_ms")


@dataclass(frozen=True)
class CostKey:
    """A cost profile's identity: model × input (``res`` px, channels) × head size × how it was
    measured (device, throughput batch, ONNX on/off, int8 variant timed or not). Its text form is
    the store's key."""

    model: str
    res: int
    in_chans: int
    num_classes: int
    device: str = "cpu"
    batch: int = 32
    onnx: bool = True
    int8: bool = False

    def __str__(self) -> str:
        return (f"{self.model}|{self.res}px|{self.in_chans}ch|{self.num_classes}cls|{self.device}|b{self.batch}|"
                f"{'onnx' if self.onnx else 'no-onnx'}" + ("|int8" if self.int8 else ""))

    @property
    def input(self) -> tuple[str, int, int, int]:
        """(model, res, in_chans, num_classes): what the counts depend on, not how it was timed."""
        return self.model, self.res, self.in_chans, self.num_classes
