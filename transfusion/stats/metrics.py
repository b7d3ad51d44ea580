"""Classification metrics for every task kind: scores from logits, AUC / AUPRC / accuracy, and
steps to a target (bootstrap intervals in :mod:`.bootstrap`, DeLong in :mod:`.delong`).

Shapes and units (see :mod:`transfusion.data.base` for the data conventions):

- ``scores``: binary → (N,) P(positive); multiclass → (N, C) class probabilities;
  multilabel → (N, L) independent per-label probabilities. Make them with
  :func:`scores_from_logits`.
- ``targets``: binary/multiclass → int (N,) class indices; multilabel → (N, L) 0/1.
- ``mask``: multilabel only, bool (N, L); False = uncertain label, ignored everywhere.
- Every metric (AUC, AUPRC, accuracy) is a fraction in [0, 1]; differences and margins are
  in the same units: 0.5 "AUC points" (as reports print them) is ``0.005`` here.

Rules:

- AUC and AUPRC (average precision) come from scikit-learn. Binary: one AUC. Multiclass:
  one-vs-rest AUC per class, macro mean (scikit-learn's ``multi_class="ovr"``). Multilabel:
  AUC per label on its unmasked rows, macro mean. A class/label whose evaluated rows hold a
  single class has no AUC: it is listed in ``skipped`` and left out of the mean. If nothing is
  left, the metric is ``None`` with ``auc_reason`` saying why — never a silent NaN.
- Accuracy: binary predicts positive when P(positive) > 0.5 (the argmax of the two logits,
  ties to the negative class); multiclass argmax; multilabel predicts a label when its
  probability > 0.5 and averages the per-label accuracies over unmasked entries.
- Bootstrap: rows (test images) are resampled with replacement. Replicates are computed by
  a vectorised, tie-exact rank formula from the resampling counts (equal to scikit-learn's
  AUC / average precision on the resampled rows). A replicate in which a class/label that is
  evaluable on the full data becomes single-class (or, for accuracy, has no unmasked rows)
  is *degenerate*: it is skipped and counted, so every kept replicate averages over the same
  labels as the point estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from transfusion.data.base import TaskSpec

Metric = Literal["auc", "auprc", "acc"]
METRICS: tuple[str, ...] = ("auc", "auprc", "acc")



class UndefinedMetricError(ValueError):
    """The requested metric is undefined on these targets (e.g. AUC with a single class)."""


# --------------------------------------------------------------------------- conversion


def _to_numpy(x: Any) -> np.ndarray:
    """A numpy array from a numpy array, a sequence or a torch tensor (any device, any dtype)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        t = x.detach().cpu()
        if t.dtype.is_floating_point:
            t = t.double()  # bfloat16/float16 have no numpy view
        return t.numpy()
    return np.asarray(x)


def scores_from_logits(task: TaskSpec, logits: Any) -> np.ndarray:
    """Turn a model's raw outputs into scores (float64 numpy) per the task's rule.

    ``logits``: (N, K) numpy array or torch tensor, K = ``task.num_outputs``.
    Returns binary → (N,) P(class 1) = softmax(logits)[:, 1], computed as
    sigmoid(l1 − l0) so large logits do not overflow; multiclass → (N, C) softmax (shifted by
    the row max inside scipy); multilabel → (N, L) elementwise sigmoid (``scipy.special.expit``,
    stable for any magnitude).
    """
    from scipy import special  # scipy and scikit-learn load where they compute, not on import

    z = _to_numpy(logits).astype(np.float64, copy=False)
    k = task.num_outputs
    if z.ndim != 2 or z.shape[1] != k:
        raise ValueError(
            f"{task.kind} task with {k} outputs expects logits (N, {k}), got shape {z.shape}"
        )
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain NaN or inf (did training diverge?)")
    if task.kind == "binary":
        return special.expit(z[:, 1] - z[:, 0])
    if task.kind == "multiclass":
        return special.softmax(z, axis=1)
    return special.expit(z)


# --------------------------------------------------------------------------- validation


