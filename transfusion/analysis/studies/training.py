"""Training-outcome studies read from the store alone: convergence, the transfusion curve and
data efficiency (no checkpoint is loaded).

They reproduce Raghu, Zhang, Kleinberg & Bengio, "Transfusion" (NeurIPS 2019): convergence
speed per init regime (§6, transfer and Mean-Var converge faster), the weight-transfusion
curve — final AUC and steps to a target AUC against the number K of pretrained stages (§6) —
and AUC against training-set size (Table 3, the very-small-data regime).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from transfusion.analysis.studies.aggregate import mean_defined, std_defined
from transfusion.analysis.studies.context import StudyAbsent, StudyContext
from transfusion.analysis.studies.figures import (
    figure,
    grid_shape,
    hide_unused,
    regime_colors,
    save_figure,
)
from transfusion.analysis.studies.labels import data_labels, regime_order
from transfusion.core.files import write_csv
from transfusion.core.text import num
from transfusion.models import create_model, stages
from transfusion.stats import steps_to_target

__all__ = [
    "CONVERGENCE_COLUMNS", "CURVE_COLUMNS", "EFFICIENCY_COLUMNS", "TRANSFUSION_COLUMNS",
    "convergence", "data_efficiency", "transfusion_curve",
]

Group = tuple[str, str, str]  # (model, dataset label, train size)

# ---------------------------------------------------------------------------- convergence

CONVERGENCE_COLUMNS = [
    "model", "dataset", "train_size", "init", "n_seeds", "target_auc", "steps_to_target_mean", "n_reached",
    "final_val_auc_mean", "best_val_auc_mean", "test_auc_mean", "rank",
]
CURVE_COLUMNS = ["model", "dataset", "train_size", "init", "seed", "run_id", "step", "epoch", "train_loss",
                 "val_auc", "val_acc", "seconds"]


def convergence(ctx: StudyContext, out_dir: Path, *, target_auc: float | None = None) -> tuple[Path, Path, str]:
    """Validation-AUC curves per regime and steps to the target AUC; regimes ranked per group.

    Target: ``target_auc`` if given, else each run's own (the suite's ``target_auc``), else 95%
    of the best validation AUC any run of the group reached. Rank 1 = fewest mean steps to the
    target; regimes that never reach it rank last, ordered by final validation AUC.
    Also writes ``convergence_curves.csv`` (every evaluation of every run).
    """
    curves = {r["run_id"]: ctx.store.curve(r["run_id"]) for r in ctx.runs}
    have = [r for r in ctx.runs if any(c["val_auc"] is not None for c in curves[r["run_id"]])]
    if not have:
        raise StudyAbsent(f"study 'convergence' needs finished training runs with validation curves; "
                          f"found only: {ctx.found()}")
    labels = data_labels(r["dataset"] for r in have)
    groups: dict[Group, list[dict]] = defaultdict(list)
    for r in have:
        groups[(r["model"], labels[r["dataset"]], str(r["train_size"]))].append(r)
    rows, curve_rows = [], []
    for key, runs in sorted(groups.items()):
        rows.extend(_ranked_regimes(key, runs, curves, target_auc))
        curve_rows.extend({"model": key[0], "dataset": key[1], "train_size": key[2], "init": r["init"],
                           "seed": r["seed"], "run_id": r["run_id"], **c} for r in runs for c in curves[r["run_id"]])
    csv = write_csv(out_dir / "convergence.csv", CONVERGENCE_COLUMNS, rows)
    write_csv(out_dir / "convergence_curves.csv", CURVE_COLUMNS, curve_rows)
    png = save_figure(_convergence_figure(groups, curves, rows), out_dir / "convergence.png")
    return csv, png, _convergence_summary(rows, len(groups))


def _ranked_regimes(key: Group, runs: list[dict], curves: dict[str, list[dict]],
                    target_auc: float | None) -> list[dict]:
    """One row per regime of a group: target, mean steps to it, AUCs; ranked by speed."""
    best_any = max(c["val_auc"] for r in runs for c in curves[r["run_id"]] if c["val_auc"] is not None)
    per_init: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        cv = curves[r["run_id"]]
        tgt = target_auc if target_auc is not None else (
            (r["summary"].target_auc if r.get("summary") else None) or round(0.95 * best_any, 4))
        vals = [c["val_auc"] for c in cv if c["val_auc"] is not None]
        per_init[r["init"]].append({
            "target": tgt, "steps": steps_to_target([c["step"] for c in cv], [c["val_auc"] for c in cv], tgt),
            "final": vals[-1] if vals else None, "best": max(vals) if vals else None, "test": r["test_auc"]})
    rows = []
    for init, xs in per_init.items():
        reached = [x["steps"] for x in xs if x["steps"] is not None]
        rows.append({"model": key[0], "dataset": key[1], "train_size": key[2], "init": init, "n_seeds": len(xs),
                     "target_auc": mean_defined([x["target"] for x in xs]),
                     "steps_to_target_mean": mean_defined(reached) if len(reached) == len(xs) else None,
                     "n_reached": len(reached), "final_val_auc_mean": mean_defined([x["final"] for x in xs]),
                     "best_val_auc_mean": mean_defined([x["best"] for x in xs]),
                     "test_auc_mean": mean_defined([x["test"] for x in xs])})
    rows.sort(key=lambda x: (x["steps_to_target_mean"] is None, x["steps_to_target_mean"] or 0,
                             -(x["final_val_auc_mean"] or 0)))
    for i, x in enumerate(rows):
        x["rank"] = i + 1
    return rows


def _convergence_figure(groups: dict[Group, list[dict]], curves: dict[str, list[dict]], rows: list[dict]) -> Any:
    """One panel per group: every run's validation-AUC curve, coloured by regime, and the target."""
    keys = sorted(groups)
    fig, axes = figure(*grid_shape(len(keys)))
    colors = regime_colors(r["init"] for runs in groups.values() for r in runs)
    for ax, key in zip(axes.flat, keys):
        target = next((x["target_auc"] for x in rows if (x["model"], x["dataset"], x["train_size"]) == key), None)
        for init in sorted({r["init"] for r in groups[key]}, key=regime_order):
            for i, run in enumerate(r for r in groups[key] if r["init"] == init):
                cv = [c for c in curves[run["run_id"]] if c["val_auc"] is not None]
                ax.plot([c["step"] for c in cv], [c["val_auc"] for c in cv], color=colors[init], marker=".",
                        label=init if i == 0 else None, alpha=0.9)
        if target is not None:
            ax.axhline(target, color="0.5", ls="--", lw=0.8, label=f"target {num(target, '.3g')}")
        ax.set_xlabel("training step")
        ax.set_ylabel("validation AUC")
        ax.set_title(f"{key[0]} · {key[1]} · train {key[2]}", fontsize=9)
        ax.legend(fontsize=7)
    hide_unused(axes, len(keys))
    fig.suptitle("Convergence per init regime (Raghu et al. 2019, §6)", fontsize=10)
    return fig


