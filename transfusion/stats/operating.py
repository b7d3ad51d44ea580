"""Operating points: a decision threshold chosen on the validation split so that a target
sensitivity or specificity holds with stated confidence, and the test split's sensitivity,
specificity, PPV and NPV at it.

A score ``>= threshold`` is called positive. For a target sensitivity s at one-sided confidence c
the threshold is the **highest** one whose one-sided Clopper–Pearson lower bound of validation
sensitivity is ≥ s — the k-th highest validation positive score for the smallest k with
``Beta⁻¹(1 − c; k, n − k + 1) ≥ s`` (n validation positives); for a target specificity, the lowest
threshold whose specificity lower bound is ≥ s. The point rule (validation rate ≥ s, ``confidence
None``) puts the threshold where the true rate is s about half the time, so it misses the target
on new images about half the time; the bound makes a miss a ≤ 1 − c event. It needs enough cases:
even all n positives called positive give a lower bound of ``(1 − c)^(1/n)``, so a target s needs
``n ≥ log(1 − c) / log(s)`` (29 positives for 0.90 at 95%, :func:`cases_needed`); with fewer the
target is skipped with :class:`ThresholdUnreachable` saying how many it needs.

Binary tasks give one operating point per target, multilabel tasks one per label and target (over
the label's known rows); multiclass tasks have none (no single positive class). One run's test
proportions carry Wilson score intervals (the threshold is fixed before the test split is seen);
a cell of several seeds gets its intervals from the seeds and a bootstrap of the test images
(:func:`rate_replicates`, :mod:`transfusion.report.clinical`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from transfusion.data.base import TaskSpec

TARGETS = ("sensitivity", "specificity")
#: the test rates at a threshold, in the order of :func:`rate_replicates`
RATES = ("sensitivity", "specificity", "ppv", "npv")
#: one-sided confidence with which a chosen threshold meets its target on validation
DEFAULT_CONFIDENCE = 0.95


class ThresholdUnreachable(ValueError):
    """No threshold on these validation scores shows the target with the asked confidence (too
    few positives or negatives); the message says how many it needs."""


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


def lower_bound(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided Clopper–Pearson lower confidence bound of a proportion ``k / n`` (0 when k = 0):
    the true proportion is ≥ it with probability ≥ ``confidence``."""
    from scipy.stats import beta

    if not 0 <= k <= n or n == 0:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    return 0.0 if k == 0 else float(beta.ppf(1.0 - confidence, k, n - k + 1))


