"""Training-outcome studies read from the store alone: convergence, the transfusion curve and
data efficiency (no checkpoint is loaded).

They reproduce Raghu, Zhang, Kleinberg & Bengio, "Transfusion" (NeurIPS 2019): convergence
speed per init regime (§6, transfer and Mean-Var converge faster), the weight-transfusion
curve — final AUC and steps to a target AUC against the number K of pretrained stages (§6) —
and AUC against training-set size (Table 3, the very-small-data regime).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from transfusion.analysis.studies.context import (
    StudyAbsent,
    StudyContext,
    data_labels,
    figure,
    fmt,
    grid_shape,
    regime_colors,
    regime_order,
    save_figure,
    write_csv,
)
from transfusion.stats import steps_to_target


def _mean(vals: list) -> float | None:
    v = [x for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def _std(vals: list) -> float | None:
    v = [x for x in vals if x is not None]
    return float(np.std(v, ddof=1)) if len(v) > 1 else (0.0 if v else None)


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
    """
    curves = {r["run_id"]: ctx.store.curve(r["run_id"]) for r in ctx.runs}
    have = [r for r in ctx.runs if any(c["val_auc"] is not None for c in curves[r["run_id"]])]
    if not have:
        raise StudyAbsent(f"study 'convergence' needs finished training runs with validation curves; "
                          f"found only: {ctx.found()}")
    labels = data_labels(r["dataset"] for r in have)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in have:
        groups[(r["model"], labels[r["dataset"]], str(r["train_size"]))].append(r)
    curve_rows, rows = [], []
    for (model, data, size), runs in sorted(groups.items()):
        best_any = max(c["val_auc"] for r in runs for c in curves[r["run_id"]] if c["val_auc"] is not None)
        per_init: dict[str, list[dict]] = defaultdict(list)
        for r in runs:
            cv = curves[r["run_id"]]
            for c in cv:
                curve_rows.append({"model": model, "dataset": data, "train_size": size, "init": r["init"],
                                   "seed": r["seed"], "run_id": r["run_id"], **c})
            tgt = target_auc if target_auc is not None else (
                (r["summary"].target_auc if r.get("summary") else None) or round(0.95 * best_any, 4))
            steps = steps_to_target([c["step"] for c in cv], [c["val_auc"] for c in cv], tgt)
            vals = [c["val_auc"] for c in cv if c["val_auc"] is not None]
            per_init[r["init"]].append({"target": tgt, "steps": steps, "final": vals[-1] if vals else None,
                                        "best": max(vals) if vals else None, "test": r["test_auc"]})
        group_rows = []
        for init, xs in per_init.items():
            reached = [x["steps"] for x in xs if x["steps"] is not None]
            group_rows.append({"model": model, "dataset": data, "train_size": size, "init": init, "n_seeds": len(xs),
                               "target_auc": _mean([x["target"] for x in xs]),
                               "steps_to_target_mean": _mean(reached) if len(reached) == len(xs) else None,
                               "n_reached": len(reached), "final_val_auc_mean": _mean([x["final"] for x in xs]),
                               "best_val_auc_mean": _mean([x["best"] for x in xs]),
                               "test_auc_mean": _mean([x["test"] for x in xs])})
        group_rows.sort(key=lambda x: (x["steps_to_target_mean"] is None, x["steps_to_target_mean"] or 0,
                                       -(x["final_val_auc_mean"] or 0)))
        for i, x in enumerate(group_rows):
            x["rank"] = i + 1
        rows.extend(group_rows)
    csv = write_csv(rows, CONVERGENCE_COLUMNS, out_dir / "convergence.csv")
    write_csv(curve_rows, CURVE_COLUMNS, out_dir / "convergence_curves.csv")

    keys = sorted(groups)
    nr, nc = grid_shape(len(keys))
    fig, axes = figure(nr, nc)
    colors = regime_colors(r["init"] for r in have)
    for ax, key in zip(axes.flat, keys):
        target = next((x["target_auc"] for x in rows if (x["model"], x["dataset"], x["train_size"]) == key), None)
        for init in sorted({r["init"] for r in groups[key]}, key=regime_order):
            first = True
            for r in groups[key]:
                if r["init"] != init:
                    continue
                cv = [c for c in curves[r["run_id"]] if c["val_auc"] is not None]
                ax.plot([c["step"] for c in cv], [c["val_auc"] for c in cv], color=colors[init], marker=".",
                        label=init if first else None, alpha=0.9)
                first = False
        if target is not None:
            ax.axhline(target, color="0.5", ls="--", lw=0.8, label=f"target {target:.3g}")
        ax.set_xlabel("training step")
        ax.set_ylabel("validation AUC")
        ax.set_title(f"{key[0]} · {key[1]} · train {key[2]}", fontsize=9)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_axis_off()
    fig.suptitle("Convergence per init regime (Raghu et al. 2019, §6)", fontsize=10)
    png = save_figure(fig, out_dir / "convergence.png")

    # overall ranking: mean rank of each regime over groups
    ranks: dict[str, list[int]] = defaultdict(list)
    for x in rows:
        ranks[x["init"]].append(x["rank"])
    order = sorted(ranks, key=lambda i: (np.mean(ranks[i]), regime_order(i)))
    text = ("Convergence ranking (mean rank over " + f"{len(keys)} model/dataset group(s), fewest steps to target "
            "first): " + ", ".join(f"{i} ({np.mean(ranks[i]):.1f})" for i in order) + ".")
    never = sorted({x["init"] for x in rows if x["n_reached"] == 0})
    if never:
        text += f" Never reached the target in some group: {', '.join(never)}."
    return csv, png, text