def _convergence_summary(rows: list[dict], n_groups: int) -> str:
    """Overall ranking: each regime's mean rank over groups; regimes that never reached the target."""
    ranks: dict[str, list[int]] = defaultdict(list)
    for x in rows:
        ranks[x["init"]].append(x["rank"])
    order = sorted(ranks, key=lambda i: (np.mean(ranks[i]), regime_order(i)))
    text = ("Convergence ranking (mean rank over " + f"{n_groups} model/dataset group(s), fewest steps to target "
            "first): " + ", ".join(f"{i} ({num(np.mean(ranks[i]), '.1f')})" for i in order) + ".")
    never = sorted({x["init"] for x in rows if x["n_reached"] == 0})
    if never:
        text += f" Never reached the target in some group: {', '.join(never)}."
    return text


# ---------------------------------------------------------------------- transfusion-curve

TRANSFUSION_COLUMNS = [
    "model", "dataset", "train_size", "K", "n_stages", "init", "n_seeds", "test_auc_mean", "test_auc_std",
    "steps_to_target_mean", "n_reached",
]


def _k_of(init: str, n_body: int) -> int | None:
    """K, the pretrained stages of a regime: random 0, transfusion:K, transfer every body stage."""
    if init == "random":
        return 0
    if init == "transfer":
        return n_body
    name, _, k = init.partition(":")
    return int(k) if name == "transfusion" and k.isdigit() else None


def _n_body_stages(model: str) -> int:
    """Stages of ``model`` below the head (from its stage view)."""
    return len(stages(create_model(model, num_classes=2))) - 1


