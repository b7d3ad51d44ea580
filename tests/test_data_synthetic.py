"""Synthetic tasks: determinism, labels, uncertainty policies, splits and the cache."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from transfusion.data import load_dataset
from transfusion.data.synthetic import generate_cxr, generate_natural, generate_retina
from transfusion.data.synthetic.retina import retina_grades

SPLITS = ("train", "val", "test")


pytestmark = pytest.mark.filterwarnings("ignore")  # tiny datasets warn about empty classes


def _digest(ds) -> str:
    h = hashlib.sha256()
    for k in SPLITS:
        s = ds[k]
        h.update(np.ascontiguousarray(s.images).tobytes())
        h.update(np.ascontiguousarray(s.targets).tobytes())
        if s.mask is not None:
            h.update(s.mask.tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("gen", [generate_retina, generate_natural])
def test_generators_same_seed_same_bytes(gen):
    a, la = gen(12, 32, seed=5, balance=0.5, difficulty=0.5)
    b, lb = gen(12, 32, seed=5, balance=0.5, difficulty=0.5)
    c, _ = gen(12, 32, seed=6, balance=0.5, difficulty=0.5)
    assert a.dtype == np.uint8 and a.shape == (12, 3, 32, 32)
    assert a.tobytes() == b.tobytes() and np.array_equal(la, lb)
    assert a.tobytes() != c.tobytes()
    sub, _ = gen(12, 32, seed=5, balance=0.5, difficulty=0.5, index=np.array([7, 2]))
    assert np.array_equal(sub, a[[7, 2]])  # image i depends only on (seed, i)


def test_cxr_generator_deterministic_and_grayscale():
    a, la, fa = generate_cxr(10, 32, seed=1, balance=0.3, difficulty=0.5, uncertain=0.2)
    b, lb, fb = generate_cxr(10, 32, seed=1, balance=0.3, difficulty=0.5, uncertain=0.2)
    assert a.shape == (10, 1, 32, 32) and a.tobytes() == b.tobytes()
    assert np.array_equal(la, lb) and np.array_equal(fa, fb)
    assert fa.sum() == 10  # 20% of 50 entries
    assert a.std() > 20  # not a blank image


def test_retina_grades_balance_exact():
    g = retina_grades(1000, 0.3, seed=0)
    assert (g >= 2).sum() == 300
    assert np.bincount(g, minlength=5).tolist() == [420, 280, 150, 90, 60]


def test_retina_lesions_make_images_differ_by_grade():
    # same random stream, different grade: a referable image has more red-dark pixels
    from transfusion.data.synthetic.retina import render_retina

    diffs = []
    for i in range(6):
        g0 = render_retina(0, np.random.default_rng(i), 64, 0.0)
        g3 = render_retina(3, np.random.default_rng(i), 64, 0.0)
        diffs.append(np.abs(g3 - g0).mean())
    assert min(diffs) > 0.002


def test_load_synth_retina_dataset_and_cache(tmp_path):
    spec = "synth-retina?n=200&res=32&seed=3"
    ds = load_dataset(spec, cache_dir=tmp_path)
    assert ds.task.kind == "binary" and ds.task.labels == ("non-referable", "referable")
    assert ds.in_chans == 3 and ds.res == 32
    assert [len(ds[k]) for k in SPLITS] == [140, 30, 30]
    for k in SPLITS:
        s = ds[k]
        assert s.images.dtype == np.uint8 and s.images.shape[1:] == (3, 32, 32)
        assert s.targets.dtype == np.int64
        assert abs(s.targets.mean() - 0.5) < 0.05  # stratified
        assert isinstance(s.images, np.memmap) and not s.images.flags.writeable
    ids = [set(ds[k].ids) for k in SPLITS]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    folder = ds.info["cache_dir"]
    again = load_dataset("synth-retina?seed=3&res=32&n=200", cache_dir=tmp_path)
    assert again.info["cache_dir"] == folder and _digest(again) == _digest(ds)
    # a fresh cache regenerates the same bytes
    fresh = load_dataset(spec, cache_dir=tmp_path / "other")
    assert _digest(fresh) == _digest(ds)
    assert _digest(load_dataset("synth-retina?n=200&res=32&seed=4", cache_dir=tmp_path)) != _digest(ds)


def test_retina_grade_target(tmp_path):
    ds = load_dataset("synth-retina?n=100&res=16&target=grade", cache_dir=tmp_path)
    ref = load_dataset("synth-retina?n=100&res=16", cache_dir=tmp_path)
    assert ds.task.kind == "multiclass" and len(ds.task.labels) == 5
    for k in SPLITS:  # same images, grade vs referable targets
        assert np.array_equal(ds[k].ids, ref[k].ids)
        assert np.array_equal(ds[k].targets >= 2, ref[k].targets == 1)


def test_cxr_uncertainty_policies(tmp_path):
    base = "synth-cxr?n=120&res=16&uncertain=0.2"
    ign = load_dataset(base, cache_dir=tmp_path)
    ones = load_dataset(base + "&uncertain_policy=ones", cache_dir=tmp_path)
    zeros = load_dataset(base + "&uncertain_policy=zeros", cache_dir=tmp_path)
    assert ign.task.kind == "multilabel" and ign.task.labels[1] == "Cardiomegaly" and ign.in_chans == 1
    masked = 0
    for k in SPLITS:
        a, o, z = ign[k], ones[k], zeros[k]
        assert a.targets.dtype == np.float32 and a.mask.dtype == bool
        assert o.mask is None and z.mask is None
        assert np.array_equal(a.images, o.images)  # the policy changes labels, not images
        unc = ~a.mask
        masked += unc.sum()
        assert np.all(o.targets[unc] == 1) and np.all(z.targets[unc] == 0)
        assert np.array_equal(o.targets[~unc], a.targets[~unc])
        assert np.array_equal(z.targets[~unc], a.targets[~unc])
    assert masked == round(0.2 * 120 * 5)
    clean = load_dataset("synth-cxr?n=120&res=16", cache_dir=tmp_path)
    assert all(clean[k].mask is None for k in SPLITS)


def test_cxr_cooccurrence_and_balance():
    from transfusion.data.synthetic.cxr import CXR_LABELS, cxr_labels

    labels, _ = cxr_labels(20000, 0.3, 0.0, seed=0)
    assert abs(labels.mean() - 0.3) < 0.01
    c = np.corrcoef(labels.T)
    i, j = CXR_LABELS.index("Edema"), CXR_LABELS.index("Pleural Effusion")
    assert c[i, j] > 0.2  # heart-failure signs travel together
    assert abs(cxr_labels(20000, 0.1, 0.0, seed=0)[0].mean() - 0.1) < 0.01


def test_natural_classes(tmp_path):
    ds = load_dataset("synth-natural?n=200&res=24&balance=0.5", cache_dir=tmp_path)
    assert ds.task.kind == "multiclass" and len(ds.task.labels) == 10
    counts = sum(np.bincount(ds[k].targets, minlength=10) for k in SPLITS)
    assert counts.sum() == 200 and counts[0] > counts[-1] and counts[-1] / counts[0] == pytest.approx(0.5, abs=0.1)
