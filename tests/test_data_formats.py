"""Real-format adapters on small fixtures written in the exact on-disk formats."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from transfusion.data import ImageReadError, load_dataset
from transfusion.data.formats.chexpert import COLUMNS, OBSERVATIONS

SPLITS = ("train", "val", "test")


pytestmark = pytest.mark.filterwarnings("ignore")


def _img(path, size, mode="L", seed=0, border=0):
    rng = np.random.default_rng(seed)
    w, h = size
    shape = (h, w) if mode == "L" else (h, w, 3)
    arr = rng.integers(40, 255, shape, dtype=np.uint8)
    if border:
        arr[:, :border] = 0
        arr[:, w - border :] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)


# ---------------------------------------------------------------- CheXpert

def _chexpert(tmp_path, *, n_train=14, n_valid=4, columns=COLUMNS, bad_value=None):
    root = tmp_path / "CheXpert-v1.0-small"
    rng = np.random.default_rng(0)
    rows = {"train.csv": [], "valid.csv": []}
    for csv_name, split, n_pat, first in (("train.csv", "train", n_train, 1), ("valid.csv", "valid", n_valid, 64541)):
        for p in range(first, first + n_pat):
            for study in range(1, 1 + p % 2 + 1):
                for view, fl in (("view1_frontal", "Frontal"), ("view2_lateral", "Lateral")):
                    rel = f"CheXpert-v1.0-small/{split}/patient{p:05d}/study{study}/{view}.jpg"
                    _img(tmp_path / rel, (40, 48), seed=p * 10 + study)
                    obs = [rng.choice(["1.0", "0.0", "-1.0", ""]) for _ in OBSERVATIONS]
                    rows[csv_name].append([rel, "Female", "60", fl, "AP" if fl == "Frontal" else "", *obs])
    if bad_value is not None:
        rows["train.csv"][2][COLUMNS.index("Edema")] = bad_value
    for name, body in rows.items():
        with open(root / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(columns)
            w.writerows([[r[COLUMNS.index(c)] for c in columns] for r in body])
    return root


def test_chexpert_splits_by_patient_and_masks(tmp_path):
    root = _chexpert(tmp_path)
    ds = load_dataset(f"chexpert:{root}?res=32&val=0.3", cache_dir=tmp_path / "c")
    assert ds.task.kind == "multilabel" and ds.in_chans == 1
    assert ds.task.labels == ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
    patients = {k: {i.split("/")[2] for i in ds[k].ids} for k in SPLITS}
    assert patients["train"] and patients["val"] and not patients["train"] & patients["val"]
    assert all(p.startswith("patient6454") for p in patients["test"])  # official valid.csv
    assert all(i.endswith("_frontal.jpg") for k in SPLITS for i in ds[k].ids)
    import pandas as pd

    df = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False).set_index("Path")
    for k in ("train", "val"):
        s = ds[k]
        assert s.images.shape[1:] == (1, 32, 32) and s.mask.dtype == bool
        for row, path in enumerate(s.ids):
            raw = df.loc[path, list(ds.task.labels)].tolist()
            assert s.mask[row].tolist() == [v != "-1.0" for v in raw]
            assert s.targets[row].tolist() == [1.0 if v == "1.0" else 0.0 for v in raw]  # blank → 0
    assert ds.info["patients"]["test"] == 4


def test_chexpert_accepts_the_parent_of_its_folder(tmp_path):
    from transfusion.data import canonical_spec

    root = _chexpert(tmp_path)
    assert canonical_spec(f"chexpert:{tmp_path}?res=16") == canonical_spec(f"chexpert:{root}?res=16")
    parent = load_dataset(f"chexpert:{tmp_path}?res=16", cache_dir=tmp_path / "c")
    assert parent.name == load_dataset(f"chexpert:{root}?res=16", cache_dir=tmp_path / "c").name
    assert np.array_equal(parent["train"].images, load_dataset(f"chexpert:{root}?res=16", cache_dir=tmp_path / "c")["train"].images)
    (tmp_path / "CheXpert-v1.0").mkdir()
    (tmp_path / "CheXpert-v1.0" / "train.csv").write_text((root / "train.csv").read_text())
    with pytest.raises(ValueError, match=r"holds 2 CheXpert folders \(CheXpert-v1.0, CheXpert-v1.0-small\)"):
        canonical_spec(f"chexpert:{tmp_path}?res=16")


def test_chexpert_policies_and_views(tmp_path):
    root = _chexpert(tmp_path)
    ign = load_dataset(f"chexpert:{root}?res=16", cache_dir=tmp_path / "c")
    ones = load_dataset(f"chexpert:{root}?res=16&uncertain=ones", cache_dir=tmp_path / "c")
    zeros = load_dataset(f"chexpert:{root}?res=16&uncertain=zeros", cache_dir=tmp_path / "c")
    for k in SPLITS:
        unc = ~ign[k].mask
        assert unc.any() or k != "train"
        assert ones[k].mask is None and np.all(ones[k].targets[unc] == 1)
        assert zeros[k].mask is None and np.all(zeros[k].targets[unc] == 0)
    every = load_dataset(f"chexpert:{root}?res=16&views=all&labels=all", cache_dir=tmp_path / "c")
    assert len(every.task.labels) == 14
    assert sum(len(every[k]) for k in SPLITS) == 2 * sum(len(ign[k]) for k in SPLITS)


def test_chexpert_missing_columns_listed(tmp_path):
    cols = tuple(c for c in COLUMNS if c != "Edema")
    root = _chexpert(tmp_path, columns=cols)
    with pytest.raises(ValueError) as info:
        load_dataset(f"chexpert:{root}", cache_dir=tmp_path / "c")
    msg = str(info.value)
    assert "train.csv" in msg and "missing column(s) Edema" in msg and "Frontal/Lateral" in msg and "Pleural Effusion" in msg


def test_chexpert_label_out_of_range(tmp_path):
    root = _chexpert(tmp_path, bad_value="2.0")
    with pytest.raises(ValueError, match=r"out of range in column 'Edema' line 4: '2.0'"):
        load_dataset(f"chexpert:{root}", cache_dir=tmp_path / "c")


def test_chexpert_corrupt_image_fail_or_skip(tmp_path):
    root = _chexpert(tmp_path)
    bad = tmp_path / "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(ImageReadError, match="patient00003/study1/view1_frontal.jpg"):
        load_dataset(f"chexpert:{root}?res=16", cache_dir=tmp_path / "c")
    ds = load_dataset(f"chexpert:{root}?res=16&bad_images=skip", cache_dir=tmp_path / "c")
    assert ds.info["skipped"] == 1
    assert any("patient00003/study1/view1_frontal.jpg" in p for p in ds.info["problems"])
    assert all("patient00003/study1/view1_frontal" not in i for k in SPLITS for i in ds[k].ids)
    assert all(len(ds[k].ids) == len(ds[k].images) == len(ds[k].mask) for k in SPLITS)


def test_chexpert_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.csv and valid.csv"):
        load_dataset(f"chexpert:{tmp_path / 'nope'}", cache_dir=tmp_path / "c")


# ---------------------------------------------------------------- APTOS / EyePACS

def _aptos(tmp_path, grades, bad=None):
    root = tmp_path / "aptos"
    with open(root.mkdir() or root / "train.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id_code", "diagnosis"])
        for i, g in enumerate(grades):
            w.writerow([f"{i:04x}abcd", bad if bad is not None and i == 3 else g])
            _img(root / "train_images" / f"{i:04x}abcd.png", (60, 40), "RGB", seed=i, border=8)
    return root


def test_aptos_referable_and_grade(tmp_path):
    grades = [0, 1, 2, 3, 4] * 8
    root = _aptos(tmp_path, grades)
    ds = load_dataset(f"aptos:{root}?res=24", cache_dir=tmp_path / "c")
    assert ds.task.kind == "binary" and ds.task.positive_rule.startswith("referable")
    assert [len(ds[k]) for k in SPLITS] == [28, 6, 6]
    g = {f"{i:04x}abcd": v for i, v in enumerate(grades)}
    for k in SPLITS:
        assert ds[k].images.shape[1:] == (3, 24, 24)
        assert ds[k].targets.tolist() == [int(g[i] >= 2) for i in ds[k].ids]
    img = ds["train"].images[0]
    assert img[:, :, 0].mean() > 20  # the black border was trimmed away
    graded = load_dataset(f"aptos:{root}?res=24&target=grade", cache_dir=tmp_path / "c")
    assert graded.task.kind == "multiclass" and graded["train"].targets.tolist() == [g[i] for i in graded["train"].ids]
    # the same images in the same splits as the referable task; only the targets differ
    assert all(np.array_equal(graded[k].ids, ds[k].ids) for k in SPLITS)
    assert all(np.array_equal(graded[k].targets >= 2, ds[k].targets == 1) for k in SPLITS)
    assert sum(np.bincount(graded[k].targets, minlength=5) for k in SPLITS).tolist() == [8] * 5


def test_aptos_bad_label_and_missing_csv(tmp_path):
    root = _aptos(tmp_path, [0, 1, 2, 3, 4, 0], bad="7")
    with pytest.raises(ValueError, match=r"label out of range in column 'diagnosis' line 5: '7'"):
        load_dataset(f"aptos:{root}", cache_dir=tmp_path / "c")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"train.csv.*trainLabels.csv"):
        load_dataset(f"aptos:{empty}", cache_dir=tmp_path / "c")


def test_eyepacs_keeps_both_eyes_together(tmp_path):
    root = tmp_path / "eyepacs"
    root.mkdir()
    with open(root / "trainLabels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "level"])
        for p in range(20):
            for eye in ("left", "right"):
                w.writerow([f"{p + 10}_{eye}", p % 5])
                _img(root / "train" / f"{p + 10}_{eye}.jpeg", (50, 50), "RGB", seed=p)
    ds = load_dataset(f"aptos:{root}?res=16&target=grade", cache_dir=tmp_path / "c")
    assert ds.info["variant"] == "eyepacs"
    pats = {k: {i.split("_")[0] for i in ds[k].ids} for k in SPLITS}
    assert not (pats["train"] & pats["val"] or pats["train"] & pats["test"] or pats["val"] & pats["test"])
    assert sum(len(ds[k]) for k in SPLITS) == 40


# ---------------------------------------------------------------- ImageFolder

def test_folder_class_dirs_binary(tmp_path):
    for cls, n in (("NORMAL", 20), ("PNEUMONIA", 20)):
        for i in range(n):
            _img(tmp_path / "xr" / cls / f"{i}.png", (30, 30), seed=i)
    ds = load_dataset(f"folder:{tmp_path / 'xr'}?res=16", cache_dir=tmp_path / "c")
    assert ds.task.kind == "binary" and ds.task.labels == ("NORMAL", "PNEUMONIA") and ds.in_chans == 1
    assert [len(ds[k]) for k in SPLITS] == [28, 6, 6]
    assert all(np.bincount(ds[k].targets).tolist() == [len(ds[k]) // 2] * 2 for k in SPLITS)
    flipped = load_dataset(f"folder:{tmp_path / 'xr'}?res=16&positive=NORMAL", cache_dir=tmp_path / "c")
    assert flipped.task.labels == ("PNEUMONIA", "NORMAL")


def test_folder_official_split_dirs_multiclass(tmp_path):
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        for cls in ("a", "b", "c"):
            for i in range(n):
                _img(tmp_path / "f" / split / cls / f"{i}.jpg", (20, 20), "RGB", seed=i)
    ds = load_dataset(f"folder:{tmp_path / 'f'}?res=8", cache_dir=tmp_path / "c")
    assert ds.task.kind == "multiclass" and ds.task.labels == ("a", "b", "c") and ds.in_chans == 3
    assert [len(ds[k]) for k in SPLITS] == [12, 6, 9]


def test_folder_missing_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing")):
        load_dataset(f"folder:{tmp_path / 'missing'}", cache_dir=tmp_path / "c")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="class sub-folders"):
        load_dataset(f"folder:{tmp_path / 'empty'}", cache_dir=tmp_path / "c")


# ---------------------------------------------------------------- MedMNIST

def _npz(path, n=(30, 6, 8), classes=2, multilabel=0, rgb=False):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n):
        shape = (k, 28, 28, 3) if rgb else (k, 28, 28)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (
            rng.integers(0, 2, (k, multilabel)) if multilabel else rng.integers(0, classes, (k, 1))
        ).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def test_medmnist_binary_official_split(tmp_path):
    arrays = _npz(tmp_path / "mm" / "pneumoniamnist.npz")
    ds = load_dataset(f"medmnist:pneumoniamnist:{tmp_path / 'mm'}", cache_dir=tmp_path / "c")
    assert ds.task.kind == "binary" and ds.task.labels == ("normal", "pneumonia") and ds.res == 28
    assert [len(ds[k]) for k in SPLITS] == [30, 6, 8]
    assert np.array_equal(ds["val"].images[:, 0], arrays["val_images"])
    assert np.array_equal(ds["test"].targets, arrays["test_labels"][:, 0])
    up = load_dataset(f"medmnist:pneumoniamnist:{tmp_path / 'mm'}", res=32, cache_dir=tmp_path / "c")
    assert up["train"].images.shape == (30, 1, 32, 32)


def test_medmnist_multilabel_rgb_and_size(tmp_path):
    _npz(tmp_path / "mm" / "chestmnist_64.npz", multilabel=14)
    ds = load_dataset(f"medmnist:chestmnist:{tmp_path / 'mm'}?size=64&res=28", cache_dir=tmp_path / "c")
    assert ds.task.kind == "multilabel" and len(ds.task.labels) == 14 and ds["train"].targets.dtype == np.float32
    _npz(tmp_path / "mm" / "bloodmnist.npz", classes=8, rgb=True)
    blood = load_dataset(f"medmnist:bloodmnist:{tmp_path / 'mm' / 'bloodmnist.npz'}", cache_dir=tmp_path / "c")
    assert blood.in_chans == 3 and blood.task.kind == "multiclass" and len(blood.task.labels) == 8


def test_medmnist_offline_message(tmp_path):
    folder = tmp_path / "nothing"
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(f"medmnist:pneumoniamnist:{folder}?size=128", cache_dir=tmp_path / "c")
    msg = str(info.value)
    assert "pneumoniamnist_128.npz" in msg and str(folder) in msg and "zenodo" in msg


def test_medmnist_bad_labels_and_keys(tmp_path):
    _npz(tmp_path / "mm" / "breastmnist.npz", classes=3)  # labels 0..2 for a binary task
    with pytest.raises(ValueError, match="label out of range"):
        load_dataset(f"medmnist:breastmnist:{tmp_path / 'mm'}", cache_dir=tmp_path / "c")
    np.savez(tmp_path / "mm" / "octmnist.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="missing array.*train_labels"):
        load_dataset(f"medmnist:octmnist:{tmp_path / 'mm'}", cache_dir=tmp_path / "c")
