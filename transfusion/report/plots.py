"""Report figures, drawn with matplotlib's object API (no pyplot state, Agg canvas).

Each function takes plain data, writes one PNG and returns its path. Text from the store (model,
regime, dataset names) is escaped for matplotlib's mathtext (``$``) before it is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
DPI = 110


def plot_text(s: object) -> str:
    """``s`` made literal for matplotlib (``$`` would start mathtext)."""
    return str(s).replace("\\", "\\\\").replace("$", r"\$")


@dataclass(frozen=True)
class CostPoint:
    """One (model, regime) row of an accuracy-versus-cost plot. ``lo``/``hi``: its 95% interval
    (None when unknown); ``int8``: the point is the row's int8 variant (drawn hollow, joined to
    its fp32 point)."""

    model: str
    init: str
    cost: float
    auc: float
    lo: float | None = None
    hi: float | None = None
    int8: bool = False


def _figure(width: float = 7.2, height: float = 4.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


def accuracy_cost_plot(
    points: Sequence[CostPoint],
    front: np.ndarray,
    recommended: int | None,
    path: str | Path,
    *,
    xlabel: str,
    title: str,
    delta: float,
    log_x: bool = True,
) -> Path:
    """AUC (y) against a cost (x) with 95% intervals, the Pareto front as a staircase, the
    ``best − delta`` line and the recommended point starred. ``front``: bool mask over
    ``points``; ``recommended``: index into ``points`` or None."""
    path = Path(path)
    fig, ax = _figure()
    models = sorted({p.model for p in points})
    inits = sorted({p.init for p in points})
    colors = {m: f"C{i % 10}" for i, m in enumerate(models)}
    markers = {r: _MARKERS[i % len(_MARKERS)] for i, r in enumerate(inits)}
    fp32 = {(p.model, p.init): p for p in points if not p.int8}
    for p in points:
        yerr = None
        if p.lo is not None and p.hi is not None:
            yerr = [[max(p.auc - p.lo, 0.0)], [max(p.hi - p.auc, 0.0)]]
        ax.errorbar([p.cost], [p.auc], yerr=yerr, fmt=markers[p.init], color=colors[p.model], ms=7,
                    capsize=3, elinewidth=0.8, alpha=0.9, mfc="white" if p.int8 else None)
        twin = fp32.get((p.model, p.init)) if p.int8 else None
        if twin is not None:
            ax.plot([twin.cost, p.cost], [twin.auc, p.auc], color=colors[p.model], ls=":", lw=0.9)
    idx = np.flatnonzero(front)
    if idx.size:
        order = idx[np.argsort([points[i].cost for i in idx])]
        xs = [points[i].cost for i in order]
        ys = [points[i].auc for i in order]
        ax.step(xs, ys, where="post", color="black", lw=1.2, ls="-", zorder=1)
        ax.scatter(xs, ys, s=160, facecolors="none", edgecolors="black", lw=1.0, zorder=3)
    best = max(p.auc for p in points)
    ax.axhline(best - delta, color="grey", ls="--", lw=0.9)
    if recommended is not None:
        r = points[recommended]
        ax.scatter([r.cost], [r.auc], marker="*", s=380, color="gold", edgecolors="black", zorder=4)
    if log_x and all(p.cost > 0 for p in points):
        ax.set_xscale("log")
    ax.set_xlabel(plot_text(xlabel))
    ax.set_ylabel("test AUC (mean over seeds, 95% interval)")
    ax.set_title(plot_text(title), fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[m], marker="o", ls="", label=plot_text(m)) for m in models]
    handles += [Line2D([], [], color="dimgrey", marker=markers[r], ls="", label=plot_text(r)) for r in inits]
    if any(p.int8 for p in points):
        handles.append(Line2D([], [], color="dimgrey", marker="o", mfc="white", ls=":", label="int8 (hollow), "
                              "joined to its fp32 point"))
    handles += [Line2D([], [], color="black", lw=1.2, marker="o", mfc="none", label="Pareto front"),
                Line2D([], [], color="grey", ls="--", label=f"best − δ (δ = {delta * 100:g} AUC points)"),
                Line2D([], [], color="gold", marker="*", ms=14, mec="black", ls="", label="recommended")]
    ax.legend(handles=handles, fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def paired_difference_plot(
    labels: Sequence[str],
    diffs: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    verdicts: Sequence[str],
    path: str | Path,
    *,
    margin: float,
    title: str,
    seed_diffs: Sequence[Sequence[float]] | None = None,
) -> Path:
    """Forest plot of regime − random AUC differences (AUC points): each comparison's mean with its
    interval, its seed pairs' differences as small dots beside it (``seed_diffs``, one list per
    comparison), the equivalence band ±margin shaded."""
    path = Path(path)
    colors = {"equivalent": "C2", "better": "C0", "worse": "C3", "inconclusive": "C7", "unjudged": "C1"}
    fig, ax = _figure(7.2, 0.9 + 0.32 * max(len(labels), 1))
    y = np.arange(len(labels))[::-1]
    d = np.asarray(diffs) * 100
    lo, hi = np.asarray(lows) * 100, np.asarray(highs) * 100
    ax.axvspan(-margin * 100, margin * 100, color="C2", alpha=0.12, lw=0)
    ax.axvline(0, color="black", lw=0.8)
    for i, (yi, di, li, hi_, v) in enumerate(zip(y, d, lo, hi, verdicts)):
        ax.errorbar([di], [yi], xerr=[[di - li], [hi_ - di]], fmt="o", color=colors.get(v, "C7"), capsize=3)
        if seed_diffs is not None and seed_diffs[i]:
            s = np.asarray(seed_diffs[i], dtype=float) * 100
            ax.scatter(s, np.full(s.shape, yi - 0.22), s=9, color=colors.get(v, "C7"), alpha=0.8, zorder=3)
    ax.set_yticks(y, [plot_text(s) for s in labels], fontsize=7.5)
    ax.set_xlabel("AUC difference, regime − random (AUC points; interval of the mean, dots: seed pairs)")
    ax.set_title(plot_text(title), fontsize=10)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=c, marker="o", ls="", label=v) for v, c in colors.items() if v in set(verdicts)]
    if seed_diffs is not None:
        handles.append(Line2D([], [], color="dimgrey", marker="o", ms=3, ls="", label="one seed pair"))
    handles.append(Patch(color="C2", alpha=0.12, label=f"equivalence margin ±{margin * 100:g}"))
    ax.legend(handles=handles, fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(True, axis="x", alpha=0.25)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def reliability_plot(curves: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], path: str | Path, *,
                     title: str) -> Path:
    """Reliability diagrams, one panel per model: for each regime its (mean predicted probability,
    observed frequency) points joined by a line, beside the diagonal of perfect calibration.
    ``curves``: (model, regime) → (x, y)."""
    from matplotlib.figure import Figure

    path = Path(path)
    models = list(dict.fromkeys(m for m, _ in curves))
    inits = list(dict.fromkeys(i for _, i in curves))
    colors = {r: f"C{i % 10}" for i, r in enumerate(inits)}
    fig = Figure(figsize=(3.3 * len(models) + 1.6, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(models), sharey=True))
    for ax, model in zip(axes, models):
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.9)
        for (m, init), (x, y) in curves.items():
            if m == model:
                ax.plot(x, y, marker=_MARKERS[inits.index(init) % len(_MARKERS)], ms=4, lw=1.1,
                        color=colors[init], label=plot_text(init))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_title(plot_text(model), fontsize=9)
        ax.set_xlabel("mean predicted probability", fontsize=8)
        ax.grid(True, alpha=0.25)
    axes[0].set_ylabel("observed frequency", fontsize=8)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[r], marker=_MARKERS[i % len(_MARKERS)], label=plot_text(r))
               for i, r in enumerate(inits)]
    handles.append(Line2D([], [], color="grey", ls="--", label="perfect calibration"))
    axes[-1].legend(handles=handles, fontsize=7.5, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.suptitle(plot_text(title), fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def severity_plot(series: dict[tuple[str, str], dict[str, list[tuple[int, float | None]]]],
                  clean: dict[tuple[str, str], float], path: str | Path, *, title: str) -> Path:
    """Test AUC against corruption severity: one panel per corruption, one line per (model,
    regime) starting from its clean AUC at severity 0. ``series``: (model, regime) → corruption →
    [(severity, AUC)]."""
    from matplotlib.figure import Figure

    path = Path(path)
    corruptions = list(dict.fromkeys(c for per in series.values() for c in per))
    cols = min(4, len(corruptions))
    nrows = -(-len(corruptions) // cols)
    fig = Figure(figsize=(2.7 * cols + 2.2, 2.4 * nrows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, cols, sharex=True, sharey=True)).reshape(-1)
    keys = list(series)
    for ax, corr in zip(axes, corruptions):
        for i, key in enumerate(keys):
            pts = sorted((s, a) for s, a in series[key].get(corr, []) if a is not None)
            if not pts:
                continue
            xs, ys = [0, *(s for s, _ in pts)], [clean.get(key), *(a for _, a in pts)]
            ax.plot(xs, ys, marker=_MARKERS[i % len(_MARKERS)], ms=3.5, lw=1.0, color=f"C{i % 10}")
        ax.set_title(plot_text(corr), fontsize=8.5)
        ax.grid(True, alpha=0.25)
        ax.tick_params(labelsize=7)
    for ax in axes[len(corruptions):]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel("test AUC", fontsize=8)
    for ax in axes[-cols:]:
        ax.set_xlabel("severity (0 = clean)", fontsize=8)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=f"C{i % 10}", marker=_MARKERS[i % len(_MARKERS)], label=plot_text(f"{m} · {r}"))
               for i, (m, r) in enumerate(keys)]
    fig.legend(handles=handles, fontsize=7.5, loc="outside right center", frameon=False)
    fig.suptitle(plot_text(title), fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def efficiency_plot(curves: dict[str, list[tuple[float, float, float, int]]], crossover: float | None,
                    low: float | None, high: float | None, path: str | Path, *, title: str, censored: str = "",
                    demonstrated: float | None = None, demonstrated_state: str = "", level: float = 0.95,
                    sizes: Sequence[float] = ()) -> Path:
    """Test AUC against training size (log axis), one line per regime (mean over seeds, ± SD as
    error bars); the point crossing as a dashed line, the ``level`` interval of the true crossing
    shaded — a censored end (``censored``: ``left``, ``right``, ``both``) runs to the plot's edge
    and the legend says it lies outside the sizes tried (``sizes``: those of the crossover, default
    every size of ``curves``) —, and the demonstrated crossover
    (``demonstrated_state`` ``from`` / ``from-start``: within the margin from that size on) as a
    solid line. ``curves``: regime → [(images, mean AUC, SD, seeds)]."""
    path = Path(path)
    fig, ax = _figure(6.4, 4.0)
    for i, (init, pts) in enumerate(curves.items()):
        xs, ys, sd = (np.array([p[k] for p in pts], dtype=float) for k in range(3))
        ax.errorbar(xs, ys, yerr=sd, marker=_MARKERS[i % len(_MARKERS)], ms=5, lw=1.2, capsize=3,
                    color=f"C{i % 10}", label=plot_text(init))
    xmin = min(p[0] for pts in curves.values() for p in pts)
    xmax = max(p[0] for pts in curves.values() for p in pts)
    left, right = xmin / 1.5, xmax * 1.5
    first, last = (min(sizes), max(sizes)) if len(sizes) else (xmin, xmax)
    lo_c, hi_c = censored in ("left", "both"), censored in ("right", "both")
    if low is not None or high is not None or censored:
        a = left if lo_c or low is None else low
        b = right if hi_c or high is None else high
        ends = [f"≤ {first:.0f}"] if lo_c else []
        ends += [f"> {last:.0f}, beyond the sizes tried"] if hi_c else []
        note = f"\n(censored: {'; '.join(ends)})" if ends else ""
        ax.axvspan(a, b, color="grey", alpha=0.15, label=f"true crossing, {level * 100:g}% interval{note}")
    if crossover is not None:
        ax.axvline(crossover, color="black", ls="--", lw=1.0, label=f"point crossing ≈ {crossover:.0f} images")
    if demonstrated is not None and demonstrated_state in ("from", "from-start"):
        at = f"≤ {demonstrated:.0f}" if demonstrated_state == "from-start" else f"{demonstrated:.0f}"
        ax.axvline(demonstrated, color="black", ls="-", lw=1.4,
                   label=f"within the margin from {at} images (upper bound)")
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    from matplotlib.ticker import NullFormatter

    ticks = sorted({p[0] for pts in curves.values() for p in pts})
    ax.set_xticks(ticks, [f"{x:.0f}" for x in ticks])  # the sizes tried, as plain numbers
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training images (log scale)")
    ax.set_ylabel("test AUC (mean over seeds, ± SD)")
    ax.set_title(plot_text(title), fontsize=10)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
