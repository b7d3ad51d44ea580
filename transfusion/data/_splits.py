"""Deterministic splits and stratified subsampling."""

from __future__ import annotations

import numpy as np

from .base import ArraySplit


def strata(targets: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """An int stratum id per row: the class (1-D targets) or the label pattern (2-D targets,
    uncertain entries counted as their own value)."""
    targets = np.asarray(targets)
    if targets.ndim == 1:
        return np.unique(targets, return_inverse=True)[1].reshape(-1)
    codes = targets.astype(np.int8)
    if mask is not None:
        codes = np.where(mask, codes, np.int8(-1))
    return np.unique(codes, axis=0, return_inverse=True)[1].reshape(-1)


def _allocate(sizes: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` over groups in proportion to ``sizes`` (largest remainder; ties random)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    exact = sizes * total / sizes.sum()
    base = np.floor(exact).astype(np.int64)
    rest = total - int(base.sum())
    if rest > 0:
        frac = exact - base + rng.random(len(sizes)) * 1e-9
        base[np.argsort(-frac, kind="stable")[:rest]] += 1
    return np.minimum(base, sizes.astype(np.int64))


def stratified_split(
    strata_ids: np.ndarray, fractions: dict[str, float], *, seed: int
) -> dict[str, np.ndarray]:
    """Assign rows to splits with the same class proportions in each.

    ``fractions`` maps split name → fraction of the rows (the first split takes whatever is
    left). Rows are ordered stratum by stratum (shuffled inside each), then dealt out so that
    every prefix of that order is split in the target proportions: each split gets its share
    of the whole to within one row, and of every stratum to within about one row, even when
    strata are tiny (multilabel patterns). Returns sorted row indices per split;
    deterministic given ``seed``.
    """
    rng = np.random.default_rng(seed)
    names = list(fractions)
    frac = np.array([fractions[k] for k in names], np.float64)
    frac[0] = max(0.0, 1.0 - frac[1:].sum())
    ids = np.asarray(strata_ids)
    uniq = np.unique(ids)
    blocks = [np.flatnonzero(ids == s) for s in uniq[rng.permutation(len(uniq))]]
    order = np.concatenate([b[rng.permutation(len(b))] for b in blocks]) if blocks else np.zeros(0, np.int64)
    assign = np.empty(len(order), np.int64)
    credit = rng.random(len(names)) * 1e-3  # tie-break only
    for p in range(len(order)):
        credit += frac
        j = int(np.argmax(credit))
        assign[p] = j
        credit[j] -= 1.0
    return {k: np.sort(order[assign == j]) for j, k in enumerate(names)}


def group_split(
    groups: np.ndarray, fractions: dict[str, float], *, seed: int
) -> dict[str, np.ndarray]:
    """Assign whole groups (e.g. patients) to splits so no group is in two splits.

    Groups are shuffled and taken in turn for each split after the first until that split
    holds its fraction of the rows; the first split takes the rest.
    """
    rng = np.random.default_rng(seed)
    uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = rng.permutation(len(uniq))
    total = len(groups)
    assign = np.zeros(len(uniq), dtype=np.int64)
    names = list(fractions)
    pos = 0
    for j, name in enumerate(names[1:], start=1):
        want = fractions[name] * total
        got = 0
        while pos < len(order) and got + counts[order[pos]] / 2 <= want:
            assign[order[pos]] = j
            got += counts[order[pos]]
            pos += 1
    row_split = assign[inverse.reshape(-1)]
    return {name: np.flatnonzero(row_split == j) for j, name in enumerate(names)}


def subsample(split: ArraySplit, size: int | float, *, seed: int) -> ArraySplit:
    """A stratified subsample of ``split``: ``size`` examples (int) or a fraction (float in (0, 1]).

    Class proportions (binary/multiclass) or label patterns (multilabel) are kept as closely as
    whole numbers allow; rows keep their original order. Deterministic given ``seed``; a
    subsample of the full size returns ``split`` itself.
    """
    n = len(split)
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise ValueError(f"subsample size must be an int count or a float fraction, got {size!r}")
    if isinstance(size, (float, np.floating)):
        if not 0.0 < float(size) <= 1.0:
            raise ValueError(f"subsample fraction must be in (0, 1], got {size}")
        k = max(1, int(round(float(size) * n)))
    else:
        k = int(size)
        if k < 1:
            raise ValueError(f"subsample size must be >= 1, got {k}")
        if k > n:
            raise ValueError(f"cannot subsample {k} examples from a split of {n}")
    if k == n:
        return split
    rng = np.random.default_rng(seed)
    ids = strata(split.targets, split.mask)
    uniq, counts = np.unique(ids, return_counts=True)
    take = _allocate(counts, k, rng)
    chosen = []
    for s, t in zip(uniq, take):
        rows = np.flatnonzero(ids == s)
        chosen.append(rng.choice(rows, size=int(t), replace=False))
    index = np.sort(np.concatenate(chosen))
    return split.subset(index)
