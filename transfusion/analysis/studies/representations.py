"""Similarity studies: transfer vs random, and each model vs its own initialisation.

Both reproduce Raghu, Zhang, Kleinberg & Bengio, "Transfusion" (NeurIPS 2019): §4 ("transfer
and random learn different representations": SVCCA per layer of pretrained-init against
random-init models after training, with a random-vs-random baseline) and §5 ("feature reuse is
concentrated in the lowest layers", "larger models change less": SVCCA of each trained model
with its own initialisation). Activations come from
:class:`~transfusion.analysis.studies.context.StudyContext`, similarities from
:func:`~transfusion.analysis.stage_similarity.stage_similarities`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from transfusion.analysis.stage_similarity import stage_similarities
from transfusion.analysis.studies.aggregate import mean_by_stage, stage_ends
from transfusion.analysis.studies.context import StudyAbsent, StudyContext
from transfusion.analysis.studies.figures import (
    group_panels,
    regime_colors,
    save_figure,
    stage_panel,
)
from transfusion.analysis.studies.labels import data_labels, regime_order
from transfusion.core.files import write_csv
from transfusion.core.text import num

__all__ = ["SIM_COLUMNS", "VS_INIT_COLUMNS", "transfer_vs_random", "vs_init"]

SIM_COLUMNS = [
    "model", "dataset", "train_size", "comparison", "init_a", "init_b", "seed_a", "seed_b", "run_a", "run_b",
    "stage", "stage_index", "method", "similarity", "cka", "n_datapoints", "features_a", "features_b",
    "dims_a", "dims_b", "note",
]
VS_INIT_COLUMNS = [
    "model", "dataset", "train_size", "init", "seed", "run_id", "params", "stage", "stage_index", "method",
    "similarity", "cka", "n_datapoints", "features_a", "features_b", "dims_a", "dims_b", "note",
]
_BASELINE = "random vs random"

Pair = tuple[str, dict, dict]  # (comparison, run a, run b)


# ------------------------------------------------------------------------ transfer-vs-random


def transfer_vs_random(ctx: StudyContext, out_dir: Path, *, method: str = "svcca") -> tuple[Path, Path, str]:
    """Per-stage similarity of each trained regime to the trained random-init model (same model,
    dataset, seed and training-set size), and random vs random (two seeds) as the baseline band."""
    pairs = _pairs(ctx)
    if not any(c == "transfer vs random" for c, _, _ in pairs):
        raise StudyAbsent(
            "study 'transfer-vs-random' needs runs with init random and transfer for the same model and "
            f"dataset (and seed); found only: {ctx.found()}"
        )
    rows, skipped = _pair_rows(ctx, pairs, method)
    if not any(r["comparison"] == "transfer vs random" for r in rows):
        raise StudyAbsent("study 'transfer-vs-random' could not load the checkpoints of any transfer/random "
                          f"pair: {'; '.join(skipped)}")
    csv = write_csv(out_dir / "transfer-vs-random.csv", SIM_COLUMNS, rows)
    png = save_figure(_pairs_figure(rows, method), out_dir / "transfer-vs-random.png")
    return csv, png, _pairs_summary(rows, method, skipped)


def _pairs(ctx: StudyContext) -> list[Pair]:
    """Each non-random regime vs random at the same seed, and random vs random across seeds, per
    (model, dataset, train size) group holding both random and transfer runs of a common seed."""
    groups: dict[tuple, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in ctx.runs:
        groups[(r["model"], r["dataset"], str(r["train_size"]))][r["init"]][r["seed"]] = r
    pairs: list[Pair] = []
    for inits in groups.values():
        randoms = inits.get("random", {})
        if not randoms or not inits.get("transfer") or not set(randoms) & set(inits["transfer"]):
            continue
        for init in sorted(inits, key=regime_order):
            if init != "random":
                pairs.extend((f"{init} vs random", run, randoms[seed])
                             for seed, run in sorted(inits[init].items()) if seed in randoms)
        seeds = sorted(randoms)
        pairs.extend((_BASELINE, randoms[sa], randoms[sb]) for i, sa in enumerate(seeds) for sb in seeds[i + 1:])
    return pairs


def _pair_rows(ctx: StudyContext, pairs: list[Pair], method: str) -> tuple[list[dict], list[str]]:
    """One row per pair × stage, and a note per pair whose checkpoints could not be loaded."""
    labels = data_labels(r["dataset"] for r in ctx.runs)
    rows, skipped = [], []
    for comparison, ra, rb in pairs:
        try:
            xa, xb = ctx.activations(ra, "trained"), ctx.activations(rb, "trained")
        except (FileNotFoundError, ValueError) as exc:
            skipped.append(f"{comparison} (runs {ra['run_id']}, {rb['run_id']}): {exc}")
            continue
        sims = stage_similarities(xa.pooled, xb.pooled, method=method, max_points=ctx.max_points, strict=False,
                                  cache=ctx.pca_cache)
        head = {"model": ra["model"], "dataset": labels[ra["dataset"]], "train_size": str(ra["train_size"]),
                "comparison": comparison, "init_a": ra["init"], "init_b": rb["init"], "seed_a": ra["seed"],
                "seed_b": rb["seed"], "run_a": ra["run_id"], "run_b": rb["run_id"], "method": method}
        rows.extend({**head, **s} for s in sims)
    return rows, skipped


def _pairs_figure(rows: list[dict], method: str) -> Any:
    """One panel per group: each regime vs random per stage over the random-vs-random band."""
    fig, axes, groups = group_panels(rows)
    colors = regime_colors(r["init_a"] for r in rows if r["comparison"] != _BASELINE)
    for ax, (g, grows) in zip(axes.flat, groups):
        _draw_band(ax, [r for r in grows if r["comparison"] == _BASELINE])
        for init in sorted({r["init_a"] for r in grows if r["comparison"] != _BASELINE}, key=regime_order):
            sel = [r for r in grows if r["init_a"] == init and r["comparison"] != _BASELINE]
            names, mean = mean_by_stage(sel)
            ax.plot(np.arange(len(names)), mean, marker="o", color=colors[init], label=f"{init} vs random",
                    lw=2.2 if init == "transfer" else 1.4)
        stage_panel(ax, mean_by_stage(grows)[0], g, f"{method.upper()} vs random-init model")
    fig.suptitle("Transfer vs random after training, per stage (Raghu et al. 2019, §4)", fontsize=10)
    return fig


def _draw_band(ax: Any, base: list[dict]) -> None:
    """The random-vs-random baseline: min–max over seed pairs per stage (grey) and its mean (dashed)."""
    if not base:
        return
    per_pair: dict[tuple, list[dict]] = defaultdict(list)
    for r in base:
        per_pair[(r["run_a"], r["run_b"])].append(r)
    curves = [mean_by_stage(v)[1] for v in per_pair.values()]
    names, _ = mean_by_stage(base)
    lo, hi = np.nanmin(curves, 0), np.nanmax(curves, 0)
    x = np.arange(len(names))
    ax.fill_between(x, lo - 0.005, hi + 0.005, color="0.8",
                    label=f"random vs random ({len(curves)} pair{'s' if len(curves) > 1 else ''}, min–max)")
    ax.plot(x, np.nanmean(curves, 0), color="0.4", ls="--", lw=1)


def _pairs_summary(rows: list[dict], method: str, skipped: list[str]) -> str:
    """Lowest → highest stage per model, and transfer's gap to the random-vs-random baseline."""
    tr = [r for r in rows if r["comparison"] == "transfer vs random"]
    parts = []
    for model in sorted({r["model"] for r in tr}):
        lo, hi = stage_ends([r for r in tr if r["model"] == model])
        parts.append(f"{model} {num(lo, '.2f')} (lowest stage) → {num(hi, '.2f')} (highest)")
    text = f"Transfer vs random {method.upper()} after training: " + "; ".join(parts)
    base = [r for r in rows if r["comparison"] == _BASELINE]
    if base:
        gap = _baseline_gap(tr, base)
        verdict = "below" if gap < -0.02 else "above" if gap > 0.02 else "within"
        text += (f". Against random vs random (two seeds) transfer is {verdict} the seed-to-seed baseline "
                 f"(mean gap over body stages {num(gap, '+.2f')}).")
    else:
        text += ". The random-vs-random band is absent (the store has one random seed per model and dataset)."
    if skipped:
        text += f" {len(skipped)} pair(s) skipped: {skipped[0]}"
    return text


