"""Micro-benchmarks of the cost profiler's counting (skipped by default; run with
``pytest tests/benchmarks --benchmark-only``)."""

from __future__ import annotations

import pytest
import torch

from transfusion.cost.counts import count_flops_torch, count_macs
from transfusion.models import create_model


@pytest.fixture(scope="module")
def resnet50_64px():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield create_model("resnet50", num_classes=2).eval(), torch.randn(1, 3, 64, 64)
    torch.set_num_threads(before)


def test_bench_count_macs_fvcore(benchmark, resnet50_64px):
    """fvcore jit trace + count of ResNet50 at 64 px."""
    model, x = resnet50_64px
    macs, _ = benchmark(count_macs, model, x)
    assert macs > 0


def test_bench_count_flops_torch(benchmark, resnet50_64px):
    """FlopCounterMode (one eager forward) of ResNet50 at 64 px."""
    model, x = resnet50_64px
    assert benchmark(count_flops_torch, model, x) > 0
