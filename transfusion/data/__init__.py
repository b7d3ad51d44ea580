"""Tasks and datasets: synthetic generators, real-format adapters, splits and the uint8 cache.

>>> from transfusion.data import load_dataset
>>> ds = load_dataset("synth-retina?n=200&res=32")  # doctest: +SKIP
>>> ds.task.kind, ds["train"].images.shape  # doctest: +SKIP
('binary', (140, 3, 32, 32))
"""

from typing import Any

from . import formats as _formats  # noqa: F401  (registers the real-format kinds)
from . import synthetic as _synthetic  # noqa: F401  (registers the synthetic kinds)
from ._images import ImageReadError
from ._registry import (
    DatasetKind,
    canonical_spec,
    dataset_kind,
    label_counts,
    list_dataset_kinds,
    load_dataset,
    parse_spec,
    register_kind,
    spec_res,
)
from ._splits import subsample
from .base import TASK_KINDS, ArraySplit, Dataset, TaskSpec


def __getattr__(name: str) -> Any:  # PEP 562: augmentation needs torch, loaded on first use
    if name == "augment":
        from ._augment import augment

        return augment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "TASK_KINDS",
    "ArraySplit",
    "Dataset",
    "DatasetKind",
    "ImageReadError",
    "TaskSpec",
    "augment",
    "canonical_spec",
    "dataset_kind",
    "label_counts",
    "list_dataset_kinds",
    "load_dataset",
    "parse_spec",
    "register_kind",
    "spec_res",
    "subsample",
]
