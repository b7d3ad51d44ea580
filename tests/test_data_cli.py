"""``transfusion data synth`` / ``data check``: round trip through files and the JSON report."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from transfusion.cli import data as cmd_data
from transfusion.data import load_dataset

SPLITS = ("train", "val", "test")


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="transfusion")
    cmd_data.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


pytestmark = pytest.mark.filterwarnings("ignore")  # tiny datasets warn about empty classes


@pytest.mark.parametrize(("task", "opts"), [("retina", []), ("cxr", ["-o", "uncertain=0.2"]), ("natural", [])])
def test_synth_writes_a_folder_that_loads_back(tmp_path, capsys, task, opts):
    out = tmp_path / "out"
    argv = ["data", "synth", task, "--n", "40", "--res", "16", "--seed", "2", "--out", str(out), "--cache-dir", str(tmp_path / "c"), *opts]
    assert _run(argv) == 0
    assert "folder:" in capsys.readouterr().out
    assert (out / "labels.csv").is_file() and (out / "task.json").is_file()
    extra = "&" + "&".join(o for o in opts if o != "-o") if opts else ""
    original = load_dataset(f"synth-{task}?n=40&res=16&seed=2{extra}", cache_dir=tmp_path / "c")
    back = load_dataset(f"folder:{out}?res=16", cache_dir=tmp_path / "c")
    assert back.task == original.task and back.in_chans == original.in_chans
    for k in SPLITS:
        order = np.argsort(original[k].ids)
        back_ids = np.array([p.split("/")[-1][:-4] for p in back[k].ids])
        border = np.argsort(back_ids)
        assert np.array_equal(back_ids[border], original[k].ids[order])
        assert np.array_equal(back[k].targets[border], original[k].targets[order])
        assert np.array_equal(back[k].images[border], original[k].images[order])  # PNG is lossless
        if original[k].mask is not None:
            assert np.array_equal(back[k].mask[border], original[k].mask[order])


def test_check_json_shape(tmp_path, capsys):
    path = tmp_path / "r.json"
    spec = "synth-cxr?n=60&res=16&uncertain=0.1"
    assert _run(["data", "check", spec, "--json", str(path), "--cache-dir", str(tmp_path / "c")]) == 0
    printed = capsys.readouterr().out
    assert "multilabel" in printed and "Pleural Effusion" in printed and "1x16x16" in printed
    report = json.loads(path.read_text())
    assert set(report) == {"task", "splits", "problems"}
    assert set(report["task"]) == {"kind", "labels"} and report["task"]["kind"] == "multilabel"
    assert list(report["splits"]) == list(SPLITS)
    for split in report["splits"].values():
        assert set(split) == {"n", "positives", "masked"}
        assert set(split["positives"]) == set(report["task"]["labels"]) == set(split["masked"])
    assert sum(s["n"] for s in report["splits"].values()) == 60
    assert sum(sum(s["masked"].values()) for s in report["splits"].values()) == 30
    # the problems are exactly the labels a split has no positive of (here: some, at 60 images)
    lacking = [f"no positives for label '{label}' in split {k}" for k, split in report["splits"].items()
               for label, n in split["positives"].items() if n == 0]
    assert lacking and sorted(report["problems"]) == sorted(lacking)
    assert _run(["data", "check", spec, "--json", "-", "--cache-dir", str(tmp_path / "c")]) == 0
    assert json.loads(capsys.readouterr().out) == report


def test_check_reports_problems(tmp_path, capsys):
    import csv

    from PIL import Image

    root = tmp_path / "imgs"
    root.mkdir()
    rows = []
    for i in range(12):
        name = f"{i}.png"
        Image.fromarray(np.full((8, 8), i * 10, np.uint8)).save(root / name)
        rows.append([name, "a" if i % 2 else "b", "train" if i < 8 else "test"])
    (root / "5.png").write_bytes(b"garbage")
    with open(root / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label", "split"], *rows])
    rc = _run(["data", "check", f"folder:{root}?res=8&bad_images=skip&val=0.25", "--json", "-", "--cache-dir", str(tmp_path / "c")])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert any("5.png" in p for p in report["problems"])
    assert sum(s["n"] for s in report["splits"].values()) == 11


def test_data_command_registered_in_cli(tmp_path, capsys):
    from transfusion.cli.main import COMMANDS, main

    assert "data" in COMMANDS
    assert main(["data", "check", "synth-retina?n=40&res=16", "--json", "-", "--cache-dir", str(tmp_path / "c")]) == 0
    assert sum(s["n"] for s in json.loads(capsys.readouterr().out)["splits"].values()) == 40
