"""Figures of the studies: matplotlib's object API on an Agg canvas (no pyplot state, no
display), one panel per group, a stable colour per init regime. matplotlib is imported only
when a figure is drawn."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from transfusion.analysis.studies.labels import regime_order
from transfusion.core.files import atomic_path

__all__ = ["figure", "grid_shape", "group_panels", "hide_unused", "regime_colors", "save_figure", "stage_panel"]


def figure(nrows: int, ncols: int, *, width: float = 4.2, height: float = 3.2) -> tuple[Any, Any]:
    """(Figure, axes array nrows × ncols) on an Agg canvas; ``width``/``height``: inches per panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # at least 6.4 in wide, so a one-panel figure still holds its suptitle
    fig = Figure(figsize=(max(width * ncols, 6.4), height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def grid_shape(n: int, max_cols: int = 3) -> tuple[int, int]:
    """(rows, columns) of a grid holding ``n`` panels, at most ``max_cols`` wide."""
    cols = min(max_cols, max(1, n))
    return math.ceil(n / cols), cols


def hide_unused(axes: Any, used: int) -> None:
    """Blank every panel after the first ``used`` (row-major)."""
    for ax in list(axes.flat)[used:]:
        ax.set_axis_off()


def group_panels(rows: list[dict]) -> tuple[Any, Any, list[tuple[tuple, list[dict]]]]:
    """Rows grouped by (model, dataset, train size), sorted, and a figure with one panel each."""
    by_group: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        by_group[(row["model"], row["dataset"], row["train_size"])].append(row)
    fig, axes = figure(*grid_shape(len(by_group)))
    hide_unused(axes, len(by_group))
    return fig, axes, sorted(by_group.items())


def stage_panel(ax: Any, stages: list[str], group: tuple, ylabel: str, *, ylim: tuple[float, float] | None = (0, 1.02),
                legend: dict[str, Any] | None = None) -> None:
    """Label a panel of per-stage curves: ``stages`` as x ticks, ``group`` (model, dataset, train
    size) as the title; ``legend``: keyword arguments of ``ax.legend``."""
    ax.set_xticks(np.arange(len(stages)), stages, rotation=30)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("stage")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{group[0]} · {group[1]} · train {group[2]}", fontsize=9)
    ax.legend(**(legend or {"fontsize": 7, "loc": "lower left"}))


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` as a PNG (110 dpi) to ``path`` atomically, creating its folder; returns ``path``."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def regime_colors(inits: Iterable[str]) -> dict[str, Any]:
    """A stable colour per regime (tab10), in regime order."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {init: cmap(i % 10) for i, init in enumerate(sorted(set(inits), key=regime_order))}
