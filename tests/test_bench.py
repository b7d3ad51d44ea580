"""The harness end to end on a tiny suite: store content, skip-when-done, failure isolation,
kill and resume, concurrent runners, Ray, bad input."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _tiny import tiny_suite

from transfusion.cli.main import main
from transfusion.harness.grid import expand
from transfusion.harness.store import Store
from transfusion.harness.suite import SuiteError, load_suite, parse_suite, shipped_suites
from transfusion.harness.summary import SUMMARY_COLUMNS


def TINY(sizes: str = '"all"') -> str:
    return tiny_suite("tiny", ("random", "transfusion:1"), train_size=sizes)


def _suite(tmp_path: Path, sizes: str = '"all"', extra: str = "") -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY(sizes) + extra)
    return path


def _done_lines(out: Path) -> dict[str, int]:
    return {d.name: (d / "log.txt").read_text().count("] done ") for d in out.iterdir() if (d / "log.txt").exists()}


def _pids(runs: list[dict]) -> set[str]:
    """The process ids in the runs' claims (``host:pid``)."""
    return {r["claimed_by"].rpartition(":")[2] for r in runs}


@pytest.mark.slow
def test_bench_runs_grid_into_store_and_skips_done(tmp_path):
    out = tmp_path / "out"
    assert main(["bench", str(_suite(tmp_path)), "--out", str(out), "--no-report", "--threads", "1"]) == 0
    with Store(out / "results.sqlite") as store:
        runs = store.runs()
        assert [r["kind"] for r in runs] == ["pretrain", "train", "train"]
        assert all(r["status"] == "done" and r["attempts"] == 1 for r in runs)
        train = store.runs(kind="train")
        assert {r["spec"]["init"] for r in train} == {"random", "transfusion:1"}
        pre_id = runs[0]["run_id"]
        assert next(r for r in train if r["init"] == "transfusion:1")["spec"]["source"] == f"run:{pre_id}"
        for r in train:
            assert 0.0 <= r["test_auc"] <= 1.0
            assert r["summary"].test_auc == r["test_auc"]
            assert [c["step"] for c in store.curve(r["run_id"])] == [3]
            pred = store.predictions(r["run_id"])
            assert pred["scores"].shape == pred["targets"].shape == (24,)
        costs = store.costs()
        assert len(costs) == 1 and costs[0]["model"] == "cbr_small" and costs[0]["macs"] > 0
        assert costs[0]["machine"]["cores"] == os.cpu_count()
        assert store.suites()[0]["name"] == "tiny"
        mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    assert (out / "summary.csv").read_text().splitlines()[0] == ",".join(SUMMARY_COLUMNS)
    for run in train:  # log lines carry rounded figures (5 significant digits), not raw floats
        log = (out / run["run_id"] / "log.txt").read_text()
        assert "] eval {" in log and "] done test_auc=" in log and not re.search(r"\d\.\d{6,}", log)
    # a second bench runs nothing again
    assert main(["bench", str(_suite(tmp_path)), "--out", str(out), "--no-report", "--threads", "1"]) == 0
    with Store(out / "results.sqlite") as store:
        assert all(r["attempts"] == 1 for r in store.runs())
    # --force runs everything again
    assert main(["bench", str(_suite(tmp_path)), "--out", str(out), "--no-report", "--threads", "1",
                 "--force"]) == 0
    with Store(out / "results.sqlite") as store:
        assert all(r["attempts"] == 2 and r["status"] == "done" for r in store.runs())


@pytest.mark.slow
def test_rerun_of_a_finished_suite_recomputes_nothing(tmp_path, capsys, monkeypatch):
    out, report = tmp_path / "out", tmp_path / "report"
    argv = ["bench", str(_suite(tmp_path)), "--out", str(out), "--report-dir", str(report), "--threads", "1"]
    assert main(argv) == 0
    summary, md = (out / "summary.csv").read_text(), (report / "report.md").read_text()
    assert "(up to date)" not in capsys.readouterr().out
    # the rerun reads the summary back and keeps the report: no statistic is recomputed
    import transfusion.harness.summary as summary_module

    def boom(*args, **kwargs):
        raise AssertionError("summary recomputed on a finished suite")

    monkeypatch.setattr(summary_module, "summary_table", boom)
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "report: " in text and "(up to date)" in text and "this command: runs 0" in text
    assert "to do" not in text  # the progress counts only runs still to do: none
    assert (out / "summary.csv").read_text() == summary and (report / "report.md").read_text() == md
    # a change in the store (a run forced again) makes both current again
    monkeypatch.undo()
    assert main([*argv, "--force"]) == 0
    assert "(up to date)" not in capsys.readouterr().out


