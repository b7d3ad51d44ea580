"""Shared test setup.

- A hermetic environment for the whole session (``data_cache``, autouse): every test, and every
  process a test starts (bench runners, spawned workers, Ray tasks), keeps its dataset cache in
  the session's temporary folder instead of ``~/.cache/transfusion``, never downloads, and sees
  no data root of the user's.
- ``one_thread``: torch on one intra-op thread for the test, restored afterwards.
- ``build_model``: a fresh copy of a zoo model built once per session (Inception-v3 and
  DenseNet-121 take seconds to build and a fraction of that to copy).
- ``tiny_bench``: run ``transfusion bench`` on a suite's TOML text into a fresh folder and
  return its results store (module-scoped fixtures build their tiny trained stores with it).
- torch runs on one intra-op thread (see ``_torch_on_one_thread``), and a test that changes the
  thread count gets it restored afterwards, so it changes neither the speed nor the numbers of
  the tests after it.

The helpers ``_tiny`` (tiny suites) and ``_records`` (hand-made run records) stay importable as
plain modules: this folder is on ``sys.path`` under pytest's default import mode.

Markers: ``slow`` (see pyproject.toml) marks the tests that train models or run benches;
``python -m pytest -m "not slow" -q`` is the fast subset.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session", autouse=True)
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's dataset cache folder, also set as ``$TRANSFUSION_CACHE``."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    cache.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRANSFUSION_CACHE", str(cache))
        mp.setenv("TRANSFUSION_OFFLINE", "1")
        mp.delenv("TRANSFUSION_DATA_ROOT", raising=False)
        yield cache


@pytest.fixture(scope="session", autouse=True)
def _torch_on_one_thread() -> Iterator[None]:
    """torch on one intra-op thread unless a test or a run asks for more. On a shared 2-core
    machine two OpenMP threads contending with another process made a ResNet50 forward/backward
    at 64 px take 8 s instead of 0.6 s; the tests' models are small enough for one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _torch_threads_restored() -> Iterator[None]:
    """A test (or a run it trains in this process) that changes torch's thread count does not
    change it for the tests after it."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    if before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread during the test (timings comparable on a shared machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def build_model() -> Callable[..., Any]:
    """``build_model(name, num_classes=2, in_chans=3, seed=0)``: a fresh (deep) copy of the model
    ``create_model`` builds with those arguments when torch is seeded with ``seed``; each model
    is built once per session. The global random state is left as it was."""
    import copy

    import torch

    from transfusion.models import create_model

    @functools.cache
    def built(name: str, num_classes: int, in_chans: int, seed: int) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return create_model(name, num_classes=num_classes, in_chans=in_chans)

    def build(name: str, num_classes: int = 2, in_chans: int = 3, seed: int = 0) -> torch.nn.Module:
        return copy.deepcopy(built(name, num_classes, in_chans, seed))

    return build


@pytest.fixture(scope="session")
def tiny_bench(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``tiny_bench(toml, name, *extra_args)``: ``transfusion bench`` of the suite ``toml`` into a
    fresh folder named after ``name`` (one thread, no report); returns its ``results.sqlite``."""

    def run(toml: str, name: str, *extra: str) -> Path:
        from transfusion.cli.main import main

        root = tmp_path_factory.mktemp(name)
        suite = root / f"{name}.toml"
        suite.write_text(toml)
        out = root / "out"
        assert main(["bench", str(suite), "--out", str(out), "--no-report", "--threads", "1", *extra]) == 0
        return out / "results.sqlite"

    return run