def transfusion_curve(ctx: StudyContext, out_dir: Path) -> tuple[Path, Path, str]:
    """Final test AUC and steps to target against K, the number of pretrained stages
    (random = K 0, transfusion:K, transfer = every body stage), per model and dataset."""
    sweep = {(r["model"], r["dataset"], str(r["train_size"])) for r in ctx.runs if r["init"].startswith("transfusion:")}
    if not sweep:
        raise StudyAbsent("study 'transfusion-curve' needs runs with init transfusion:K (a transfusion sweep) "
                          f"for a model and dataset; found only: {ctx.found()}")
    rows = _curve_rows(ctx, sweep)
    csv = write_csv(out_dir / "transfusion-curve.csv", TRANSFUSION_COLUMNS, rows)
    png = save_figure(_curve_figure(rows), out_dir / "transfusion-curve.png")
    return csv, png, _curve_summary(rows)


def _curve_rows(ctx: StudyContext, sweep: set[tuple[str, str, str]]) -> list[dict]:
    """One row per (model, dataset, size, K, regime) of the swept groups: AUC mean ± std, steps."""
    labels = data_labels(r["dataset"] for r in ctx.runs)
    n_body = {m: _n_body_stages(m) for m, _, _ in sweep}
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in ctx.runs:
        if (r["model"], r["dataset"], str(r["train_size"])) not in sweep:
            continue
        k = _k_of(r["init"], n_body[r["model"]])
        if k is not None:
            cells[(r["model"], labels[r["dataset"]], str(r["train_size"]), k, r["init"])].append(r)
    rows = []
    for (model, data, size, k, init), runs in sorted(cells.items(), key=lambda kv: kv[0][:4]):
        steps = [r["steps_to_target"] for r in runs]
        rows.append({"model": model, "dataset": data, "train_size": size, "K": k, "n_stages": n_body[model],
                     "init": init, "n_seeds": len(runs), "test_auc_mean": mean_defined([r["test_auc"] for r in runs]),
                     "test_auc_std": std_defined([r["test_auc"] for r in runs]),
                     "steps_to_target_mean": mean_defined(steps) if all(s is not None for s in steps) else None,
                     "n_reached": sum(s is not None for s in steps)})
    return rows


def _curve_figure(rows: list[dict]) -> Any:
    """Test AUC (left) and steps to target (right) against K, one line per group."""
    fig, axes = figure(1, 2, width=5.0, height=3.6)
    for key in sorted({(x["model"], x["dataset"], x["train_size"]) for x in rows}):
        sel = sorted((x for x in rows if (x["model"], x["dataset"], x["train_size"]) == key), key=lambda x: x["K"])
        ks = [x["K"] for x in sel]
        label = f"{key[0]} · {key[1]}" + ("" if key[2] == "all" else f" · {key[2]}")
        auc = [x["test_auc_mean"] if x["test_auc_mean"] is not None else np.nan for x in sel]
        axes[0, 0].errorbar(ks, auc, yerr=[x["test_auc_std"] or 0.0 for x in sel], marker="o", capsize=2, label=label)
        st = [x["steps_to_target_mean"] if x["steps_to_target_mean"] is not None else np.nan for x in sel]
        axes[0, 1].plot(ks, st, marker="o", label=label)
    axes[0, 0].set_ylabel("test AUC (mean ± std over seeds)")
    axes[0, 1].set_ylabel("steps to target AUC (gap: not reached)")
    for ax in axes.flat:
        ax.set_xlabel("K = pretrained stages (0 = random, all = transfer)")
        ax.legend(fontsize=7)
    fig.suptitle("Weight transfusion: reusing the first K stages (Raghu et al. 2019, §6)", fontsize=10)
    return fig


def _curve_summary(rows: list[dict]) -> str:
    """Per group: the K with the best test AUC, against the smallest K."""
    parts = []
    for key in sorted({(x["model"], x["dataset"], x["train_size"]) for x in rows}):
        sel = [x for x in rows if (x["model"], x["dataset"], x["train_size"]) == key and x["test_auc_mean"] is not None]
        if not sel:
            continue
        best = max(sel, key=lambda x: x["test_auc_mean"])
        lo = min(sel, key=lambda x: x["K"])
        parts.append(f"{key[0]} on {key[1]}: best AUC {num(best['test_auc_mean'], '.3f')} at K={best['K']} "
                     f"(K={lo['K']}: {num(lo['test_auc_mean'], '.3f')})")
    return "; ".join(parts) + "." if parts else "No run of the sweep has a test AUC."


# ------------------------------------------------------------------------ data-efficiency

EFFICIENCY_COLUMNS = ["model", "dataset", "init", "train_size", "n_train", "n_seeds", "test_auc_mean",
                      "test_auc_std"]


