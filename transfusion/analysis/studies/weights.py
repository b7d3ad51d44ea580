"""Weight studies: first-conv filters with Gabor-likeness, and weight scaling per layer.

Both reproduce Raghu, Zhang, Kleinberg & Bengio, "Transfusion" (NeurIPS 2019): the conv1 filter
pictures before and after training (§5, "the absence of Gabors" in random-init models — here a
number, the R² of a fitted 2-D Gabor per filter) and the weight-scaling analysis behind the
Mean-Var init (§6: transfer's benefit partly comes from the scale of the pretrained weights).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transfusion.analysis.filters import filter_mosaic, gabor_likeness
from transfusion.analysis.studies.context import StudyAbsent, StudyContext
from transfusion.analysis.studies.figures import figure, regime_colors, save_figure
from transfusion.analysis.studies.labels import data_labels, regime_order
from transfusion.core.files import write_csv
from transfusion.core.text import num
from transfusion.models import model_config, stages

__all__ = [
    "FILTER_COLUMNS", "FILTER_REGIMES", "PER_FILTER_COLUMNS", "SCALING_COLUMNS", "SCALING_REGIMES",
    "filters", "weight_scaling",
]


def _representatives(ctx: StudyContext, inits: tuple[str, ...] | None) -> list[dict]:
    """One run per (model, dataset, init): training size "all" first, then the lowest seed."""
    best: dict[tuple, dict] = {}
    for r in ctx.runs:
        if inits is not None and r["init"] not in inits:
            continue
        key = (r["model"], r["dataset"], r["init"])
        rank = (str(r["train_size"]) != "all", r["seed"])
        if key not in best or rank < (str(best[key]["train_size"]) != "all", best[key]["seed"]):
            best[key] = r
    return sorted(best.values(), key=lambda r: (r["dataset"], r["model"], regime_order(r["init"])))


def _first_conv(model: torch.nn.Module, arch: str) -> torch.Tensor:
    """The first conv's weight (out, in, k, k), float32 on the CPU."""
    return model.state_dict()[model_config(arch).first_conv + ".weight"].detach().float().cpu()


# -------------------------------------------------------------------------------- filters

FILTER_REGIMES = ("random", "transfer", "gabor")
FILTER_COLUMNS = [
    "model", "dataset", "init", "seed", "run_id", "checkpoint", "n_filters", "in_chans", "kernel_px",
    "gabor_mean", "gabor_median", "gabor_frac_above_0.7", "weight_std", "rel_change_from_init",
]
PER_FILTER_COLUMNS = ["model", "dataset", "init", "seed", "run_id", "checkpoint", "filter", "gabor_r2"]

# (model, init, dataset label, checkpoint) → (conv1 weight, mean Gabor R²)
Panels = dict[tuple[str, str, str, str], tuple[torch.Tensor, float]]


def filters(ctx: StudyContext, out_dir: Path, *, regimes: tuple[str, ...] = FILTER_REGIMES,
            ) -> tuple[Path, Path, str]:
    """First-conv filters before (the rebuilt init) and after training (``best.pt``) for one run
    per model, dataset and regime in ``regimes``, with each filter's Gabor-likeness: the R² of
    its best-fitting 2-D Gabor (:func:`~transfusion.analysis.filters.gabor_likeness`).
    Also writes ``filters_per_filter.csv`` (one score per filter)."""
    reps = _representatives(ctx, tuple(regimes))
    if not reps:
        raise StudyAbsent(f"study 'filters' needs runs with init {', '.join(regimes)}; found only: {ctx.found()}")
    rows, per_filter, panels, skipped = _filter_rows(ctx, reps)
    if not rows:
        raise StudyAbsent(f"study 'filters' could not load any checkpoint: {'; '.join(skipped)}")
    csv = write_csv(out_dir / "filters.csv", FILTER_COLUMNS, rows)
    write_csv(out_dir / "filters_per_filter.csv", PER_FILTER_COLUMNS, per_filter)
    png = save_figure(_filter_figure(panels), out_dir / "filters.png")
    return csv, png, _filter_summary(rows, skipped)


