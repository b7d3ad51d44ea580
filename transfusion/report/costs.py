"""The cost measures a report puts accuracy against (each a column of the summary table)."""

from __future__ import annotations

from dataclasses import dataclass

from transfusion.core.text import num


@dataclass(frozen=True)
class CostMeasure:
    """A cost column of the summary: its key, short name, axis label (with unit) and unit."""

    key: str
    name: str
    axis: str
    unit: str

    def fmt(self, v: float | None) -> str:
        """The value with its unit: ``0.285 GMACs``, ``2.11 M params``, ``6.3 ms``."""
        if v is None:
            return num(None)
        if self.key == "macs":
            return f"{v / 1e9:.3g} GMACs"
        if self.key == "params":
            return f"{v / 1e6:.3g} M params"
        return f"{v:.3g} ms"


COST_MEASURES: tuple[CostMeasure, ...] = (
    CostMeasure("macs", "MACs", "MACs per image at the run's resolution (fvcore; 1 multiply-add = 1)", "MACs"),
    CostMeasure("params", "parameters", "parameters (count)", "params"),
    CostMeasure("torch_ms", "PyTorch CPU latency", "PyTorch CPU latency, batch 1 (ms)", "ms"),
    CostMeasure("onnx_ms", "ONNX Runtime latency", "ONNX Runtime CPU latency, batch 1 (ms)", "ms"),
    CostMeasure("gpu_ms", "GPU latency", "GPU latency, batch 1, fp32 (ms)", "ms"),
)
