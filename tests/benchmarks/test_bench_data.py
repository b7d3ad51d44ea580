"""Data pipeline benchmarks (skipped by default; run with
``pytest tests/benchmarks/test_bench_data.py --benchmark-only -s``).

- Synthetic generation at 128 px on one core: goal >= 500 img/s (CPU time of this process,
  so other load on the machine does not count against it).
- Cache loading (random batch-32 slices from the uint8 memmap → torch → augment) against
  fp32 CBR-Tiny training at 128 px, batch 32: goal >= 5x. Both are measured in this run,
  one thread each; compare only numbers from one run (the machine is noisy).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from transfusion.data import augment, load_dataset
from transfusion.data.synthetic import generate_cxr, generate_natural, generate_retina

RES = 128
GENERATORS = {
    "retina": lambda n, out: generate_retina(n, RES, seed=0, balance=0.5, difficulty=0.5, out=out),
    "cxr": lambda n, out: generate_cxr(n, RES, seed=0, balance=0.3, difficulty=0.5, uncertain=0.1, out=out),
    "natural": lambda n, out: generate_natural(n, RES, seed=0, balance=1.0, difficulty=0.5, out=out),
}


@pytest.mark.parametrize("task", list(GENERATORS))
def test_bench_generate_128px(benchmark, task):
    n = 64
    chans = 1 if task == "cxr" else 3
    out = np.empty((n, chans, RES, RES), np.uint8)
    GENERATORS[task](4, out[:4])  # templates
    cpu = []

    def run():
        t = time.process_time()
        GENERATORS[task](n, out)
        cpu.append(time.process_time() - t)

    benchmark.pedantic(run, rounds=5, iterations=1)
    img_s = n / float(np.median(cpu))
    benchmark.extra_info["img_s_cpu"] = round(img_s, 1)
    print(f"\nsynth-{task} at {RES} px: {img_s:.0f} img/s (one core, CPU time)")
    assert img_s >= 500


def test_bench_cache_vs_cbr_tiny_training(benchmark, tmp_path, one_thread):
    from transfusion.models import create_model

    ds = load_dataset(f"synth-retina?n=1200&res={RES}", cache_dir=tmp_path)
    images = ds["train"].images
    n = len(images)
    g = torch.Generator().manual_seed(0)
    starts = np.random.default_rng(0).integers(0, n - 32, 4096)
    state = {"i": 0}

    def load_batch():
        s = int(starts[state["i"] % len(starts)])
        state["i"] += 1
        batch = torch.from_numpy(np.array(images[s : s + 32]))
        return augment(batch, g)

    benchmark.pedantic(load_batch, rounds=200, iterations=5, warmup_rounds=10)
    load_img_s = 32 / benchmark.stats.stats.median

    model = create_model("cbr_tiny", num_classes=2).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(32, 3, RES, RES)
    y = torch.randint(0, 2, (32,))
    times = []
    for step in range(4):
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step:  # first step is warm-up
            times.append(time.perf_counter() - t)
    train_img_s = 32 / float(np.median(times))
    ratio = load_img_s / train_img_s
    benchmark.extra_info.update(load_img_s=round(load_img_s), train_img_s=round(train_img_s, 1), ratio=round(ratio))
    print(f"\ncache loading {load_img_s:.0f} img/s vs CBR-Tiny training {train_img_s:.1f} img/s at {RES} px: {ratio:.0f}x")
    assert ratio >= 5