def _filter_rows(ctx: StudyContext, reps: list[dict]) -> tuple[list[dict], list[dict], Panels, list[str]]:
    """Per run and checkpoint a summary row, per filter a score row, the panels to draw, and
    a note per run whose models could not be had."""
    labels = data_labels(r["dataset"] for r in ctx.runs)
    cache: dict[str, np.ndarray] = {}  # Gabor fits by weight content: an init can repeat across datasets

    def scores(w: torch.Tensor) -> np.ndarray:
        key = hashlib.sha1(w.numpy().tobytes() + str(tuple(w.shape)).encode()).hexdigest()
        if key not in cache:
            cache[key] = gabor_likeness(w)
        return cache[key]

    rows, per_filter, panels, skipped = [], [], {}, []
    for r in reps:
        try:
            w0 = _first_conv(ctx.model(r, "init")[0], r["model"])
            w1 = _first_conv(ctx.model(r, "trained")[0], r["model"])
        except (FileNotFoundError, ValueError, KeyError) as exc:
            skipped.append(f"{r['run_id']} ({r['init']}): {exc}")
            continue
        rel = float((w1 - w0).norm() / w0.norm()) if float(w0.norm()) > 0 else None
        for which, w in (("init", w0), ("trained", w1)):
            g = scores(w)
            panels[(r["model"], r["init"], labels[r["dataset"]], which)] = (w, float(g.mean()))
            base = {"model": r["model"], "dataset": labels[r["dataset"]], "init": r["init"], "seed": r["seed"],
                    "run_id": r["run_id"], "checkpoint": which}
            rows.append({**base, "n_filters": w.shape[0], "in_chans": w.shape[1], "kernel_px": w.shape[2],
                         "gabor_mean": float(g.mean()), "gabor_median": float(np.median(g)),
                         "gabor_frac_above_0.7": float((g > 0.7).mean()), "weight_std": float(w.std()),
                         "rel_change_from_init": 0.0 if which == "init" else rel})
            per_filter.extend({**base, "filter": i, "gabor_r2": float(v)} for i, v in enumerate(g))
    return rows, per_filter, panels, skipped


def _filter_figure(panels: Panels) -> Any:
    """Rows: (model, regime); columns: (dataset, before | after); each a filter mosaic."""
    row_keys = sorted({k[:2] for k in panels}, key=lambda k: (k[0], regime_order(k[1])))
    col_keys = [(d, w) for d in sorted({k[2] for k in panels}) for w in ("init", "trained")]
    fig, axes = figure(len(row_keys), len(col_keys), width=2.3, height=2.5)
    for i, (model, init) in enumerate(row_keys):
        for j, (data, which) in enumerate(col_keys):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            hit = panels.get((model, init, data, which))
            if hit is None:
                ax.set_axis_off()
                continue
            ax.imshow(filter_mosaic(hit[0]), interpolation="nearest")
            ax.set_title(f"{data}, {'before' if which == 'init' else 'after'}\nGabor R² {num(hit[1], '.2f')}",
                         fontsize=7)
            if j == 0 or axes[i, j - 1].axison is False:
                ax.set_ylabel(f"{model}\n{init}", fontsize=8)
    fig.suptitle("First-conv filters before / after training\n(R² = mean fit of a 2-D Gabor per filter)", fontsize=9)
    return fig


def _filter_summary(rows: list[dict], skipped: list[str]) -> str:
    """Mean Gabor-likeness before → after training per regime."""
    agg: dict[tuple[str, str], list[float]] = defaultdict(list)
    for x in rows:
        agg[(x["init"], x["checkpoint"])].append(x["gabor_mean"])
    parts = [f"{init} {num(np.mean(agg[(init, 'init')]), '.2f')}→{num(np.mean(agg[(init, 'trained')]), '.2f')}"
             for init in sorted({x["init"] for x in rows}, key=regime_order)]
    text = "Mean Gabor-likeness (R² of a 2-D Gabor fit) of conv1 before→after training: " + ", ".join(parts) + "."
    if skipped:
        text += f" {len(skipped)} run(s) skipped: {skipped[0]}"
    return text


# ------------------------------------------------------------------------- weight-scaling

SCALING_REGIMES = ("random", "transfer", "meanvar")
SCALING_COLUMNS = [
    "model", "dataset", "init", "seed", "run_id", "layer", "stage", "layer_index", "numel",
    "init_mean", "init_std", "trained_mean", "trained_std", "l2_from_init", "rel_l2_from_init",
]