@pytest.mark.slow
def test_failing_run_is_recorded_and_grid_goes_on(tmp_path, capsys):
    out = tmp_path / "out"
    # 5000 training images cannot be drawn from 112: that run fails, the others finish
    rc = main(["bench", str(_suite(tmp_path, sizes='"all", 5000')), "--out", str(out), "--no-report",
               "--threads", "1"])
    assert rc == 1
    with Store(out / "results.sqlite") as store:
        failed = store.runs(status="failed")
        assert len(failed) == 2 and all(r["spec"]["train_size"] == 5000 for r in failed)
        assert "5000" in failed[0]["error"] and "Traceback" in failed[0]["traceback"]
        assert len(store.runs(status="done")) == 3
    assert "failed" in capsys.readouterr().err
    # --rerun-failed tries them again (and they fail again, attempts 2)
    assert main(["bench", str(_suite(tmp_path, sizes='"all", 5000')), "--out", str(out), "--no-report",
                 "--threads", "1", "--rerun-failed"]) == 1
    with Store(out / "results.sqlite") as store:
        assert all(r["attempts"] == 2 for r in store.runs(status="failed"))
        assert all(r["attempts"] == 1 for r in store.runs(status="done"))


def _bench_cmd(suite: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "transfusion", "bench", str(suite), "--out", str(out), "--no-report", "--threads", "1",
            *extra]