def _baseline_gap(tr: list[dict], base: list[dict]) -> float:
    """Mean over body stages of transfer-vs-random minus the random-vs-random mean of the same
    (model, dataset, size, stage); NaN where none can be paired."""
    ref: dict[tuple, list[float]] = defaultdict(list)
    for r in base:
        if r["similarity"] is not None:
            ref[(r["model"], r["dataset"], r["train_size"], r["stage"])].append(r["similarity"])
    gaps = [r["similarity"] - float(np.mean(ref[k])) for r in tr
            if r["stage"] != "head" and r["similarity"] is not None
            and (k := (r["model"], r["dataset"], r["train_size"], r["stage"])) in ref]
    return float(np.mean(gaps)) if gaps else float("nan")


# ------------------------------------------------------------------------------- vs-init


def vs_init(ctx: StudyContext, out_dir: Path, *, method: str = "svcca") -> tuple[Path, Path, str]:
    """Per-stage similarity of every trained model with its own initialisation."""
    if not ctx.runs:
        raise StudyAbsent(f"study 'vs-init' needs finished training runs; found only: {ctx.found()}")
    rows, skipped = _vs_init_rows(ctx, method)
    if not rows:
        raise StudyAbsent(f"study 'vs-init' could not rebuild any run's initialisation: {'; '.join(skipped)}")
    csv = write_csv(out_dir / "vs-init.csv", VS_INIT_COLUMNS, rows)
    png = save_figure(_vs_init_figure(rows, method), out_dir / "vs-init.png")
    return csv, png, _vs_init_summary(rows, method, skipped)


