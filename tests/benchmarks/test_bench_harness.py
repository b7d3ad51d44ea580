"""Harness overhead: a suite run through store, claims, logging and checkpointing against a bare
PyTorch loop over the same model, data, steps and batch size. Target: within 5%.

Run with ``pytest tests/benchmarks/test_bench_harness.py --benchmark-only -s``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from transfusion.data import load_dataset
from transfusion.harness.runner import run_suite
from transfusion.harness.suite import parse_suite
from transfusion.models import create_model
from transfusion.train.inference import loss_fn, normalize
from transfusion.transfer import IMAGENET_MEAN, IMAGENET_STD

pytestmark = pytest.mark.slow  # both run suites (trainings) through the harness

DATA = "synth-retina?n=2000&res=64"
STEPS, BATCH, THREADS = 120, 32, 2
SUITE = f"""
name = "overhead"
[grid]
dataset = ["{DATA}"]
model = ["cbr_small"]
[train]
steps = {STEPS}
batch_size = {BATCH}
eval_every = {STEPS}
augment = false
bootstrap = 0
warmup = 0.0
threads = {THREADS}
[cost]
enabled = false
"""


def _bare_loop(ds) -> float:
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = create_model("cbr_small", num_classes=2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    train = ds["train"]
    n = len(train)
    model.train()
    t0 = time.perf_counter()
    for step in range(STEPS):
        idx = np.sort(np.random.default_rng(step).permutation(n)[:BATCH])
        x = normalize(torch.from_numpy(train.images[idx]), IMAGENET_MEAN, IMAGENET_STD)
        y = torch.from_numpy(train.targets[idx])
        loss = loss_fn(ds.task, model(x), y, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


@pytest.mark.benchmark(group="harness")
def test_harness_overhead_vs_bare_loop(benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFUSION_CACHE", str(tmp_path / "cache"))
    ds = load_dataset(DATA)
    suite = parse_suite(SUITE)
    results = {}

    def both():
        bare = _bare_loop(ds)
        out = tmp_path / f"out{len(results)}"
        t0 = time.perf_counter()
        run_suite(suite, out)
        harness = time.perf_counter() - t0
        results[len(results)] = (bare, harness)

    benchmark.pedantic(both, rounds=2, iterations=1)
    best_bare = min(b for b, _ in results.values())
    best_harness = min(h for _, h in results.values())
    ratio = best_harness / best_bare
    print(f"\nbare loop {best_bare:.2f} s, whole harness run (store, claim, eval, checkpoints, "
          f"test scoring) {best_harness:.2f} s for {STEPS} steps: overhead {100 * (ratio - 1):+.1f}%")
    benchmark.extra_info.update(bare_s=best_bare, harness_s=best_harness, ratio=ratio)


@pytest.mark.benchmark(group="quick-suite")
def test_quick_suite_wall_time(benchmark, tmp_path, monkeypatch):
    """The main job end to end, from an empty data cache: `transfusion bench` on the quick suite
    (pretraining, grid, cost profiles, summary and report with studies). Budget: 10 minutes on
    a 2-core CPU; prints the wall time and where it went."""
    import sqlite3

    from transfusion.cli.main import main

    monkeypatch.setenv("TRANSFUSION_CACHE", str(tmp_path / "cache"))
    out, report = tmp_path / "runs", tmp_path / "report"

    def run():
        assert main(["bench", "quick", "--out", str(out), "--report-dir", str(report)]) == 0

    t0 = time.perf_counter()
    benchmark.pedantic(run, rounds=1, iterations=1)
    wall = time.perf_counter() - t0
    db = sqlite3.connect(out / "results.sqlite")
    rows = db.execute("SELECT kind, status, started_at, finished_at FROM runs").fetchall()
    assert rows and all(status == "done" for _, status, _, _ in rows)
    pre = sum(f - s for kind, _, s, f in rows if kind == "pretrain")
    train = sum(f - s for kind, _, s, f in rows if kind == "train")
    print(f"\nquick suite: {wall / 60:.1f} min wall ({len(rows)} runs: pretraining {pre:.0f} s, training "
          f"{train:.0f} s; data, cost profiles, summary and report {wall - pre - train:.0f} s)")
    benchmark.extra_info.update(wall_s=wall, pretrain_s=pre, train_s=train)
    assert (report / "report.md").is_file()
