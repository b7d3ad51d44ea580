"""Executors: what runs a grid's pending runs. Each has one method,
``run(store_path, grid, out, *, threads, device, on_event)``, and returns when no run is left
pending or running. ``local`` runs them in this process or in N worker processes; ``ray`` as
Ray tasks on a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..execute import EventHook
from ..grid import Grid

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    def run(self, store_path: Path, grid: Grid, out: Path, *, threads: int, device: str,
            on_event: EventHook | None = None) -> None: ...


def make_executor(name: str, *, workers: int = 1, address: str | None = None) -> Executor:
    """The executor called ``name`` (``local`` with ``workers`` processes, or ``ray`` at
    ``address``, default a local Ray instance)."""
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(workers)
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(address)
    raise ValueError(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")
