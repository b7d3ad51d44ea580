"""Cost of a model: parameters, MACs and FLOPs (:mod:`.counts`), latency in PyTorch, ONNX Runtime
and on a GPU (:mod:`.timing`, :mod:`.onnx`), one row per model (:mod:`.profile`) and the key that
joins a profile to the runs it belongs to (:mod:`.key`)."""

from .key import COST_COLUMNS, CostKey

#: timed runs per latency measurement (after warm-up) unless told otherwise
DEFAULT_REPEATS = 10

__all__ = ["COST_COLUMNS", "DEFAULT_REPEATS", "CostKey"]
