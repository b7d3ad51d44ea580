"""Files a user owns are never modified or deleted: foreign databases, folders a report did not
write, another run's folder. Each case: exit code 2, a one-line message naming the bad path, and
every byte the user had left as it was."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from _records import hand_store, noisy, seeded, targets

from transfusion.cli.main import main
from transfusion.harness.store import NotAStoreError, Store
from transfusion.report.build import ReportOutputError, build_report


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the SHA-256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    t = targets()
    runs = [*seeded("cbr_small", "random", lambda s: {"scores": noisy(t, 1.0, s), "targets": t}),
            *seeded("cbr_small", "transfer", lambda s: {"scores": noisy(t, 1.0, 10 + s), "targets": t})]
    return hand_store(tmp_path_factory.mktemp("store") / "results.sqlite", runs)


def _foreign_db(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO patients (name) VALUES ('a')")
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize("command", [
    ["report", "{db}", "--out", "{tmp}/r", "--no-studies"],
    ["compare", "{db}", "{db}"],
    ["analyze", "all", "--store", "{db}", "--out", "{tmp}/a"],
])
def test_a_foreign_database_is_refused_untouched(tmp_path, capsys, command):
    db = _foreign_db(tmp_path / "app.sqlite")
    before = _snapshot(tmp_path)
    argv = [a.format(db=db, tmp=tmp_path) for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "another application" in err and str(db) in err and "Traceback" not in err
    assert _snapshot(tmp_path) == before  # no tables added, no WAL switch, no journal left behind
    with pytest.raises(NotAStoreError, match="tables: patients"):
        Store(db)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path, capsys):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("my notes, not a database\n" * 50)
    before = _snapshot(tmp_path)
    assert main(["report", str(bad), "--out", str(tmp_path / "r"), "--no-studies"]) == 2
    err = capsys.readouterr().err
    assert "not an SQLite database" in err and str(bad) in err
    assert _snapshot(tmp_path) == before


def test_a_store_from_before_application_ids_still_opens(tmp_path, store):
    old = tmp_path / "old.sqlite"
    old.write_bytes(Path(store).read_bytes())
    db = sqlite3.connect(old)
    db.execute("PRAGMA application_id = 0")  # as written by earlier versions
    db.commit()
    db.close()
    with Store(old) as s:
        assert len(s.runs()) == 6


def test_report_into_a_folder_of_user_files_refuses_and_deletes_nothing(tmp_path, capsys, store):
    paper = tmp_path / "paper"
    for rel in ("figures/fig1.png", "tables/table1.csv", "notes.md"):
        (paper / rel).parent.mkdir(parents=True, exist_ok=True)
        (paper / rel).write_text(f"user's {rel}\n")
    before = _snapshot(paper)
    assert main(["report", str(store), "--out", str(paper), "--no-studies"]) == 2
    err = capsys.readouterr().err
    assert "already holds files a report did not write" in err and str(paper) in err
    assert _snapshot(paper) == before
    with pytest.raises(ReportOutputError):
        build_report(store, paper, studies=False)
    assert _snapshot(paper) == before


def test_a_rebuilt_report_replaces_its_own_files_and_keeps_the_users(tmp_path, store):
    out = tmp_path / "r"
    build_report(store, out, n_boot=50, studies=False)
    stale = out / "figures" / "gone.png"  # as if an earlier report had written it...
    stale.write_bytes(b"old figure")
    manifest = out / ".transfusion-report"
    import json

    listed = json.loads(manifest.read_text())["files"]
    assert "report.md" in listed and any(f.startswith("tables/") for f in listed)
    manifest.write_text(json.dumps({"files": [*listed, "figures/gone.png"]}))
    mine = out / "figures" / "my-annotations.png"  # ...and the user added a file of their own
    mine.write_bytes(b"user figure")
    build_report(store, out, n_boot=50, studies=False)
    assert not stale.exists()  # the report's stale figure is gone
    assert mine.read_bytes() == b"user figure"  # the user's file is untouched and not claimed
    assert "figures/my-annotations.png" not in json.loads(manifest.read_text())["files"]


def test_bench_checks_the_report_folder_before_any_training(tmp_path, capsys):
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\n[grid]\ndataset = ["synth-retina?n=200&res=32"]\nmodel = ["cbr_tiny"]\n'
                     'init = ["random"]\n[train]\nsteps = 2\n')
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("\\documentclass{article}\n")
    rc = main(["bench", str(suite), "--out", str(tmp_path / "runs"), "--report-dir", str(tmp_path / "mine")])
    assert rc == 2 and "thesis.tex" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # refused before the store was even created


@pytest.mark.slow
def test_train_refuses_another_runs_folder_unless_forced(tmp_path, capsys):
    data = "synth-retina?n=480&res=32"
    common = ["--data", data, "--steps", "2", "--batch", "16", "--threads", "1", "--out", str(tmp_path / "run")]
    assert main(["train", "cbr_small", "--seed", "0", *common]) == 0
    before = _snapshot(tmp_path / "run")
    assert main(["train", "cbr_small", "--seed", "1", *common]) == 2
    err = capsys.readouterr().err
    assert "holds run" in err and "--force" in err
    assert _snapshot(tmp_path / "run") == before
    assert main(["train", "cbr_small", "--seed", "0", *common]) == 0  # the same run: resumes, allowed
    assert main(["train", "cbr_small", "--seed", "1", "--force", *common]) == 0
    import json

    assert json.loads((tmp_path / "run" / "summary.json").read_text())["seed"] == 1


_SUITE = ('name = "s"\n[grid]\ndataset = ["synth-retina?n=200&res=32"]\nmodel = ["cbr_small"]\ninit = [{init}]\n'
          'seed = [{seed}]\n[train]\nsteps = 2\n{train}\n[source]\ndataset = "synth-natural?n=200&res=32"\n')


@pytest.mark.parametrize("init,seed,train,message", [
    ('"transfusion:99"', "0", "", "transfusion:99: K must be between 0 and 4 for cbr_small"),
    ('"freeze:99"', "0", "", "freeze:99: K must be between 0 and 4 for cbr_small"),
    ('"slim"', "0", "", "regime 'slim' applies to model slim_resnet50, not 'cbr_small'"),
    ('"random"', "-1", "", "grid.seed: seeds are whole numbers >= 0, got -1"),
    ('"random"', "0", "lr = inf", "train: lr must be a finite number, got inf"),
    ('"random"', "0", 'lr = "fast"', "train: lr must be a number, got 'fast'"),
    ('"random"', "0", 'batch_size = "big"', "train: batch_size must be a whole number, got 'big'"),
    ('"random"', "0", "threads = -1", "train: threads must be >= 1, got -1"),
    ('"random"', "0", "weight_decay = nan", "train: weight_decay must be a finite number, got nan"),
])
def test_bad_suite_values_are_refused_before_any_work(tmp_path, capsys, init, seed, train, message):
    suite = tmp_path / "s.toml"
    suite.write_text(_SUITE.format(init=init, seed=seed, train=train))
    for extra in (["--dry-run"], []):
        assert main(["bench", str(suite), "--out", str(tmp_path / "runs"), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and str(suite) in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()  # nothing pretrained, nothing registered


@pytest.mark.parametrize("flags,message", [
    (["--lr", "inf"], "lr must be a finite number, got inf"),
    (["--epochs", "inf"], "epochs must be a finite number, got inf"),
    (["--threads", "-1"], "threads must be >= 1, got -1"),
    (["--init", "transfusion:99"], "K must be between 0 and 4 for cbr_small"),
    (["--source", "imagenet"], "init random takes no pretrained weights, so --source imagenet would be ignored"),
    (["--seed", "-1"], "seed must be a whole number in [0, 2³²), got -1 (--seed"),
])
def test_bad_train_flags_are_refused_before_any_work(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(["train", "cbr_small", "--data", "synth-retina?n=200&res=32", "--out", str(out), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_constant_predictions_are_a_failed_run_not_a_result():
    import numpy as np

    from transfusion.train import TrainingDegenerate, TrainingDiverged
    from transfusion.train.loop import check_learned

    curve = [{"step": 10, "train_loss": 948.0}]
    with pytest.raises(TrainingDegenerate, match=r"same scores.*last training loss 948"):
        check_learned(np.full((50, 2), 0.5), curve)
    assert issubclass(TrainingDegenerate, TrainingDiverged)  # recorded as a failed run by the harness
    check_learned(np.array([[0.2, 0.8], [0.2, 0.8], [0.3, 0.7]]), curve)  # varies: a result, however poor
    check_learned(np.zeros((1, 1)), curve)  # one image cannot tell


@pytest.mark.slow
def test_an_exploding_learning_rate_fails_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "cbr_small", "--data", "synth-retina?n=400&res=32", "--steps", "20", "--batch", "16",
               "--lr", "1000", "--threads", "1", "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "degenerate: every test image got the same scores" in err and "lower the learning rate" in err
    assert not (out / "summary.json").exists()  # not a finished run


def test_a_resumed_run_removes_the_temporaries_of_a_killed_attempt(tmp_path):
    import os
    import subprocess
    import sys

    from transfusion.core.files import remove_stale_temporaries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".last.pt.tmp{dead.pid}"  # a killed writer's half checkpoint
    live = tmp_path / f".best.pt.tmp{os.getpid()}"  # being written right now: kept
    mine = tmp_path / ".notes.tmpfile"  # not a temporary of ours: kept
    for f in (stale, live, mine):
        f.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and mine.exists()


def test_an_unreadable_first_image_is_skipped_or_named(tmp_path):
    import numpy as np
    from PIL import Image

    from transfusion.data import load_dataset
    from transfusion.data._images import ImageReadError

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i:02d}.png")
    (tmp_path / "imgs" / "a" / "00.png").write_bytes(b"not a png")  # the very first file, sorted
    spec = f"folder:{tmp_path / 'imgs'}?res=24"
    with pytest.raises(ImageReadError, match=r"cannot read image .*00\.png.*bad_images=skip"):
        load_dataset(spec, cache_dir=tmp_path / "cache")
    ds = load_dataset(spec + "&bad_images=skip", cache_dir=tmp_path / "cache")
    assert ds.in_chans == 3 and sum(len(ds[s]) for s in ("train", "val", "test")) == 19  # the bad one dropped


@pytest.mark.parametrize("text,message", [
    ('{"labels": ["a", "b"]}', "task.json lacks kind"),
    ('{"kind": "binary", "labels": ', "task.json is not valid JSON"),
])
def test_a_bad_task_json_is_named(tmp_path, text, message):
    import numpy as np
    from PIL import Image

    from transfusion.data import load_dataset

    root = tmp_path / "data"
    root.mkdir()
    rows = ["path,label"]
    for i in range(12):
        Image.fromarray(np.full((16, 16, 3), i * 20, np.uint8)).save(root / f"{i}.png")
        rows.append(f"{i}.png,{'ab'[i % 2]}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    (root / "task.json").write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_dataset(f"folder:{root}?res=16", cache_dir=tmp_path / "cache")
    assert str(root / "task.json") in str(err.value)


def _medmnist_file(folder: Path, *, train: int = 20) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", train), ("val", 6), ("test", 10)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 1))
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "pneumoniamnist.npz", **arrays)
    return folder / "pneumoniamnist.npz"


@pytest.mark.parametrize("damage,message", [
    ("truncate", "truncated or not a .npz"),
    ("garbage", "truncated or not a .npz"),
    ("empty-train", "train_images has 0 images"),
])
def test_a_damaged_medmnist_file_is_one_line(tmp_path, capsys, monkeypatch, damage, message):
    monkeypatch.setenv("TRANSFUSION_CACHE", str(tmp_path / "cache"))
    path = _medmnist_file(tmp_path / "mm", train=0 if damage == "empty-train" else 20)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 64)
    assert main(["data", "check", f"medmnist:pneumoniamnist:{path.parent}?download=0"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_every_missing_weight_file_is_listed_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty torchvision cache
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\n[grid]\ndataset = ["synth-retina?n=200&res=32"]\nmodel = ["resnet18", "resnet50"]\n'
                     'init = ["random", "transfer"]\n[train]\nsteps = 2\n[source]\nweights = "imagenet"\n')
    out = tmp_path / "runs"
    for extra in (["--dry-run"], ["--no-report"]):
        assert main(["bench", str(suite), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert "2 weight file(s) the runs need are missing (TRANSFUSION_OFFLINE is set" in err
        assert "resnet18-f37072fd.pth" in err and "resnet50-0676ba61.pth" in err and "Traceback" not in err
        assert str(tmp_path / "torch" / "hub" / "checkpoints") in err
    assert not out.exists()  # the random runs did not train first
    missing = tmp_path / "nowhere.pt"
    suite.write_text(suite.read_text().replace('"imagenet"', f'"file:{missing}"').replace(', "resnet50"', ""))
    assert main(["bench", str(suite), "--out", str(out), "--dry-run"]) == 2
    assert f"weight file {missing} does not exist" in capsys.readouterr().err


def test_user_text_is_never_read_as_markup():
    from io import StringIO

    from rich.console import Console

    from transfusion.cli.bench import _Progress, print_summary

    data = "folder:/data/[/dim]x[bold]?res=32"
    console = Console(file=StringIO(), width=300)
    print_summary([{"dataset": data, "model": "cbr_small", "init": "random", "n_seeds": 1, "auc_mean": 0.5,
                    "auc_std": None, "auc_min": None, "auc_max": None, "auprc_mean": 0.5, "params": 1e6,
                    "macs": 1e9, "torch_ms": 1.0, "onnx_ms": 1.0, "train_seconds": 3.0}], console)
    spec = {"model": "cbr_small", "init": "random", "seed": 0, "data": data}
    with _Progress(console) as progress:
        progress("plan", {"todo": 2, "total": 2, "finished": 0})
        progress("start", {"spec": spec})
        progress("end", {"spec": spec, "status": "done", "test_auc": 0.5})
        progress("end", {"spec": spec, "status": "failed", "error": "ValueError: bad [/red] thing"})
    text = console.file.getvalue()
    assert text.count("folder:/data/[/dim]x[bold]") == 3 and "bad [/red] thing" in text


class _Payload:
    """Unpickling this would run ``os.system`` — were a loader ever to execute a file's code."""

    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


