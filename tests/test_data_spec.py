"""Spec strings: parsing, defaults, canonical form, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from transfusion.data import canonical_spec, list_dataset_kinds, load_dataset, parse_spec


def test_kinds_listed():
    kinds = list_dataset_kinds()
    for k in ("synth-retina", "synth-cxr", "synth-natural", "folder", "chexpert", "medmnist", "aptos"):
        assert k in kinds


def test_two_spellings_same_canonical():
    a = canonical_spec("synth-retina?n=2000&res=64")
    b = canonical_spec("SYNTH-RETINA?res=64&seed=0&n=2000&target=referable&difficulty=0.50&")
    assert a == b
    assert a.startswith("synth-retina?balance=0.5&difficulty=0.5&n=2000&res=64&seed=0")


def test_res_override_and_seed_default():
    assert "res=128" in canonical_spec("synth-cxr?res=64", res=128)
    assert "seed=3" in canonical_spec("synth-cxr", seed=3)
    assert "seed=1" in canonical_spec("synth-cxr?seed=1", seed=3)  # the spec wins


def test_paths_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    rel = canonical_spec("folder:d?res=32")
    absolute = canonical_spec(f"folder:{tmp_path / 'd'}?res=32&fit=stretch")
    assert rel == absolute
    assert f"folder:{os.path.realpath(tmp_path / 'd')}?" in rel


def test_chexpert_labels_canonical():
    a = canonical_spec("chexpert:/x?labels=paper")
    b = canonical_spec("chexpert:/x?labels=pleural effusion,edema,consolidation,cardiomegaly,atelectasis")
    assert "labels=Atelectasis,Cardiomegaly,Consolidation,Edema,Pleural Effusion" in a
    assert "Pleural Effusion,Edema" in b  # order is the user's choice, names normalised


def test_medmnist_default_res_is_size():
    p = parse_spec("medmnist:pneumoniamnist:/tmp/mm?size=64")
    assert p["res"] == 64 and p.target == "pneumoniamnist:/tmp/mm"
    assert parse_spec("medmnist:pneumoniamnist:/tmp/mm?size=64", res=32)["res"] == 32


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("nope?n=1", "unknown dataset kind 'nope'"),
        ("synth-retina?bogus=1", "bogus"),
        ("synth-retina?n=abc", "n='abc'"),
        ("synth-retina?difficulty=1.5", "difficulty"),
        ("synth-retina?target=stage", "referable, grade"),
        ("synth-retina:/some/path", "takes no path"),
        ("folder", "needs a path"),
        ("synth-cxr?n", "not key=value"),
        ("synth-cxr?n=5&n=6", "given twice"),
        ("medmnist:nosuchmnist", "nosuchmnist"),
        ("medmnist:pathmnist?size=32", "size=32"),
        ("chexpert:/x?labels=Flu", "Flu"),
    ],
)
def test_bad_specs(spec, needle):
    with pytest.raises(ValueError, match=None) as info:
        parse_spec(spec)
    assert needle in str(info.value)


def test_resize_protocol_is_part_of_the_spec_and_the_run_id(tmp_path):
    from transfusion.report.sections import short
    from transfusion.train import RunSpec
    from transfusion.train.spec import normalise_spec

    native, up = "synth-retina?n=40&res=48", "synth-retina?n=40&res=48&resize=from:16"
    assert canonical_spec(native + "&resize=native") == canonical_spec(native)  # the default: ids unchanged
    assert canonical_spec(up).endswith("&resize=from:16&seed=0&target=referable&test=0.15&val=0.15")
    ids = {normalise_spec(RunSpec("cbr_small", d)).run_id for d in (native, up, native + "&resize=native")}
    assert len(ids) == 2
    a, b = (np.asarray(load_dataset(d, cache_dir=tmp_path)["train"].images, np.float64) for d in (native, up))
    assert a.shape == b.shape and np.abs(a - b).mean() > 1  # the detail finer than 16 px is gone
    # the same as taking the native images down to 16 px and back up
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(a[:4]).float()
    again = F.interpolate(F.interpolate(x, size=(16, 16), mode="bilinear", antialias=True), size=(48, 48),
                          mode="bilinear").round().clamp(0, 255).numpy()
    assert np.array_equal(again, b[:4])
    assert short(canonical_spec(up)) == "synth-retina (from 16 px)" and short(canonical_spec(native)) == "synth-retina"
    with pytest.raises(ValueError, match="resize=from:48 upsamples from 48 px .* below res=48 px"):
        canonical_spec(native + "&resize=from:48")
    with pytest.raises(ValueError, match="expected native or from:PX"):
        canonical_spec(native + "&resize=16")
    # a resolution given apart from the spec (a suite's res, --res) is checked too
    with pytest.raises(ValueError, match="below res=12 px"):
        canonical_spec(up, res=12)