def _check_inputs(
    task: TaskSpec, scores: Any, targets: Any, mask: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated float64 scores, targets (int (N,) or bool (N, L)) and mask (bool (N, L) or None)."""
    s = _to_numpy(scores).astype(np.float64, copy=False)
    t = _to_numpy(targets)
    m = None if mask is None else _to_numpy(mask).astype(bool, copy=False)
    n = len(t)
    if n == 0:
        raise ValueError("no rows to evaluate (empty targets)")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or inf (did training diverge?)")
    k = task.num_outputs
    if task.kind == "binary":
        if s.ndim == 2 and s.shape[1] == 1:
            s = s[:, 0]
        if s.shape != (n,):
            raise ValueError(
                f"binary scores must be (N,) = ({n},) P(positive), got shape {s.shape}"
            )
    elif s.shape != (n, k):
        raise ValueError(f"{task.kind} scores must be (N, {k}) = ({n}, {k}), got shape {s.shape}")
    if task.kind == "multilabel":
        if t.shape != (n, k):
            raise ValueError(f"multilabel targets must be (N, {k}), got shape {t.shape}")
        if m is not None and m.shape != t.shape:
            raise ValueError(f"mask shape {m.shape} != targets shape {t.shape}")
        observed = t if m is None else t[m]
        if not np.all((observed == 0) | (observed == 1)):
            raise ValueError("multilabel targets must be 0/1 on unmasked entries")
        tb = np.zeros(t.shape, dtype=bool)
        valid = np.ones(t.shape, dtype=bool) if m is None else m
        tb[valid] = t[valid] == 1
        return s, tb, m
    if m is not None:
        raise ValueError(f"a mask is only meaningful for multilabel tasks, not {task.kind}")
    if t.ndim != 1:
        raise ValueError(f"{task.kind} targets must be (N,) class indices, got shape {t.shape}")
    if not np.all((t >= 0) & (t < k) & (t == np.round(t))):
        raise ValueError(
            f"{task.kind} targets must be integers in [0, {k}), got values {np.unique(t)[:10]}"
        )
    return s, t.astype(np.int64), None


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level}")



@dataclass(frozen=True)
class _AccColumn:
    """Per-row correctness (n,) of one accuracy unit on ``rows`` (None = all rows)."""

    name: str
    rows: np.ndarray | None
    correct: np.ndarray


def _binary_problems(
    task: TaskSpec, s: np.ndarray, t: np.ndarray, m: np.ndarray | None
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """(name, score (n,), positive (n,) bool, rows or None) for each class/label ranking problem."""
    if task.kind == "binary":
        return [(task.labels[1], s, t == 1, None)]
    if task.kind == "multiclass":
        return [(name, s[:, c], t == c, None) for c, name in enumerate(task.labels)]
    out = []
    for j, name in enumerate(task.labels):
        if m is None:
            out.append((name, s[:, j], t[:, j], None))
        else:
            rows = np.flatnonzero(m[:, j])
            out.append((name, s[rows, j], t[rows, j], rows))
    return out


def _acc_columns(
    task: TaskSpec, s: np.ndarray, t: np.ndarray, m: np.ndarray | None
) -> list[_AccColumn]:
    """Accuracy units: one over all rows (binary/multiclass) or one per label with unmasked rows."""
    if task.kind == "binary":
        return [_AccColumn("all", None, (s > 0.5) == (t == 1))]
    if task.kind == "multiclass":
        return [_AccColumn("all", None, np.argmax(s, axis=1) == t)]
    cols = []
    correct = (s > 0.5) == t
    for j, name in enumerate(task.labels):
        rows = None if m is None else np.flatnonzero(m[:, j])
        if rows is not None and rows.size == 0:
            continue  # no observed entry: this label has no accuracy
        cols.append(_AccColumn(name, rows, correct[:, j] if rows is None else correct[rows, j]))
    return cols


def _single_class_reason(positive: np.ndarray) -> str | None:
    if positive.size == 0:
        return "no unmasked rows"
    n_pos = int(positive.sum())
    if n_pos == 0:
        return f"no positives among {positive.size} rows"
    if n_pos == positive.size:
        return f"no negatives among {positive.size} rows"
    return None


# --------------------------------------------------------------------------- evaluate


def evaluate(task: TaskSpec, scores: Any, targets: Any, mask: Any = None) -> dict[str, Any]:
    """AUC, AUPRC and accuracy of ``scores`` against ``targets`` per the task's rule.

    Shapes: see the module docstring. Returns a JSON-ready dict:

    - ``auc``, ``auprc``: macro means over evaluable classes/labels (float in [0, 1]), or
      ``None`` when no class/label is evaluable — then ``auc_reason`` says why;
    - ``acc``: accuracy in [0, 1] (``None`` only if no entry is observed);
    - ``per_label_auc``, ``per_label_auprc``: class/label name → value or ``None``
      (binary: a single entry under the positive class name);
    - ``skipped``: names left out of the AUC/AUPRC mean; ``skip_reasons``: name → reason;
    - ``auc_reason``: ``None`` when ``auc`` is defined; ``n``: number of rows.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    s, t, m = _check_inputs(task, scores, targets, mask)
    per_auc: dict[str, float | None] = {}
    per_ap: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for name, score, positive, _rows in _binary_problems(task, s, t, m):
        why = _single_class_reason(positive)
        if why is not None:
            per_auc[name] = per_ap[name] = None
            reasons[name] = why
            continue
        per_auc[name] = float(roc_auc_score(positive, score))
        per_ap[name] = float(average_precision_score(positive, score))
    defined_auc = [v for v in per_auc.values() if v is not None]
    defined_ap = [v for v in per_ap.values() if v is not None]
    auc_reason = None
    if not defined_auc:
        auc_reason = "AUC is undefined: " + "; ".join(f"{k}: {v}" for k, v in reasons.items())
    acc_cols = _acc_columns(task, s, t, m)
    acc = float(np.mean([c.correct.mean() for c in acc_cols])) if acc_cols else None
    return {
        "auc": float(np.mean(defined_auc)) if defined_auc else None,
        "auprc": float(np.mean(defined_ap)) if defined_ap else None,
        "acc": acc,
        "per_label_auc": per_auc,
        "per_label_auprc": per_ap,
        "skipped": [k for k, v in per_auc.items() if v is None],
        "skip_reasons": reasons,
        "auc_reason": auc_reason,
        "n": len(t),
    }


def _point_estimate(
    task: TaskSpec, s: np.ndarray, t: np.ndarray, m: np.ndarray | None, metric: str
) -> float:
    res = evaluate(task, s, t, m)
    value = res[metric]
    if value is None:
        raise UndefinedMetricError(
            res["auc_reason"] or f"{metric} is undefined: no observed entries"
        )
    return float(value)


# --------------------------------------------------------------------------- convergence


def steps_to_target(
    steps: Sequence[int], values: Sequence[float | None], target: float
) -> int | None:
    """The first step (in increasing step order) whose validation metric is >= ``target``.

    ``steps`` and ``values`` are parallel (one entry per evaluation); ``None``/NaN values
    never count as reached. Returns None if the target is never reached.
    """
    if len(steps) != len(values):
        raise ValueError(f"{len(steps)} steps but {len(values)} values")
    if not math.isfinite(target):
        raise ValueError(f"target must be finite, got {target}")
    for step, value in sorted(zip(steps, values), key=lambda sv: sv[0]):
        if value is not None and not math.isnan(value) and value >= target:
            return int(step)
    return None