def weight_scaling(ctx: StudyContext, out_dir: Path, *, regimes: tuple[str, ...] = SCALING_REGIMES,
                   ) -> tuple[Path, Path, str]:
    """Per-layer mean and std of the conv/linear weights at init and after training, and the L2
    distance from initialisation (absolute and relative to ‖W₀‖)."""
    reps = _representatives(ctx, tuple(regimes))
    if not reps:
        raise StudyAbsent(f"study 'weight-scaling' needs runs with init {', '.join(regimes)}; "
                          f"found only: {ctx.found()}")
    labels = data_labels(r["dataset"] for r in ctx.runs)
    rows, skipped = [], []
    for r in reps:
        try:
            m0 = ctx.model(r, "init")[0]
            m1 = ctx.model(r, "trained")[0]
        except (FileNotFoundError, ValueError) as exc:
            skipped.append(f"{r['run_id']} ({r['init']}): {exc}")
            continue
        base = {"model": r["model"], "dataset": labels[r["dataset"]], "init": r["init"], "seed": r["seed"],
                "run_id": r["run_id"]}
        rows.extend({**base, **layer} for layer in _layer_rows(m0, m1))
    if not rows:
        raise StudyAbsent(f"study 'weight-scaling' could not load any checkpoint: {'; '.join(skipped)}")
    csv = write_csv(out_dir / "weight-scaling.csv", SCALING_COLUMNS, rows)
    png = save_figure(_scaling_figure(rows), out_dir / "weight-scaling.png")
    return csv, png, _scaling_summary(rows, skipped)


def _layer_rows(m0: torch.nn.Module, m1: torch.nn.Module) -> list[dict]:
    """Per conv/linear weight of ``m0`` (init) and ``m1`` (trained), in forward order: its stage,
    mean and std of both, and ‖W − W₀‖ absolute and relative (``None`` when W₀ = 0)."""
    view = stages(m0)
    s1 = m1.state_dict()
    rows = []
    for key, w0 in m0.state_dict().items():
        if not key.endswith(".weight") or w0.ndim < 2:
            continue  # conv and linear weights only (BatchNorm scales are not weights of a layer)
        w0, w1 = w0.double(), s1[key].double()
        d, n0 = float((w1 - w0).norm()), float(w0.norm())
        rows.append({"layer": key[: -len(".weight")], "stage": next((s.name for s in view if s.owns(key)), ""),
                     "layer_index": len(rows), "numel": w0.numel(), "init_mean": float(w0.mean()),
                     "init_std": float(w0.std()), "trained_mean": float(w1.mean()), "trained_std": float(w1.std()),
                     "l2_from_init": d, "rel_l2_from_init": d / n0 if n0 > 0 else None})
    return rows


def _scaling_figure(rows: list[dict]) -> Any:
    """Per (model, dataset) column: weight std per layer at init and trained (top), relative
    distance from init (bottom), a colour per regime."""
    groups = sorted({(x["model"], x["dataset"]) for x in rows})
    fig, axes = figure(2, len(groups), width=4.4, height=3.0)
    colors = regime_colors(x["init"] for x in rows)
    for j, (model, data) in enumerate(groups):
        top, bottom = axes[0, j], axes[1, j]
        for init in sorted({x["init"] for x in rows}, key=regime_order):
            sel = sorted((x for x in rows if (x["model"], x["dataset"], x["init"]) == (model, data, init)),
                         key=lambda x: x["layer_index"])
            if not sel:
                continue
            li = [x["layer_index"] for x in sel]
            top.plot(li, [x["init_std"] for x in sel], ls=":", color=colors[init], label=f"{init} init")
            top.plot(li, [x["trained_std"] for x in sel], ls="-", color=colors[init], label=f"{init} trained")
            bottom.plot(li, [x["rel_l2_from_init"] for x in sel], color=colors[init], label=init)
        top.set_yscale("log")
        top.set_title(f"{model} · {data}", fontsize=9)
        top.set_ylabel("weight std")
        bottom.set_ylabel("‖W − W₀‖ / ‖W₀‖")
        for ax in (top, bottom):
            ax.set_xlabel("layer (conv/linear, forward order)")
            ax.legend(fontsize=6)
    fig.suptitle("Weight scaling at init and after training (Raghu et al. 2019, §6)", fontsize=10)
    return fig


def _scaling_summary(rows: list[dict], skipped: list[str]) -> str:
    """Per regime: median over layers of the init std and of the relative distance moved."""
    parts = []
    for init in sorted({x["init"] for x in rows}, key=regime_order):
        sel = [x for x in rows if x["init"] == init]
        parts.append(f"{init} std {num(np.median([x['init_std'] for x in sel]), '.3g')}, "
                     f"moved {num(np.median([x['rel_l2_from_init'] or 0 for x in sel]), '.2f')}")
    text = "Median over layers of the weight std at init and of ‖W−W₀‖/‖W₀‖ after training: " + "; ".join(parts) + "."
    if skipped:
        text += f" {len(skipped)} run(s) skipped: {skipped[0]}"
    return text
