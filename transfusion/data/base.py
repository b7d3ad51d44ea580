"""Core data records shared by every dataset: the task spec and in-memory splits.

Conventions (every adapter and generator follows them):
- images: ``uint8`` array of shape (N, C, H, W), C = 1 (grayscale) or 3 (RGB); may be a
  read-only ``np.memmap`` from the cache.
- targets: binary and multiclass → ``int64`` (N,) class indices (binary: 0 = negative,
  1 = positive); multilabel → ``float32`` (N, L) with values 0/1.
- mask: multilabel only, ``bool`` (N, L); False marks an uncertain label that is ignored in the
  loss and in AUC (CheXpert ``uncertain=ignore``). ``None`` means every label is observed.
- model outputs: binary → 2 logits (softmax; the score is P(class 1)); multiclass → C logits;
  multilabel → L logits (independent sigmoids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

TaskKind = Literal["binary", "multiclass", "multilabel"]
TASK_KINDS: tuple[str, ...] = ("binary", "multiclass", "multilabel")


@dataclass(frozen=True)
class TaskSpec:
    """What is predicted and how it is scored.

    Evaluation rule by kind: ``binary`` — AUC of P(positive); ``multilabel`` — AUC per label
    (masked entries skipped) and their macro mean; ``multiclass`` — one-vs-rest macro AUC and
    accuracy. ``labels`` names the classes (binary/multiclass, in index order) or the labels
    (multilabel). ``positive_rule`` says in words how the positive class was derived
    (e.g. "referable DR: grade >= 2").
    """

    kind: TaskKind
    labels: tuple[str, ...]
    positive_rule: str = ""

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"task kind must be one of {TASK_KINDS}, got {self.kind!r}")
        if self.kind == "binary" and len(self.labels) != 2:
            raise ValueError(f"a binary task has 2 class names (negative, positive), got {self.labels}")
        if len(self.labels) < 2 and self.kind == "multiclass":
            raise ValueError(f"a multiclass task needs >= 2 classes, got {self.labels}")
        if not self.labels:
            raise ValueError("a task needs at least one label")

    @property
    def num_outputs(self) -> int:
        """Width of the model's head for this task."""
        return len(self.labels)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "labels": list(self.labels), "positive_rule": self.positive_rule}

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        """The inverse of :meth:`to_dict` (``positive_rule`` may be absent)."""
        try:
            return cls(d["kind"], tuple(d["labels"]), d.get("positive_rule", "") or "")
        except KeyError:
            raise ValueError(f"a task record needs 'kind' and 'labels', got keys {sorted(d)}") from None


@dataclass
class ArraySplit:
    """One split held as arrays (see the module docstring for shapes and dtypes)."""

    images: np.ndarray
    targets: np.ndarray
    mask: np.ndarray | None = None
    ids: np.ndarray | None = None  # optional per-image identifiers (file paths, patient ids)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {self.images.shape}")
        if len(self.targets) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.targets)} targets")
        if self.mask is not None and self.mask.shape != self.targets.shape:
            raise ValueError(f"mask shape {self.mask.shape} != targets shape {self.targets.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> ArraySplit:
        """The rows ``index`` (a copy for fancy indexing)."""
        return ArraySplit(
            self.images[index],
            self.targets[index],
            None if self.mask is None else self.mask[index],
            None if self.ids is None else self.ids[index],
        )


@dataclass
class Dataset:
    """A task and its ``train`` / ``val`` / ``test`` splits at one resolution (``res`` px)."""

    name: str
    task: TaskSpec
    splits: dict[str, ArraySplit]
    res: int
    in_chans: int
    info: dict = field(default_factory=dict)

    def __getitem__(self, split: str) -> ArraySplit:
        try:
            return self.splits[split]
        except KeyError:
            raise KeyError(f"dataset {self.name!r} has no split {split!r}; splits: {sorted(self.splits)}") from None
