"""Operating points: a decision threshold chosen on the validation split for a target
sensitivity or specificity, and the test split's sensitivity, specificity, PPV and NPV at it.

A score ``>= threshold`` is called positive. For a target sensitivity s the threshold is the
highest one whose validation sensitivity is at least s; for a target specificity, the lowest one
whose validation specificity is at least s. Test proportions carry Wilson score intervals (the
threshold is fixed before the test split is seen, so each is a binomial proportion).
Binary tasks give one operating point per target, multilabel tasks one per label and target
(over the label's known rows); multiclass tasks have none (no single positive class).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from transfusion.data.base import TaskSpec

TARGETS = ("sensitivity", "specificity")


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float | None, float | None, float | None]:
    """Proportion ``k / n`` with its Wilson score interval; ``(None, None, None)`` when n = 0."""
    from scipy.stats import norm

    if n == 0:
        return None, None, None
    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def threshold_for(scores: Any, targets: Any, target: str, level: float) -> float:
    """The threshold meeting ``target`` (``sensitivity`` or ``specificity``) ≥ ``level`` on
    ``scores`` (N,) with 0/1 ``targets`` (N,)."""
    if target not in TARGETS:
        raise ValueError(f"unknown operating-point target {target!r}; use one of {TARGETS}")
    if not 0 < level <= 1:
        raise ValueError(f"operating-point level must be in (0, 1], got {level}")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(targets).reshape(-1).astype(bool)
    if target == "sensitivity":
        pos = np.sort(s[y])[::-1]
        if not len(pos):
            raise ValueError("no positive cases to set a sensitivity threshold on")
        k = math.ceil(level * len(pos) - 1e-9)
        return float(pos[k - 1])  # the k-th highest positive score: ≥ k positives called positive
    neg = np.sort(s[~y])
    if not len(neg):
        raise ValueError("no negative cases to set a specificity threshold on")
    k = math.ceil(level * len(neg) - 1e-9)
    return float(np.nextafter(neg[k - 1], np.inf))  # just above the k-th lowest: ≥ k negatives below


def rates(scores: Any, targets: Any, threshold: float, level: float = 0.95) -> dict[str, Any]:
    """Sensitivity, specificity, PPV and NPV at ``threshold`` as [value, low, high] lists, with
    the confusion counts ``tp``, ``fp``, ``tn``, ``fn``."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(targets).reshape(-1).astype(bool)
    call = s >= threshold
    tp, fp = int(np.sum(call & y)), int(np.sum(call & ~y))
    fn, tn = int(np.sum(~call & y)), int(np.sum(~call & ~y))
    return {"sensitivity": list(wilson(tp, tp + fn, level)), "specificity": list(wilson(tn, tn + fp, level)),
            "ppv": list(wilson(tp, tp + fp, level)), "npv": list(wilson(tn, tn + fn, level)),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


@dataclass(frozen=True)
class OperatingPoint:
    """One operating point: chosen on validation for ``target`` ≥ ``level``; ``test`` holds the
    test split's rates at ``threshold`` (see :func:`rates`)."""

    label: str
    target: str
    level: float
    threshold: float
    val_sensitivity: float
    val_specificity: float
    test: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _columns(task: TaskSpec, scores: np.ndarray, targets: np.ndarray,
             mask: np.ndarray | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if task.kind == "binary":
        return [(task.labels[1] if len(task.labels) > 1 else "positive", scores.reshape(-1), targets.reshape(-1))]
    out = []
    for j, label in enumerate(task.labels):
        keep = np.ones(len(scores), bool) if mask is None or not np.size(mask) else mask[:, j].astype(bool)
        out.append((label, scores[keep, j], targets[keep, j]))
    return out


def operating_points(task: TaskSpec, val: dict[str, Any], test: dict[str, Any], *,
                     sensitivity: float = 0.9, specificity: float = 0.9,
                     level: float = 0.95) -> list[OperatingPoint]:
    """The operating points of a run: for each binary column (see the module docstring), a
    threshold on ``val`` for ``sensitivity`` and one for ``specificity``, each evaluated on
    ``test``. ``val`` / ``test`` are prediction dicts (``scores``, ``targets``, optional ``mask``).
    A column whose validation split lacks positives or negatives is skipped."""
    if task.kind == "multiclass":
        return []
    cols_val = _columns(task, np.asarray(val["scores"], np.float64), np.asarray(val["targets"]), val.get("mask"))
    cols_test = _columns(task, np.asarray(test["scores"], np.float64), np.asarray(test["targets"]), test.get("mask"))
    points = []
    for (label, vs, vy), (_, ts, ty) in zip(cols_val, cols_test):
        for target, want in (("sensitivity", sensitivity), ("specificity", specificity)):
            try:
                thr = threshold_for(vs, vy, target, want)
            except ValueError:
                continue
            on_val = rates(vs, vy, thr, level)
            points.append(OperatingPoint(label, target, want, thr, on_val["sensitivity"][0], on_val["specificity"][0],
                                         rates(ts, ty, thr, level)))
    return points