# ---------------------------------------------------------------------- transfusion-curve

TRANSFUSION_COLUMNS = [
    "model", "dataset", "train_size", "K", "n_stages", "init", "n_seeds", "test_auc_mean", "test_auc_std",
    "steps_to_target_mean", "n_reached",
]


def _k_of(init: str, n_body: int) -> int | None:
    if init == "random":
        return 0
    if init == "transfer":
        return n_body
    name, _, k = init.partition(":")
    return int(k) if name == "transfusion" and k.isdigit() else None


def _n_body_stages(model: str) -> int:
    from transfusion.models import create_model, stages

    return len(stages(create_model(model, num_classes=2))) - 1


def transfusion_curve(ctx: StudyContext, out_dir: Path) -> tuple[Path, Path, str]:
    """Final test AUC and steps to target against K, the number of pretrained stages
    (random = K 0, transfusion:K, transfer = every body stage), per model and dataset."""
    sweep = {(r["model"], r["dataset"], str(r["train_size"])) for r in ctx.runs if r["init"].startswith("transfusion:")}
    if not sweep:
        raise StudyAbsent("study 'transfusion-curve' needs runs with init transfusion:K (a transfusion sweep) "
                          f"for a model and dataset; found only: {ctx.found()}")
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
                     "init": init, "n_seeds": len(runs), "test_auc_mean": _mean([r["test_auc"] for r in runs]),
                     "test_auc_std": _std([r["test_auc"] for r in runs]),
                     "steps_to_target_mean": _mean(steps) if all(s is not None for s in steps) else None,
                     "n_reached": sum(s is not None for s in steps)})
    csv = write_csv(rows, TRANSFUSION_COLUMNS, out_dir / "transfusion-curve.csv")

    fig, axes = figure(1, 2, width=5.0, height=3.6)
    lines = sorted({(x["model"], x["dataset"], x["train_size"]) for x in rows})
    for key in lines:
        sel = sorted((x for x in rows if (x["model"], x["dataset"], x["train_size"]) == key), key=lambda x: x["K"])
        ks = [x["K"] for x in sel]
        label = f"{key[0]} · {key[1]}" + ("" if key[2] == "all" else f" · {key[2]}")
        auc = [x["test_auc_mean"] if x["test_auc_mean"] is not None else np.nan for x in sel]
        err = [x["test_auc_std"] or 0.0 for x in sel]
        axes[0, 0].errorbar(ks, auc, yerr=err, marker="o", capsize=2, label=label)
        st = [x["steps_to_target_mean"] if x["steps_to_target_mean"] is not None else np.nan for x in sel]
        axes[0, 1].plot(ks, st, marker="o", label=label)
    axes[0, 0].set_ylabel("test AUC (mean ± std over seeds)")
    axes[0, 1].set_ylabel("steps to target AUC (gap: not reached)")
    for ax in axes.flat:
        ax.set_xlabel("K = pretrained stages (0 = random, all = transfer)")
        ax.legend(fontsize=7)
    fig.suptitle("Weight transfusion: reusing the first K stages (Raghu et al. 2019, §6)", fontsize=10)
    png = save_figure(fig, out_dir / "transfusion-curve.png")

    parts = []
    for key in lines:
        sel = [x for x in rows if (x["model"], x["dataset"], x["train_size"]) == key and x["test_auc_mean"] is not None]
        if not sel:
            continue
        best = max(sel, key=lambda x: x["test_auc_mean"])
        lo = min(sel, key=lambda x: x["K"])
        parts.append(f"{key[0]} on {key[1]}: best AUC {fmt(best['test_auc_mean'], '.3f')} at K={best['K']} "
                     f"(K={lo['K']}: {fmt(lo['test_auc_mean'], '.3f')})")
    text = "; ".join(parts) + "." if parts else "No run of the sweep has a test AUC."
    return csv, png, text


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
    labels = data_labels(r["dataset"] for r in ctx.runs)
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for r in ctx.runs:
        if len(sizes[(r["model"], r["dataset"], r["init"])]) >= 2:
            cells[(r["model"], labels[r["dataset"]], r["init"], str(r["train_size"]))].append(r)
    rows = []
    for (model, data, init, size), runs in cells.items():
        n_train = _mean([r["summary"].n_train if r.get("summary") else None for r in runs])
        rows.append({"model": model, "dataset": data, "init": init, "train_size": size,
                     "n_train": int(n_train) if n_train is not None else None, "n_seeds": len(runs),
                     "test_auc_mean": _mean([r["test_auc"] for r in runs]),
                     "test_auc_std": _std([r["test_auc"] for r in runs])})
    rows.sort(key=lambda x: (x["dataset"], x["model"], regime_order(x["init"]), x["n_train"] or 0))
    csv = write_csv(rows, EFFICIENCY_COLUMNS, out_dir / "data-efficiency.csv")

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
    png = save_figure(fig, out_dir / "data-efficiency.png")

    parts = []
    for (model, data, init) in sorted({(x["model"], x["dataset"], x["init"]) for x in rows}):
        sel = sorted((x for x in rows if (x["model"], x["dataset"], x["init"]) == (model, data, init)),
                     key=lambda x: x["n_train"] or 0)
        parts.append(f"{model}/{init} on {data}: {fmt(sel[0]['test_auc_mean'], '.3f')} at {sel[0]['n_train']} → "
                     f"{fmt(sel[-1]['test_auc_mean'], '.3f')} at {sel[-1]['n_train']} images")
    text = "Test AUC from the smallest to the largest training set: " + "; ".join(parts[:6]) + (
        f"; and {len(parts) - 6} more." if len(parts) > 6 else ".")
    return csv, png, text
