"""Gabor fit benchmark (skipped by default; run with
``pytest tests/benchmarks/test_bench_gabor.py --benchmark-only``).

The Gabor-likeness of a conv1 layer: fitting 64 7×7 filters (a shared coarse grid search, then a
bounded least-squares refinement per filter). Goal: < 2 s on a quiet core. What the fit computes
is checked in tests/test_gabor.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from transfusion.transfer.gabor import gabor_bank, gabor_fit_many


@pytest.mark.benchmark(group="gabor")
@pytest.mark.parametrize("kind", ["gabor", "noise"])
def test_bench_gabor_fit_64_filters(benchmark, kind):
    filters = (gabor_bank(64, 1, 7)[:, 0].numpy() if kind == "gabor"
               else np.random.default_rng(1).standard_normal((64, 7, 7)))
    fits = benchmark.pedantic(gabor_fit_many, args=(filters,), rounds=3, iterations=1)
    assert len(fits) == 64
    assert benchmark.stats.stats.median < 2.0