def _vs_init_rows(ctx: StudyContext, method: str) -> tuple[list[dict], list[str]]:
    """One row per run × stage, and a note per run whose checkpoints could not be had."""
    labels = data_labels(r["dataset"] for r in ctx.runs)
    rows, skipped = [], []
    for r in ctx.runs:
        try:
            a = ctx.activations(r, "trained")
            b = ctx.activations(r, "init")
        except (FileNotFoundError, ValueError) as exc:
            skipped.append(f"{r['run_id']} ({r['init']}): {exc}")
            continue
        sims = stage_similarities(a.pooled, b.pooled, method=method, max_points=ctx.max_points, strict=False,
                                  cache=ctx.pca_cache)
        head = {"model": r["model"], "dataset": labels[r["dataset"]], "train_size": str(r["train_size"]),
                "init": r["init"], "seed": r["seed"], "run_id": r["run_id"],
                "params": r["summary"].params if r.get("summary") else None, "method": method}
        rows.extend({**head, **s} for s in sims)
    return rows, skipped


def _vs_init_figure(rows: list[dict], method: str) -> Any:
    """One panel per group: each regime's similarity to its own init per stage."""
    fig, axes, groups = group_panels(rows)
    colors = regime_colors(row["init"] for row in rows)
    for ax, (g, grows) in zip(axes.flat, groups):
        for init in sorted({x["init"] for x in grows}, key=regime_order):
            names, mean = mean_by_stage([x for x in grows if x["init"] == init])
            ax.plot(np.arange(len(names)), mean, marker="o", color=colors[init], label=init)
        stage_panel(ax, mean_by_stage(grows)[0], g, f"{method.upper()}, trained vs own init")
    fig.suptitle("Each model against its own initialisation (Raghu et al. 2019, §5)", fontsize=10)
    return fig


def _vs_init_summary(rows: list[dict], method: str, skipped: list[str]) -> str:
    """Lowest vs highest body stage per regime; body-stage mean per model, ordered by size."""
    parts = []
    for init in sorted({x["init"] for x in rows}, key=regime_order):
        lo, hi = stage_ends([x for x in rows if x["init"] == init])
        parts.append(f"{init} {num(lo, '.2f')}→{num(hi, '.2f')}")
    text = f"{method.upper()} to own init, lowest→highest stage: " + ", ".join(parts) + "."
    sizes: dict[str, list] = {}
    for x in rows:
        if x["stage"] != "head" and x["similarity"] is not None:
            sizes.setdefault(x["model"], [x["params"] or 0, []])[1].append(x["similarity"])
    if len(sizes) > 1:
        order = sorted(sizes, key=lambda m: sizes[m][0])
        means = [float(np.mean(sizes[m][1])) for m in order]
        holds = all(b >= a for a, b in zip(means, means[1:]))
        text += (" By size (params): " + ", ".join(f"{m} {num(v, '.2f')}" for m, v in zip(order, means))
                 + (" — larger models change less." if holds else " — not monotone in size here."))
    if skipped:
        text += f" {len(skipped)} run(s) skipped: {skipped[0]}"
    return text
