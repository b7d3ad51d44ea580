"""A k-nearest-neighbour probe of frozen features, scored as the task's metrics expect.

Measures how much of a task a representation already solves without training a head: the
layer-wise kNN probe of :mod:`transfusion.analysis.studies` (feature reuse by probing).
"""

from __future__ import annotations

import numpy as np

from transfusion.data import TaskSpec

__all__ = ["knn_probe_scores"]


def knn_probe_scores(
    fit_x: np.ndarray, fit_y: np.ndarray, fit_mask: np.ndarray | None, test_x: np.ndarray, task: TaskSpec,
    *, k: int = 20,
) -> np.ndarray:
    """Scores of a k-nearest-neighbour probe, shaped as :func:`transfusion.stats.evaluate` expects.

    ``fit_x`` (n, C) features with targets ``fit_y`` (and multilabel ``fit_mask``), ``test_x``
    (m, C). Features are standardised with the fit set's mean and std, neighbours found by
    scikit-learn's :class:`~sklearn.neighbors.KNeighborsClassifier` (Euclidean, uniform votes,
    k = min(k, n)). Binary → (m,) the neighbours' fraction of positives; multiclass → (m, C)
    class fractions; multilabel → (m, L), per label the fraction of positives among the
    neighbours whose label is observed (0.5 if none is).
    """
    from sklearn.neighbors import KNeighborsClassifier

    mu, sd = fit_x.mean(0), fit_x.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    fx, tx = (fit_x - mu) / sd, (test_x - mu) / sd
    clf = KNeighborsClassifier(n_neighbors=min(k, len(fx)))
    if task.kind == "multilabel":
        y = np.asarray(fit_y, dtype=np.float64)
        m = np.ones_like(y) if fit_mask is None else np.asarray(fit_mask, dtype=np.float64)
        clf.fit(fx, (y * m > 0.5).astype(int))
        idx = clf.kneighbors(tx, return_distance=False)  # (m, k)
        pos, seen = (y * m)[idx].sum(1), m[idx].sum(1)
        return np.where(seen > 0, pos / np.maximum(seen, 1.0), 0.5)
    clf.fit(fx, np.asarray(fit_y))
    proba = clf.predict_proba(tx)
    full = np.zeros((len(tx), task.num_outputs))
    full[:, clf.classes_.astype(int)] = proba
    return full[:, 1] if task.kind == "binary" else full