def cases_needed(level: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The fewest positives (negatives) a validation split needs before a sensitivity (specificity)
    ≥ ``level`` can be shown at one-sided ``confidence``: the smallest n with ``(1 − c)^(1/n) ≥ level``."""
    if not 0 < level < 1:
        raise ValueError(f"a target shown with confidence must be in (0, 1), got {level}")
    n = max(1, math.ceil(math.log(1.0 - confidence) / math.log(level) - 1e-9))
    while lower_bound(n, n, confidence) < level:  # guard the float edge
        n += 1
    return n


def _cases_to_call(n: int, level: float, confidence: float | None) -> int | None:
    """How many of ``n`` cases the threshold must put on the right side: the smallest k whose lower
    bound (``confidence``) or proportion (``None``, the point rule) reaches ``level``; ``None``
    when no k ≤ n does."""
    if confidence is None:
        return max(1, math.ceil(level * n - 1e-9))
    from scipy.stats import beta

    ks = np.arange(1, n + 1)
    ok = np.flatnonzero(beta.ppf(1.0 - confidence, ks, n - ks + 1) >= level)
    return int(ks[ok[0]]) if len(ok) else None


def _check_target(target: str, level: float, confidence: float | None) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown operating-point target {target!r}; use one of {TARGETS}")
    if not 0 < level <= 1:
        raise ValueError(f"operating-point level must be in (0, 1], got {level}")
    if confidence is not None and not (0 < confidence < 1 and level < 1):
        raise ValueError(f"confidence must be in (0, 1) and the level below 1, got {confidence} and {level}")


def threshold_for(scores: Any, targets: Any, target: str, level: float,
                  confidence: float | None = DEFAULT_CONFIDENCE) -> float:
    """The threshold (score units) meeting ``target`` (``sensitivity`` or ``specificity``) ≥
    ``level`` on ``scores`` (N,) with 0/1 ``targets`` (N,): with one-sided Clopper–Pearson
    ``confidence`` (module docstring), or as a point rate when ``confidence`` is ``None``.
    :class:`ThresholdUnreachable` (a ``ValueError``) when the split has too few cases."""
    _check_target(target, level, confidence)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(targets).reshape(-1).astype(bool)
    cls = "positive" if target == "sensitivity" else "negative"
    cases = np.sort(s[y])[::-1] if target == "sensitivity" else np.sort(s[~y])
    if not len(cases):
        raise ThresholdUnreachable(f"no {cls} validation cases to set a {target} threshold on")
    k = _cases_to_call(len(cases), level, confidence)
    if k is None:
        raise ThresholdUnreachable(f"{target} ≥ {level:g} at {confidence:.0%} one-sided confidence needs ≥ "
                                   f"{cases_needed(level, confidence)} {cls} validation cases, has {len(cases)}")
    if target == "sensitivity":
        return float(cases[k - 1])  # the k-th highest positive score: ≥ k positives called positive
    return float(np.nextafter(cases[k - 1], np.inf))  # just above the k-th lowest: ≥ k negatives below


def rates(scores: Any, targets: Any, threshold: float, level: float = 0.95) -> dict[str, Any]:
    """Sensitivity, specificity, PPV and NPV at ``threshold`` as [value, low, high] lists (Wilson
    intervals at ``level``: one run's test sample), with the confusion counts ``tp``, ``fp``,
    ``tn``, ``fn``."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(targets).reshape(-1).astype(bool)
    call = s >= threshold
    tp, fp = int(np.sum(call & y)), int(np.sum(call & ~y))
    fn, tn = int(np.sum(~call & y)), int(np.sum(~call & ~y))
    return {"sensitivity": list(wilson(tp, tp + fn, level)), "specificity": list(wilson(tn, tn + fp, level)),
            "ppv": list(wilson(tp, tp + fp, level)), "npv": list(wilson(tn, tn + fn, level)),
            "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def _rates_of_counts(c: np.ndarray) -> np.ndarray:
    """(…, 4) rates :data:`RATES` from (…, 4) counts (tp, fp, tn, fn); NaN where undefined."""
    tp, fp, tn, fn = np.moveaxis(c.astype(np.float64), -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([tp / (tp + fn), tn / (tn + fp), tp / (tp + fp), tn / (tn + fn)], axis=-1)


def rate_replicates(scores: Any, targets: Any, known: Any, threshold: float, *, n_boot: int = 1000,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(point (4,), bootstrap replicates (n_boot, 4)) of the :data:`RATES` (proportions) at
    ``threshold`` on the test rows: ``scores``, ``targets`` and ``known`` (whether the row counts,
    for a multilabel label) are full-length (N,) columns. The resampled rows depend only on
    ``seed`` and N, so the runs of one dataset get aligned replicates; NaN where a resample leaves
    a rate undefined."""
    s = np.asarray(scores, np.float64).reshape(-1)
    y = np.asarray(targets).reshape(-1).astype(bool)
    k = np.asarray(known, bool).reshape(-1)
    call = s >= threshold
    cells = np.stack([call & y & k, call & ~y & k, ~call & ~y & k, ~call & y & k], axis=1).astype(np.int64)  # (N, 4)
    rng = np.random.default_rng(seed)
    n, weights = len(s), cells.astype(np.float64)
    chunks = []
    for i in range(0, n_boot, 250):  # how often each row is drawn, then the counts as one product
        idx = rng.integers(0, n, (min(250, n_boot - i), n))
        drawn = np.bincount((idx + (np.arange(len(idx)) * n)[:, None]).ravel(), minlength=len(idx) * n)
        chunks.append(np.rint(drawn.reshape(len(idx), n) @ weights).astype(np.int64))
    reps = _rates_of_counts(np.concatenate(chunks)) if chunks else np.empty((0, len(RATES)))
    return _rates_of_counts(cells.sum(axis=0)), reps


@dataclass(frozen=True)
class OperatingPoint:
    """One operating point: chosen on validation so that ``target`` ≥ ``level`` holds with
    one-sided ``confidence`` (``None``: the point rule); ``val_bound`` is the Clopper–Pearson lower
    bound of the validation rate for the target; ``test`` holds the test split's rates at
    ``threshold`` (see :func:`rates`)."""

    label: str
    target: str
    level: float
    threshold: float
    val_sensitivity: float
    val_specificity: float
    test: dict[str, Any]
    confidence: float | None = DEFAULT_CONFIDENCE
    val_bound: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def columns(task: TaskSpec, scores: Any, targets: Any, mask: Any) -> list[tuple[str, np.ndarray, np.ndarray,
                                                                                  np.ndarray]]:
    """Per binary column: (label, scores (N,), targets (N,), known rows (N,) bool) — all N rows,
    ``known`` marking those whose label is known (every row for binary). Empty for multiclass."""
    s, t = np.asarray(scores, np.float64), np.asarray(targets)
    if task.kind == "multiclass":
        return []
    if task.kind == "binary":
        return [(task.labels[1] if len(task.labels) > 1 else "positive", s.reshape(-1), t.reshape(-1),
                 np.ones(len(s), bool))]
    no_mask = mask is None or not np.size(mask)
    return [(label, s[:, j], t[:, j], np.ones(len(s), bool) if no_mask else np.asarray(mask)[:, j].astype(bool))
            for j, label in enumerate(task.labels)]


@dataclass(frozen=True)
class Choice:
    """A threshold chosen on validation for one column and target, or why none was (``reason``)."""

    label: str
    target: str
    level: float
    threshold: float | None
    reason: str = ""


def choose_thresholds(task: TaskSpec, val: dict[str, Any], *, sensitivity: float = 0.9, specificity: float = 0.9,
                      confidence: float | None = DEFAULT_CONFIDENCE) -> list[Choice]:
    """For each binary column of ``val`` (prediction dict: ``scores``, ``targets``, optional
    ``mask``) a threshold for ``sensitivity`` and one for ``specificity``, each with one-sided
    ``confidence`` (:func:`threshold_for`); a target it cannot reach comes with its reason."""
    out = []
    for label, s, y, known in columns(task, val["scores"], val["targets"], val.get("mask")):
        for target, want in (("sensitivity", sensitivity), ("specificity", specificity)):
            try:
                out.append(Choice(label, target, want, threshold_for(s[known], y[known], target, want, confidence)))
            except ThresholdUnreachable as e:
                out.append(Choice(label, target, want, None, str(e)))
    return out


def operating_points(task: TaskSpec, val: dict[str, Any], test: dict[str, Any], *,
                     sensitivity: float = 0.9, specificity: float = 0.9, level: float = 0.95,
                     confidence: float | None = DEFAULT_CONFIDENCE) -> list[OperatingPoint]:
    """The operating points of a run: for each binary column (see the module docstring), a
    threshold on ``val`` for ``sensitivity`` and one for ``specificity`` at one-sided
    ``confidence``, each evaluated on ``test`` (Wilson intervals at ``level``). ``val`` / ``test``
    are prediction dicts (``scores``, ``targets``, optional ``mask``). A target the validation
    split cannot reach is skipped (:func:`choose_thresholds` gives the reason)."""
    val_cols = {c[0]: c for c in columns(task, val["scores"], val["targets"], val.get("mask"))}
    test_cols = {c[0]: c for c in columns(task, test["scores"], test["targets"], test.get("mask"))}
    points = []
    for ch in choose_thresholds(task, val, sensitivity=sensitivity, specificity=specificity, confidence=confidence):
        if ch.threshold is None:
            continue
        _, vs, vy, vk = val_cols[ch.label]
        _, ts, ty, tk = test_cols[ch.label]
        on_val = rates(vs[vk], vy[vk], ch.threshold, level)
        hit = on_val["tp"] if ch.target == "sensitivity" else on_val["tn"]
        n = on_val["tp"] + on_val["fn"] if ch.target == "sensitivity" else on_val["tn"] + on_val["fp"]
        bound = None if confidence is None else lower_bound(hit, n, confidence)
        points.append(OperatingPoint(ch.label, ch.target, ch.level, ch.threshold, on_val["sensitivity"][0],
                                     on_val["specificity"][0], rates(ts[tk], ty[tk], ch.threshold, level),
                                     confidence, bound))
    return points
