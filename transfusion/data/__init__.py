"""Tasks and datasets: synthetic generators, real-format adapters, splits and the uint8 cache."""

from .base import TASK_KINDS, ArraySplit, Dataset, TaskSpec

__all__ = ["TASK_KINDS", "ArraySplit", "Dataset", "TaskSpec"]
