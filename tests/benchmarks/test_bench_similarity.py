"""Similarity measures on 20,000 datapoints × 512 features (float64) against the arithmetic floor.

The floor is forming XᵀX, YᵀY and XᵀY. Goal: mean CCA ≤ 1.5× floor, SVCCA ≤ 2×, agreeing with
the plain QR implementation to 1e-8. Skipped by default; run with
``pytest tests/benchmarks/test_bench_similarity.py --benchmark-only -s``. Each ratio divides the
measure's median by the median of floor timings interleaved with its rounds, at the same thread
count (the machine is
noisy: compare only numbers from one run).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from transfusion.analysis.similarity import cca, linear_cka, pwcca, svcca

# the plain reference implementations live in tests/ (on sys.path for tests/*.py, not for this folder)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reference_similarity import cca_qr, svcca_svd  # noqa: E402

N, P = 20_000, 512
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.fixture(scope="module", params=DEVICES)
def data(request) -> tuple[torch.Tensor, torch.Tensor, str]:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(N, 64, dtype=torch.float64, generator=g)
    x = z @ torch.randn(64, P, dtype=torch.float64, generator=g) + torch.randn(N, P, dtype=torch.float64, generator=g)
    y = z @ torch.randn(64, P, dtype=torch.float64, generator=g) + torch.randn(N, P, dtype=torch.float64, generator=g)
    return x.to(request.param), y.to(request.param), request.param


@pytest.fixture(params=[1, 2], ids=lambda t: f"threads{t}")
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _floor(x: torch.Tensor, y: torch.Tensor) -> None:
    x.T @ x, y.T @ y, x.T @ y  # noqa: B018


def _time_s(fn: Callable[[], object], device: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


_PLAIN: dict[str, torch.Tensor] = {}


def _plain(name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    key = f"{name}-{x.device}"
    if key not in _PLAIN:
        _PLAIN[key] = cca_qr(x, y) if name == "cca" else svcca_svd(x, y)
    return _PLAIN[key]


MEASURES: dict[str, Callable[[torch.Tensor, torch.Tensor], object]] = {
    "floor": _floor,
    "cca": cca,
    "svcca": svcca,
    "pwcca": pwcca,
    "cka": linear_cka,
}


@pytest.mark.parametrize("measure", list(MEASURES))
def test_bench(benchmark, data, threads, measure):
    x, y, device = data
    fn = MEASURES[measure]

    def run() -> object:
        out = fn(x, y)
        _sync(device)
        return out

    floors: list[float] = []
    # the floor is timed before every round (pedantic's untimed setup), interleaved with the
    # measure, so slow spells on this shared machine hit both
    out = benchmark.pedantic(
        run, setup=lambda: floors.append(_time_s(lambda: _floor(x, y), device)), rounds=5, iterations=1
    )
    median_s = benchmark.stats.stats.median
    floor_s = float(np.median(floors))
    line = f"\n{measure:6s} {device} threads={threads}: {median_s:.3f} s = {median_s / floor_s:.2f}× floor ({floor_s:.3f} s)"
    if measure in ("cca", "svcca"):
        diff = float((out.correlations - _plain(measure, x, y)).abs().max())
        line += f"; max |Δρ| vs plain = {diff:.1e}"
        assert diff < 1e-8
    print(line)