@pytest.mark.slow
def test_kill_mid_grid_then_rerun_does_every_run_exactly_once(tmp_path):
    suite = _suite(tmp_path, sizes='"all", 0.5')  # 1 pretraining + 4 training runs
    out = tmp_path / "out"
    proc = subprocess.Popen(_bench_cmd(suite, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if (out / "results.sqlite").exists():
                with Store(out / "results.sqlite") as store:
                    if store.counts()["done"] >= 2:
                        break
            time.sleep(0.2)
        else:
            pytest.fail("bench made no progress")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with Store(out / "results.sqlite") as store:
        c = store.counts()
        assert c["done"] < 5, "the kill came too late to test anything"
    rc = subprocess.run(_bench_cmd(suite, out), capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stderr[-2000:]
    with Store(out / "results.sqlite") as store:
        assert store.counts() == {"pending": 0, "running": 0, "done": 5, "failed": 0}
    assert sorted(_done_lines(out).values()) == [1] * 5  # no run finished twice


@pytest.mark.slow
@pytest.mark.parametrize("workers,to", [("1", "group"), ("2", "group")])
def test_ctrl_c_releases_the_run_and_says_how_to_resume(tmp_path, workers, to):
    suite = _suite(tmp_path, sizes='"all", 0.5')  # 1 pretraining + 4 training runs
    out = tmp_path / "out"
    proc = subprocess.Popen(_bench_cmd(suite, out, "--workers", workers), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if (out / "results.sqlite").exists():
                with Store(out / "results.sqlite") as store:
                    c = store.counts()
                if c["done"] >= 1 and c["running"] >= 1:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("bench made no progress")
        if to == "group":
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
        else:
            os.kill(proc.pid, signal.SIGINT)  # `kill -INT <bench pid>`: the bench forwards it to its workers
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; rerun the same command to resume" in err and "Traceback" not in err, err[-2000:]
    with Store(out / "results.sqlite") as store:
        c = store.counts()
    assert c["running"] == 0 and c["done"] < 5, c  # nothing left claimed by a process that is gone
    rc = subprocess.run(_bench_cmd(suite, out), capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stderr[-2000:]
    assert sorted(_done_lines(out).values()) == [1] * 5  # no run finished twice


@pytest.mark.slow
def test_two_concurrent_runners_never_run_the_same_run(tmp_path):
    suite = _suite(tmp_path, sizes='"all", 0.5, 0.25')  # 1 + 6 runs
    out = tmp_path / "out"
    procs = [subprocess.Popen(_bench_cmd(suite, out), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=400)
        assert p.returncode == 0, err[-2000:]
    with Store(out / "results.sqlite") as store:
        runs = store.runs()
        assert len(runs) == 7 and all(r["status"] == "done" and r["attempts"] == 1 for r in runs)
        pids = _pids(runs)
    assert sorted(_done_lines(out).values()) == [1] * 7
    assert pids == {str(p.pid) for p in procs}  # both runners took part, and nobody else


def test_stale_claim_of_dead_process_is_recovered(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        store.add_runs([{"run_id": "r1", "spec": {"model": "m", "data": "d", "init": "random", "seed": 0,
                                                   "train_size": "all"}}])
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        import socket

        row = store.claim(who=f"{socket.gethostname()}:{dead.pid}")
        assert row["status"] == "running"
        assert store.claim(who="other:1") is not None  # the dead claim is taken over
        assert store.claim(who="third:1") is None  # a live claim (fresh heartbeat) is not
        assert store.run("r1")["attempts"] == 2


@pytest.mark.slow
def test_local_workers(tmp_path):
    out = tmp_path / "out"
    suite = _suite(tmp_path, sizes='"all", 0.5')  # 1 + 4 runs: enough for both workers to get some
    assert main(["bench", str(suite), "--out", str(out), "--no-report", "--workers", "2", "--threads", "1"]) == 0
    with Store(out / "results.sqlite") as store:
        runs = store.runs()
        assert store.counts()["done"] == 5 and all(r["attempts"] == 1 for r in runs)
    # two worker processes ran them, neither of them this one
    pids = _pids(runs)
    assert len(pids) == 2 and str(os.getpid()) not in pids, pids
    assert sorted(_done_lines(out).values()) == [1] * 5


@pytest.mark.slow
def test_ray_executor_local_instance(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    assert main(["bench", str(_suite(tmp_path)), "--out", str(out), "--no-report", "--executor", "ray",
                 "--threads", "1"]) == 0
    with Store(out / "results.sqlite") as store:
        runs = store.runs()
        assert len(runs) == 3 and all(r["status"] == "done" for r in runs)
        for r in runs:
            pred = store.predictions(r["run_id"])
            assert pred is not None and len(pred["scores"]) == len(pred["targets"]) == 24, r["kind"]
    # Ray runs write their log like local ones: start, evaluations, done — once each
    assert sorted(_done_lines(out).values()) == [1] * 3
    log = (out / runs[-1]["run_id"] / "log.txt").read_text()
    assert "] start " in log and "] eval {" in log and "] done test_auc=" in log


def test_ray_driver_cancels_and_releases_its_runs_on_ctrl_c(tmp_path):
    from types import SimpleNamespace

    from transfusion.harness.executors.ray import _Drive

    class FakeRay:  # the two calls the driver makes while runs are in flight
        cancelled: list = []

        def wait(self, refs, num_returns, timeout):
            raise KeyboardInterrupt

        def cancel(self, ref, force):
            self.cancelled.append(ref)

    remote = SimpleNamespace(remote=lambda row, *a: f"ref-{row['spec']['seed']}")
    spec = {"model": "m", "data": "d", "init": "random", "train_size": "all"}
    with Store(tmp_path / "s.sqlite") as store:
        store.add_runs([{"run_id": f"r{i}", "spec": {**spec, "seed": i}} for i in range(3)])
        grid = SimpleNamespace(ids=["r0", "r1", "r2"], depends={})
        with pytest.raises(KeyboardInterrupt):
            _Drive(FakeRay(), remote, store, grid, tmp_path, 2, 1, "cpu", None).run()
        assert sorted(FakeRay.cancelled) == ["ref-0", "ref-1"]
        assert store.counts() == {"pending": 3, "running": 0, "done": 0, "failed": 0}


def test_dry_run_lists_grid(tmp_path, capsys):
    assert main(["bench", str(_suite(tmp_path)), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "1 pretraining + 2 training runs" in text and "transfusion:1" in text


def test_report_studies_are_checked_before_any_work(tmp_path, capsys):
    """[report] studies names the analysis studies to run; a name that is no study stops the bench
    before anything runs, and a value that is no list of names is a suite error."""
    bad = _suite(tmp_path, extra='[report]\nstudies = ["convergence", "cka"]\n')
    assert main(["bench", str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "report.studies" in err and "'cka'" in err and "convergence" in err
    assert load_suite(str(_suite(tmp_path, extra='[report]\nstudies = ["convergence"]\n'))).report.studies == ("convergence",)
    with pytest.raises(SuiteError, match="report.studies: must be a list of study names"):
        load_suite(str(_suite(tmp_path, extra='[report]\nstudies = "convergence"\n')))


def test_shipped_suites_validate():
    assert set(shipped_suites()) >= {"quick", "robustness", "lightweight", "paper-retina", "paper-chexpert", "small-data", "transfusion-sweep"}
    quick = load_suite("quick")
    grid = expand(quick)
    # 3 seeds, each with its own pretraining per architecture: CBR-Small x {random, transfer, meanvar} on the
    # fundus task and {random, transfer} on the X-rays, ResNet18 x {random, transfer} on the fundus task only
    assert len(grid.runs) == 21 and len(grid.pretrain) == 6 and {s.seed for s in grid.runs} == {0, 1, 2}
    assert {(s.model, s.seed) for s in grid.pretrain} == {(m, k) for m in ("cbr_small", "resnet18") for k in range(3)}
    assert all(grid.depends[s.run_id] == next(p.run_id for p in grid.pretrain if (p.model, p.seed) == (s.model, s.seed))
               for s in grid.runs if s.init != "random")
    r18 = [s for s in grid.runs if s.model == "resnet18"]
    assert len(r18) == 6 and all(s.data.startswith("synth-retina") for s in r18)
    assert {s.init for s in r18} == {"random", "transfer"}
    assert {s.init for s in grid.runs if s.data.startswith("synth-cxr")} == {"random", "transfer"}
    assert all(s.train.epochs == 2 and s.train.select == "last" and not s.train.amp for s in grid.runs)
    assert (quick.run.workers, quick.run.threads) == (2, 1) and quick.report.margin == 0.02
    assert "paper" in quick.report.margin_reason and quick.plan.noise_of("resnet18") == (0.019, 0.0015)
    light = load_suite("lightweight")
    assert len(expand(light).runs) == 18 and "mobilenet_v3_small" in light.grid["model"]
    robust = load_suite("robustness")
    assert robust.robustness.enabled and len(robust.robustness.corruptions) == 8
    assert robust.robustness.severities == (1, 3, 5) and len(expand(robust).runs) == 12
    for name in ("paper-retina", "paper-chexpert", "small-data", "transfusion-sweep"):
        suite = load_suite(name, data_root="/data")
        assert suite.grid["dataset"] and all("/data" in d for d in suite.grid["dataset"])


def test_per_model_trainer_options(tmp_path):
    extra_train = "[train.per_model.cbr_small]\nepochs = 2\nlr = 0.01\n"
    text = TINY().replace("[source]\n", extra_train + "[source]\n")
    text += "[source.train.per_model.cbr_small]\nbatch_size = 8\n"
    suite = parse_suite(text)
    grid = expand(suite)
    # the per-model table's own length (epochs) replaces the inherited steps; other options inherit
    assert all(s.train.epochs == 2 and s.train.steps is None and s.train.lr == 0.01 and s.train.batch_size == 16
               for s in grid.runs)
    (pre,) = grid.pretrain
    assert pre.train.batch_size == 8 and pre.train.steps == 2
    # the options are part of the experiment, so they change the run ids
    assert {s.run_id for s in grid.runs}.isdisjoint(s.run_id for s in expand(parse_suite(TINY())).runs)


@pytest.mark.parametrize("table,message", [
    ("[train.per_model.resnet50]\nepochs = 2\n", "train.per_model.resnet50: 'resnet50' is not a model of this grid"),
    ("[train.per_model.cbr_small]\nres = 64\n", "train.per_model.cbr_small.res: unknown key"),
    ("[train.per_model.cbr_small]\nepochs = 2\nsteps = 3\n", "train.per_model.cbr_small: give epochs or steps"),
    ("[source.train.per_model.cbr_huge]\nepochs = 2\n", "source.train.per_model.cbr_huge: 'cbr_huge' is not a known model"),
    ("[train]\nper_model = 3\n", "train.per_model: must hold one table per model"),
])
def test_bad_per_model_tables(table, message):
    body = 'name = "x"\n[grid]\ndataset = ["synth-retina"]\nmodel = ["cbr_small"]\n' + table
    with pytest.raises(SuiteError, match=message):
        parse_suite(body, origin="x.toml")


def test_exclude_matches_datasets_in_canonical_form_and_rejects_strays():
    head = ('name = "x"\n[grid]\ndataset = ["synth-retina?n=200&res=64", "synth-cxr?res=64&n=200"]\n'
            'model = ["cbr_small", "resnet50"]\n')
    # another spelling of the same dataset (option order) still excludes it
    grid = expand(parse_suite(head + 'exclude = [{ model = "resnet50", dataset = "synth-cxr?n=200&res=64" }]\n'))
    assert sorted((s.model, s.data.split("?")[0]) for s in grid.runs) == [
        ("cbr_small", "synth-cxr"), ("cbr_small", "synth-retina"), ("resnet50", "synth-retina")]
    # a value no axis holds would exclude nothing: an error naming it and the axis's values
    with pytest.raises(SuiteError, match=r"grid.exclude: dataset = 'synth-cxr\?n=300&res=64' is not in the grid"):
        parse_suite(head + 'exclude = [{ dataset = "synth-cxr?n=300&res=64" }]\n', origin="x.toml")
    with pytest.raises(SuiteError, match="model = 'resnet18' is not in the grid's model list"):
        parse_suite(head + 'exclude = [{ model = "resnet18" }]\n', origin="x.toml")


def test_paper_suite_without_data_root_is_a_clear_error(capsys, monkeypatch):
    monkeypatch.delenv("TRANSFUSION_DATA_ROOT", raising=False)
    assert main(["bench", "paper-retina", "--dry-run"]) == 2
    assert "--data-root" in capsys.readouterr().err
    assert main(["bench", "paper-retina", "--data-root", "/nonexistent/data", "--dry-run"]) == 2
    assert "/nonexistent/data" in capsys.readouterr().err


@pytest.mark.parametrize("body,message", [
    ('name = "x"\n[grid]\ndataset = ["synth-retina"]\nmodel = ["cbr_huge"]\n', "grid.model: unknown model 'cbr_huge'"),
    ('name = "x"\n[grid]\ndataset = ["synth-retina"]\nmodel = ["cbr_small"]\ninit = ["warm"]\n', "grid.init"),
    ('name = "x"\n[grid]\ndataset = ["synth-retina"]\nmodel = ["cbr_small"]\n[train]\nepohcs = 3\n', "train.epohcs: unknown key"),
    ('name = "x"\ncolour = 1\n[grid]\ndataset = ["synth-retina"]\nmodel = ["cbr_small"]\n', "colour: unknown key"),
    ('name = "x"\n[grid]\ndataset = []\nmodel = ["cbr_small"]\n', "grid.dataset: is empty"),
    ('name = "x"\n[grid]\ndataset = ["synth-retina"]\nmodel = ["cbr_small"]\n[train]\nlr = -1\n', "lr must be > 0"),
])
def test_bad_suites_rejected_with_file_key_reason(tmp_path, body, message, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(SuiteError, match=message.replace("(", r"\(")):
        parse_suite(body, origin=str(path))
    assert main(["bench", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err


def test_grid_errors_before_training(tmp_path, capsys):
    # inception_v3 cannot take 32 px: exit 2 before anything runs
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\n[grid]\ndataset = ["synth-retina?n=100&res=32"]\nmodel = ["inception_v3"]\n')
    assert main(["bench", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "at least 75 px" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # a regime needing weights without a [source]
    path.write_text('name = "x"\n[grid]\ndataset = ["synth-retina?n=100&res=32"]\nmodel = ["cbr_small"]\n'
                    'init = ["transfer"]\n')
    assert main(["bench", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "needs pretrained weights" in capsys.readouterr().err
    # everything excluded
    path.write_text('name = "x"\n[grid]\ndataset = ["synth-retina?n=100&res=32"]\nmodel = ["cbr_small"]\n'
                    'exclude = [{ model = "cbr_small" }]\n')
    assert main(["bench", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "grid is empty" in capsys.readouterr().err


def test_run_table_sets_workers_and_threads():
    suite = parse_suite(TINY() + "\n[run]\nworkers = 2\nthreads = 1\n")
    assert (suite.run.workers, suite.run.threads) == (2, 1)
    assert (parse_suite(TINY()).run.workers, parse_suite(TINY()).run.threads) == (1, None)
    # speed, not meaning: the run ids do not depend on it
    assert [s.run_id for s in expand(suite).runs] == [s.run_id for s in expand(parse_suite(TINY())).runs]
    with pytest.raises(SuiteError, match=r"run.workers: must be a whole number >= 1, got 0"):
        parse_suite(TINY() + "\n[run]\nworkers = 0\n")
    with pytest.raises(SuiteError, match=r"run.cores: unknown key"):
        parse_suite(TINY() + "\n[run]\ncores = 2\n")


def test_res_and_resize_grid_axes():
    from transfusion.report.sections import dataset_label

    body = ('name = "r"\n[grid]\ndataset = ["synth-retina?n=200"]\nmodel = ["cbr_small"]\nres = [32, 64]\n'
            'resize = ["native", "from:16"]\nexclude = [{ res = 32, resize = "from:16" }]\n')
    runs = expand(parse_suite(body, origin="r.toml")).runs
    assert [(s.res_px, "resize=from:16" in s.data) for s in runs] == [(32, False), (64, False), (64, True)]
    assert len({s.run_id for s in runs}) == 3
    datasets = [s.data for s in runs]
    assert [dataset_label(d, datasets) for d in datasets] == [
        "synth-retina @ 32 px", "synth-retina @ 64 px", "synth-retina (from 16 px)"]  # unique: no res needed
    with pytest.raises(ValueError, match="resize=from:40 upsamples from 40 px .* below res=32 px"):
        expand(parse_suite(body.replace("from:16", "from:40").split("exclude")[0], origin="r.toml"))
    for bad, message in [("res = [32]\n[train]\nres = 48\n", "grid.res: is given and so is \\[train\\] res"),
                         ('resize = ["up"]\n', "grid.resize: .*expected native or from:PX"),
                         ("res = [2]\n", "grid.res: resolutions are whole numbers of px >= 4, got 2")]:
        with pytest.raises(SuiteError, match=message):
            parse_suite('name = "r"\n[grid]\ndataset = ["synth-retina"]\nmodel = ["cbr_small"]\n' + bad,
                        origin="r.toml")


def test_source_seed_per_seed_pretrains_once_per_training_seed():
    """[source] seed = "per-seed": a pretraining run per architecture and training seed, each
    training run depending on the one of its own seed; an integer seed keeps one shared run."""
    from tests._tiny import tiny_suite

    shared = expand(parse_suite(tiny_suite("s", ("random", "transfer"), seeds=(0, 1, 2))))
    per = expand(parse_suite(tiny_suite("s", ("random", "transfer"), seeds=(0, 1, 2)).replace(
        "[source.train]", 'seed = "per-seed"\n[source.train]')))
    assert [p.seed for p in shared.pretrain] == [0] and [p.seed for p in per.pretrain] == [0, 1, 2]
    assert len({p.run_id for p in per.pretrain}) == 3 and shared.pretrain[0].run_id == per.pretrain[0].run_id
    by_id = {p.run_id: p for p in per.pretrain}
    transfer = [s for s in per.runs if s.init == "transfer"]
    assert len(transfer) == 3 and all(by_id[per.depends[s.run_id]].seed == s.seed for s in transfer)
    assert all(s.source == f"run:{per.depends[s.run_id]}" for s in transfer)
    assert all(s.run_id not in per.depends for s in per.runs if s.init == "random")
    with pytest.raises(SuiteError, match=r"source.seed: must be an integer or \"per-seed\".*got 'each'"):
        parse_suite(tiny_suite("s", ("transfer",)).replace("[source.train]", 'seed = "each"\n[source.train]'))
