"""Stratified splits, group splits and subsampling."""

from __future__ import annotations

import numpy as np
import pytest

from transfusion.data import ArraySplit, subsample
from transfusion.data._splits import group_split, strata, stratified_split


def _split(targets, mask=None):
    n = len(targets)
    images = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1)
    return ArraySplit(images, targets, mask, np.array([str(i) for i in range(n)]))


def test_stratified_split_exact_proportions():
    y = np.repeat(np.arange(4), [400, 300, 200, 100])
    parts = stratified_split(y, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(1000))
    assert [len(parts[k]) for k in ("train", "val", "test")] == [700, 150, 150]
    for k, frac in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        counts = np.bincount(y[parts[k]], minlength=4)
        assert np.all(np.abs(counts - frac * np.array([400, 300, 200, 100])) <= 1)
    again = stratified_split(y, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)


def test_stratified_split_tiny_strata_keep_totals():
    rng = np.random.default_rng(0)
    labels = (rng.random((100, 5)) < 0.3).astype(np.float32)
    parts = stratified_split(strata(labels), {"train": 0.7, "val": 0.15, "test": 0.15}, seed=1)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [70, 15, 15]


def test_group_split_disjoint_groups():
    groups = np.repeat([f"patient{i:03d}" for i in range(50)], np.arange(50) % 4 + 1)
    parts = group_split(groups, {"train": 0.8, "val": 0.2}, seed=0)
    tr, va = set(groups[parts["train"]]), set(groups[parts["val"]])
    assert tr and va and not tr & va
    assert len(parts["train"]) + len(parts["val"]) == len(groups)
    assert abs(len(parts["val"]) / len(groups) - 0.2) < 0.05


def test_subsample_stratified_count_and_fraction():
    y = np.repeat([0, 1], [900, 100])
    split = _split(y)
    sub = subsample(split, 200, seed=0)
    assert len(sub) == 200 and np.bincount(sub.targets).tolist() == [180, 20]
    assert np.all(np.diff(sub.ids.astype(int)) > 0)  # original order kept
    assert np.array_equal(sub.images[:, 0, 0, 0], sub.ids.astype(int).astype(np.uint8))
    frac = subsample(split, 0.05, seed=0)
    assert len(frac) == 50 and np.bincount(frac.targets).tolist() == [45, 5]
    assert np.array_equal(subsample(split, 200, seed=0).ids, sub.ids)
    assert not np.array_equal(subsample(split, 200, seed=1).ids, sub.ids)
    assert subsample(split, 1000, seed=0) is split


def test_subsample_multilabel_keeps_mask_rows():
    rng = np.random.default_rng(0)
    t = (rng.random((300, 3)) < 0.4).astype(np.float32)
    m = rng.random((300, 3)) > 0.1
    sub = subsample(_split(t, m), 100, seed=0)
    idx = sub.ids.astype(int)
    assert np.array_equal(sub.targets, t[idx]) and np.array_equal(sub.mask, m[idx])
    assert abs(sub.targets.mean() - t.mean()) < 0.05


@pytest.mark.parametrize(("size", "needle"), [(1001, "1001"), (0, ">= 1"), (1.5, "(0, 1]"), (0.0, "(0, 1]"), (True, "True"), ("10", "'10'")])
def test_subsample_errors(size, needle):
    with pytest.raises(ValueError) as info:
        subsample(_split(np.zeros(1000, np.int64)), size, seed=0)
    assert needle in str(info.value)