def data_efficiency(ctx: StudyContext, out_dir: Path) -> tuple[Path, Path, str]:
    """Test AUC against the number of training images, per model and regime (the paper's Table 3)."""
    sizes: dict[tuple, set] = defaultdict(set)
    for r in ctx.runs:
        sizes[(r["model"], r["dataset"], r["init"])].add(str(r["train_size"]))
    if not any(len(s) >= 2 for s in sizes.values()):
        seen = sorted({str(r["train_size"]) for r in ctx.runs})
        raise StudyAbsent("study 'data-efficiency' needs runs of one model, dataset and init at 2 or more "
                          f"training-set sizes; found only train_size {', '.join(seen) or 'none'} "
                          f"({ctx.found()})")
    rows = _efficiency_rows(ctx, sizes)
    csv = write_csv(out_dir / "data-efficiency.csv", EFFICIENCY_COLUMNS, rows)
    png = save_figure(_efficiency_figure(rows), out_dir / "data-efficiency.png")
    return csv, png, _efficiency_summary(rows)


def _efficiency_rows(ctx: StudyContext, sizes: dict[tuple, set]) -> list[dict]:
    """One row per (model, dataset, regime, size) of the regimes run at 2 or more sizes."""
    labels = data_labels(r["dataset"] for r in ctx.runs)
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in ctx.runs:
        if len(sizes[(r["model"], r["dataset"], r["init"])]) >= 2:
            cells[(r["model"], labels[r["dataset"]], r["init"], str(r["train_size"]))].append(r)
    rows = []
    for (model, data, init, size), runs in cells.items():
        n_train = mean_defined([r["summary"].n_train if r.get("summary") else None for r in runs])
        rows.append({"model": model, "dataset": data, "init": init, "train_size": size,
                     "n_train": int(n_train) if n_train is not None else None, "n_seeds": len(runs),
                     "test_auc_mean": mean_defined([r["test_auc"] for r in runs]),
                     "test_auc_std": std_defined([r["test_auc"] for r in runs])})
    rows.sort(key=lambda x: (x["dataset"], x["model"], regime_order(x["init"]), x["n_train"] or 0))
    return rows


def _efficiency_figure(rows: list[dict]) -> Any:
    """One panel per dataset: test AUC against training images (log scale), a line per model × regime."""
    datasets = sorted({x["dataset"] for x in rows})
    fig, axes = figure(1, len(datasets), width=5.0, height=3.6)
    colors = regime_colors(x["init"] for x in rows)
    markers = dict(zip(sorted({x["model"] for x in rows}), "osD^vP*X"))
    for ax, data in zip(axes.flat, datasets):
        for model, init in sorted({(x["model"], x["init"]) for x in rows if x["dataset"] == data},
                                  key=lambda k: (k[0], regime_order(k[1]))):
            sel = [x for x in rows if (x["dataset"], x["model"], x["init"]) == (data, model, init)]
            ax.errorbar([x["n_train"] for x in sel],
                        [x["test_auc_mean"] if x["test_auc_mean"] is not None else np.nan for x in sel],
                        yerr=[x["test_auc_std"] or 0.0 for x in sel], color=colors[init], marker=markers[model],
                        capsize=2, label=f"{model} · {init}")
        ax.set_xscale("log")
        ax.set_xlabel("training images")
        ax.set_ylabel("test AUC (mean ± std over seeds)")
        ax.set_title(data, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Data efficiency: AUC against training-set size (Raghu et al. 2019, Table 3)", fontsize=10)
    return fig


def _efficiency_summary(rows: list[dict]) -> str:
    """Per model, dataset and regime: AUC at the smallest and at the largest training set."""
    parts = []
    for (model, data, init) in sorted({(x["model"], x["dataset"], x["init"]) for x in rows}):
        sel = sorted((x for x in rows if (x["model"], x["dataset"], x["init"]) == (model, data, init)),
                     key=lambda x: x["n_train"] or 0)
        parts.append(f"{model}/{init} on {data}: {num(sel[0]['test_auc_mean'], '.3f')} at {sel[0]['n_train']} → "
                     f"{num(sel[-1]['test_auc_mean'], '.3f')} at {sel[-1]['n_train']} images")
    return "Test AUC from the smallest to the largest training set: " + "; ".join(parts[:6]) + (
        f"; and {len(parts) - 6} more." if len(parts) > 6 else ".")
