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

import numpy as np
import torch

from transfusion.analysis.filters import gabor_likeness
from transfusion.analysis.studies.context import (
    StudyAbsent,
    StudyContext,
    data_labels,
    figure,
    fmt,
    regime_colors,
    regime_order,
    save_figure,
    write_csv,
)
from transfusion.models import model_config, stages

FILTER_REGIMES = ("random", "transfer", "gabor")


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
    return model.state_dict()[model_config(arch).first_conv + ".weight"].detach().float().cpu()


# -------------------------------------------------------------------------------- filters

FILTER_COLUMNS = [
    "model", "dataset", "init", "seed", "run_id", "checkpoint", "n_filters", "in_chans", "kernel_px",
    "gabor_mean", "gabor_median", "gabor_frac_above_0.7", "weight_std", "rel_change_from_init",
]
PER_FILTER_COLUMNS = ["model", "dataset", "init", "seed", "run_id", "checkpoint", "filter", "gabor_r2"]


def filter_mosaic(weight: torch.Tensor, *, cols: int | None = None, gap: int = 1) -> np.ndarray:
    """Conv weights (out, in, k, k) → one image (rows·(k+gap), cols·(k+gap), 3) in [0, 1] for ``imshow``.

    Each filter is scaled on its own, symmetric about zero (mid-grey = 0 weight), in RGB when
    in = 3 and as the channel mean (grey) otherwise — the convention of
    :func:`~transfusion.analysis.filters.filter_grid`, drawn as a single image so that dozens of
    banks fit one figure quickly. Gaps are white.
    """
    w = weight.detach().double().cpu().numpy()
    out, cin, k, _ = w.shape
    img = w.transpose(0, 2, 3, 1) if cin == 3 else np.repeat(w.mean(1)[..., None], 3, axis=3)
    scale = np.abs(img).reshape(out, -1).max(1)
    img = 0.5 + 0.5 * img / np.where(scale > 0, scale, 1.0)[:, None, None, None]
    ncol = cols or int(np.ceil(np.sqrt(out)))
    nrow = int(np.ceil(out / ncol))
    mosaic = np.ones((nrow * (k + gap) - gap, ncol * (k + gap) - gap, 3))
    for i in range(out):
        r, c = divmod(i, ncol)
        mosaic[r * (k + gap):r * (k + gap) + k, c * (k + gap):c * (k + gap) + k] = img[i]
    return mosaic


def filters(ctx: StudyContext, out_dir: Path, *, regimes: tuple[str, ...] = FILTER_REGIMES,
            ) -> tuple[Path, Path, str]:
    """First-conv filters before (the rebuilt init) and after training (``best.pt``) for one run
    per model, dataset and regime in ``regimes``, with each filter's Gabor-likeness: the R² of
    its best-fitting 2-D Gabor (:func:`~transfusion.analysis.filters.gabor_likeness`).
    Also writes ``filters_per_filter.csv`` (one score per filter)."""
    reps = _representatives(ctx, tuple(regimes))
    if not reps:
        raise StudyAbsent(f"study 'filters' needs runs with init {', '.join(regimes)}; found only: {ctx.found()}")
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
        rel = float((w1 - w0).norm() / w0.norm()) if float(w0.norm()) > 0 else float("nan")
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
    if not rows:
        raise StudyAbsent(f"study 'filters' could not load any checkpoint: {'; '.join(skipped)}")
    csv = write_csv(rows, FILTER_COLUMNS, out_dir / "filters.csv")
    write_csv(per_filter, PER_FILTER_COLUMNS, out_dir / "filters_per_filter.csv")

    # rows: (model, regime); columns: (dataset, before | after)
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
            ax.set_title(f"{data}, {'before' if which == 'init' else 'after'}\nGabor R² {hit[1]:.2f}", fontsize=7)
            if j == 0 or axes[i, j - 1].axison is False:
                ax.set_ylabel(f"{model}\n{init}", fontsize=8)
    fig.suptitle("First-conv filters before / after training\n(R² = mean fit of a 2-D Gabor per filter)", fontsize=9)
    png = save_figure(fig, out_dir / "filters.png")

    agg: dict[tuple[str, str], list[float]] = defaultdict(list)
    for x in rows:
        agg[(x["init"], x["checkpoint"])].append(x["gabor_mean"])
    parts = [f"{init} {fmt(np.mean(agg[(init, 'init')]))}→{fmt(np.mean(agg[(init, 'trained')]))}"
             for init in sorted({x["init"] for x in rows}, key=regime_order)]
    text = "Mean Gabor-likeness (R² of a 2-D Gabor fit) of conv1 before→after training: " + ", ".join(parts) + "."
    if skipped:
        text += f" {len(skipped)} run(s) skipped: {skipped[0]}"
    return csv, png, text


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
        view = stages(m0)
        s0, s1 = m0.state_dict(), m1.state_dict()
        idx = 0
        for key, w0 in s0.items():
            if not key.endswith(".weight") or w0.ndim < 2:
                continue  # conv and linear weights only (BatchNorm scales are not weights of a layer)
            w0, w1 = w0.double(), s1[key].double()
            d = float((w1 - w0).norm())
            n0 = float(w0.norm())
            rows.append({"model": r["model"], "dataset": labels[r["dataset"]], "init": r["init"], "seed": r["seed"],
                         "run_id": r["run_id"], "layer": key[: -len(".weight")],
                         "stage": next((s.name for s in view if s.owns(key)), ""), "layer_index": idx,
                         "numel": w0.numel(), "init_mean": float(w0.mean()), "init_std": float(w0.std()),
                         "trained_mean": float(w1.mean()), "trained_std": float(w1.std()), "l2_from_init": d,
                         "rel_l2_from_init": d / n0 if n0 > 0 else None})
            idx += 1
    if not rows:
        raise StudyAbsent(f"study 'weight-scaling' could not load any checkpoint: {'; '.join(skipped)}")
    csv = write_csv(rows, SCALING_COLUMNS, out_dir / "weight-scaling.csv")

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
        top.set_xlabel("layer (conv/linear, forward order)")
        top.set_ylabel("weight std")
        top.legend(fontsize=6)
        bottom.set_xlabel("layer (conv/linear, forward order)")
        bottom.set_ylabel("‖W − W₀‖ / ‖W₀‖")
        bottom.legend(fontsize=6)
    fig.suptitle("Weight scaling at init and after training (Raghu et al. 2019, §6)", fontsize=10)
    png = save_figure(fig, out_dir / "weight-scaling.png")

    parts = []
    for init in sorted({x["init"] for x in rows}, key=regime_order):
        sel = [x for x in rows if x["init"] == init]
        parts.append(f"{init} std {float(np.median([x['init_std'] for x in sel])):.3g}, "
                     f"moved {fmt(float(np.median([x['rel_l2_from_init'] or 0 for x in sel])))}")
    text = "Median over layers of the weight std at init and of ‖W−W₀‖/‖W₀‖ after training: " + "; ".join(parts) + "."
    if skipped:
        text += f" {len(skipped)} run(s) skipped: {skipped[0]}"
    return csv, png, text
