"""Statistics benchmarks (skipped by default; run with
``pytest tests/benchmarks/test_bench_stats.py --benchmark-only``).

- Bootstrap interval of one binary AUC over 5000 test rows, 1000 replicates: goal < 2 s on a
  quiet core (ranks once, then one AUC per replicate from the resample counts). What it
  computes is checked in tests/test_metrics.py.
- Paired bootstrap of two models on the same 5000 rows, and DeLong's test, for comparison.
"""

from __future__ import annotations

import numpy as np
import pytest

from transfusion.data.base import TaskSpec
from transfusion.stats import bootstrap_ci, paired_difference

BINARY = TaskSpec("binary", ("negative", "positive"))
N, N_BOOT = 5000, 1000


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(15)
    y = rng.integers(0, 2, N)
    z = rng.normal(size=N) + y
    return z, z + rng.normal(size=N), y


@pytest.mark.benchmark(group="stats")
def test_bench_bootstrap_auc_5000_rows(benchmark, scores):
    z, _, y = scores
    lo, hi = benchmark.pedantic(bootstrap_ci, args=(BINARY, z, y), kwargs={"n_boot": N_BOOT}, rounds=3, iterations=1)
    assert lo < hi
    assert benchmark.stats.stats.median < 2.0


@pytest.mark.benchmark(group="stats")
def test_bench_paired_bootstrap_5000_rows(benchmark, scores):
    a, b, y = scores
    d = benchmark.pedantic(paired_difference, args=(BINARY, a, b, y), kwargs={"n_boot": N_BOOT}, rounds=3,
                           iterations=1)
    assert d.ci_low < d.diff < d.ci_high


@pytest.mark.benchmark(group="stats")
def test_bench_delong_5000_rows(benchmark, scores):
    a, b, y = scores
    d = benchmark(paired_difference, BINARY, a, b, y, method="delong")
    assert d.ci_low < d.diff < d.ci_high