def test_a_pickle_with_code_is_refused_and_never_run(tmp_path, capsys, monkeypatch):
    import pickle

    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "weights.pt"
    evil.write_bytes(pickle.dumps({"conv.weight": _Payload()}))
    assert main(["export", str(evil), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "not a tensor-only PyTorch file" in err and str(evil) in err and "weights_only=False" not in err
    assert main(["train", "cbr_small", "--data", "synth-retina?n=200&res=32", "--init", "transfer",
                 "--source", f"file:{evil}", "--out", str(tmp_path / "t"), "--steps", "1"]) == 2
    assert "not a tensor-only PyTorch file" in capsys.readouterr().err
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("table,message", [
    ('corruptions = ["fog"]', "robustness.corruptions: must be a non-empty list of gaussian_noise"),
    ("severities = [0, 6]", "robustness.severities: must be a non-empty list of 1..5, got [0, 6]"),
    ('modality = "ct"', "robustness.modality: must be one of fundus, xray or auto, got 'ct'"),
    ("sevrities = [1]", "sevrities"),
])
def test_bad_robustness_tables_are_refused_before_any_work(tmp_path, capsys, table, message):
    suite = tmp_path / "s.toml"
    suite.write_text(_SUITE.format(init='"random"', seed="0", train="") + f"[robustness]\n{table}\n")
    assert main(["bench", str(suite), "--out", str(tmp_path / "runs"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(suite) in err and "Traceback" not in err


@pytest.mark.parametrize("content,message", [
    (b"", "the file is empty (0 bytes)"),
    (b"hello\n", "it is a text file (6 bytes), not a PyTorch file"),
])
def test_an_empty_or_text_checkpoint_says_what_the_file_is(tmp_path, capsys, content, message):
    bad = tmp_path / "model.pt"
    bad.write_bytes(content)
    assert main(["export", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(bad) in err and "torch.save" in err and err.count("\n") == 1
