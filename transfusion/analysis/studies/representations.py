"""Representation studies: transfer vs random, each model vs its initialisation, kNN probes.

All three reproduce Raghu, Zhang, Kleinberg & Bengio, "Transfusion" (NeurIPS 2019): §4
("transfer and random learn different representations": SVCCA per layer of pretrained-init
against random-init models after training, with a random-vs-random baseline) and §5 ("feature
reuse is concentrated in the lowest layers", "larger models change less": SVCCA of each
trained model with its own initialisation). The kNN probe measures feature reuse by probing,
as later work did. Activations come from :class:`~transfusion.analysis.studies.context.StudyContext`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from transfusion.analysis.studies.context import (
    StudyAbsent,
    StudyContext,
    data_labels,
    figure,
    fmt,
    grid_shape,
    knn_probe_scores,
    regime_colors,
    regime_order,
    save_figure,
    stage_similarities,
    write_csv,
)
from transfusion.data import TaskSpec
from transfusion.stats import evaluate

SIM_COLUMNS = [
    "model", "dataset", "train_size", "comparison", "init_a", "init_b", "seed_a", "seed_b", "run_a", "run_b",
    "stage", "stage_index", "method", "similarity", "cka", "n_datapoints", "features_a", "features_b",
    "dims_a", "dims_b", "note",
]


def _group_panels(rows: list[dict]) -> tuple[Any, Any, list[tuple[tuple, list[dict]]]]:
    """Rows grouped by (model, dataset, train size), sorted, and a figure with one panel each."""
    by_group: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        by_group[(row["model"], row["dataset"], row["train_size"])].append(row)
    nr, nc = grid_shape(len(by_group))
    fig, axes = figure(nr, nc)
    for ax in list(axes.flat)[len(by_group):]:
        ax.set_axis_off()  # panels beyond the last group stay blank
    return fig, axes, sorted(by_group.items())


def _group_key(r: dict) -> tuple[str, str, str]:
    return (r["model"], r["dataset"], str(r["train_size"]))


def _mean_by_stage(rows: list[dict], col: str = "similarity") -> tuple[list[str], np.ndarray]:
    """Stages in order and the mean of ``col`` over rows per stage (NaN where none is defined)."""
    stages: dict[str, int] = {}
    vals: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        stages.setdefault(r["stage"], r["stage_index"])
        if r[col] is not None:
            vals[r["stage"]].append(r[col])
    names = sorted(stages, key=stages.get)
    return names, np.array([np.mean(vals[s]) if vals[s] else np.nan for s in names])


def _ends(rows: list[dict], col: str = "similarity") -> tuple[float, float]:
    """Mean of ``col`` at each model's lowest and at its highest stage before the head."""
    top: dict[str, int] = {}
    for r in rows:
        if r["stage"] != "head":
            top[r["model"]] = max(top.get(r["model"], 0), r["stage_index"])
    lo = [r[col] for r in rows if r["stage_index"] == 0 and r[col] is not None]
    hi = [r[col] for r in rows if r["stage"] != "head" and r["stage_index"] == top.get(r["model"])
          and r[col] is not None]
    return (float(np.mean(lo)) if lo else float("nan"), float(np.mean(hi)) if hi else float("nan"))


# ------------------------------------------------------------------------ transfer-vs-random


def transfer_vs_random(ctx: StudyContext, out_dir: Path, *, method: str = "svcca") -> tuple[Path, Path, str]:
    """Per-stage similarity of each trained regime to the trained random-init model (same model,
    dataset, seed and training-set size), and random vs random (two seeds) as the baseline band."""
    groups: dict[tuple, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in ctx.runs:
        groups[_group_key(r)][r["init"]][r["seed"]] = r
    pairs: list[tuple[str, dict, dict]] = []
    for inits in groups.values():
        randoms = inits.get("random", {})
        if not randoms or not inits.get("transfer"):
            continue
        if not set(randoms) & set(inits["transfer"]):
            continue
        for init in sorted(inits, key=regime_order):
            if init == "random":
                continue
            for seed, run in sorted(inits[init].items()):
                if seed in randoms:
                    pairs.append((f"{init} vs random", run, randoms[seed]))
        seeds = sorted(randoms)
        for i, sa in enumerate(seeds):
            for sb in seeds[i + 1:]:
                pairs.append(("random vs random", randoms[sa], randoms[sb]))
    if not any(c == "transfer vs random" for c, _, _ in pairs):
        raise StudyAbsent(
            "study 'transfer-vs-random' needs runs with init random and transfer for the same model and "
            f"dataset (and seed); found only: {ctx.found()}"
        )
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
        for s in sims:
            rows.append({"model": ra["model"], "dataset": labels[ra["dataset"]], "train_size": str(ra["train_size"]),
                         "comparison": comparison, "init_a": ra["init"], "init_b": rb["init"],
                         "seed_a": ra["seed"], "seed_b": rb["seed"], "run_a": ra["run_id"], "run_b": rb["run_id"],
                         "method": method, **s})
    if not any(r["comparison"] == "transfer vs random" for r in rows):
        raise StudyAbsent("study 'transfer-vs-random' could not load the checkpoints of any transfer/random "
                          f"pair: {'; '.join(skipped)}")
    csv = write_csv(rows, SIM_COLUMNS, out_dir / "transfer-vs-random.csv")

    fig, axes, groups = _group_panels(rows)
    colors = regime_colors(r["init_a"] for r in rows if r["comparison"] != "random vs random")
    for ax, (g, grows) in zip(axes.flat, groups):
        base = [r for r in grows if r["comparison"] == "random vs random"]
        if base:
            per_pair: dict[tuple, list[dict]] = defaultdict(list)
            for r in base:
                per_pair[(r["run_a"], r["run_b"])].append(r)
            curves = [_mean_by_stage(v)[1] for v in per_pair.values()]
            names, _ = _mean_by_stage(base)
            lo, hi = np.nanmin(curves, 0), np.nanmax(curves, 0)
            x = np.arange(len(names))
            ax.fill_between(x, lo - 0.005, hi + 0.005, color="0.8", label=f"random vs random ({len(curves)} pair"
                            f"{'s' if len(curves) > 1 else ''}, min–max)")
            ax.plot(x, np.nanmean(curves, 0), color="0.4", ls="--", lw=1)
        for init in sorted({r["init_a"] for r in grows if r["comparison"] != "random vs random"}, key=regime_order):
            sel = [r for r in grows if r["init_a"] == init and r["comparison"] != "random vs random"]
            names, mean = _mean_by_stage(sel)
            ax.plot(np.arange(len(names)), mean, marker="o", color=colors[init], label=f"{init} vs random",
                    lw=2.2 if init == "transfer" else 1.4)
        names, _ = _mean_by_stage(grows)
        ax.set_xticks(np.arange(len(names)), names, rotation=30)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("stage")
        ax.set_ylabel(f"{method.upper()} vs random-init model")
        ax.set_title(f"{g[0]} · {g[1]} · train {g[2]}", fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Transfer vs random after training, per stage (Raghu et al. 2019, §4)", fontsize=10)
    png = save_figure(fig, out_dir / "transfer-vs-random.png")

    tr = [r for r in rows if r["comparison"] == "transfer vs random"]
    parts = []
    for model in sorted({r["model"] for r in tr}):
        lo, hi = _ends([r for r in tr if r["model"] == model])
        parts.append(f"{model} {fmt(lo)} (lowest stage) → {fmt(hi)} (highest)")
    text = f"Transfer vs random {method.upper()} after training: " + "; ".join(parts)
    base = [r for r in rows if r["comparison"] == "random vs random"]
    if base:
        # gap per (model, dataset, size, stage): transfer-vs-random minus the random-vs-random mean
        ref: dict[tuple, list[float]] = defaultdict(list)
        for r in base:
            if r["similarity"] is not None:
                ref[(r["model"], r["dataset"], r["train_size"], r["stage"])].append(r["similarity"])
        gaps = [r["similarity"] - float(np.mean(ref[k])) for r in tr
                if r["stage"] != "head" and r["similarity"] is not None
                and (k := (r["model"], r["dataset"], r["train_size"], r["stage"])) in ref]
        gap = float(np.mean(gaps)) if gaps else float("nan")
        verdict = "below" if gap < -0.02 else "above" if gap > 0.02 else "within"
        text += (f". Against random vs random (two seeds) transfer is {verdict} the seed-to-seed baseline "
                 f"(mean gap over body stages {fmt(gap, '+.2f')}).")
    else:
        text += ". The random-vs-random band is absent (the store has one random seed per model and dataset)."
    if skipped:
        text += f" {len(skipped)} pair(s) skipped: {skipped[0]}"
    return csv, png, text


# ------------------------------------------------------------------------------- vs-init

VS_INIT_COLUMNS = [
    "model", "dataset", "train_size", "init", "seed", "run_id", "params", "stage", "stage_index", "method",
    "similarity", "cka", "n_datapoints", "features_a", "features_b", "dims_a", "dims_b", "note",
]


def vs_init(ctx: StudyContext, out_dir: Path, *, method: str = "svcca") -> tuple[Path, Path, str]:
    """Per-stage similarity of every trained model with its own initialisation."""
    if not ctx.runs:
        raise StudyAbsent(f"study 'vs-init' needs finished training runs; found only: {ctx.found()}")
    labels = data_labels(r["dataset"] for r in ctx.runs)
    rows, skipped = [], []
    for r in ctx.runs:
        try:
            a = ctx.activations(r, "trained")
            b = ctx.activations(r, "init")
        except (FileNotFoundError, ValueError) as exc:
            skipped.append(f"{r['run_id']} ({r['init']}): {exc}")
            continue
        params = r["summary"].params if r.get("summary") else None
        sims = stage_similarities(a.pooled, b.pooled, method=method, max_points=ctx.max_points, strict=False,
                                  cache=ctx.pca_cache)
        for s in sims:
            rows.append({"model": r["model"], "dataset": labels[r["dataset"]], "train_size": str(r["train_size"]),
                         "init": r["init"], "seed": r["seed"], "run_id": r["run_id"], "params": params,
                         "method": method, **s})
    if not rows:
        raise StudyAbsent(f"study 'vs-init' could not rebuild any run's initialisation: {'; '.join(skipped)}")
    csv = write_csv(rows, VS_INIT_COLUMNS, out_dir / "vs-init.csv")

    fig, axes, groups = _group_panels(rows)
    colors = regime_colors(row["init"] for row in rows)
    for ax, (g, grows) in zip(axes.flat, groups):
        for init in sorted({x["init"] for x in grows}, key=regime_order):
            names, mean = _mean_by_stage([x for x in grows if x["init"] == init])
            ax.plot(np.arange(len(names)), mean, marker="o", color=colors[init], label=init)
        names, _ = _mean_by_stage(grows)
        ax.set_xticks(np.arange(len(names)), names, rotation=30)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("stage")
        ax.set_ylabel(f"{method.upper()}, trained vs own init")
        ax.set_title(f"{g[0]} · {g[1]} · train {g[2]}", fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Each model against its own initialisation (Raghu et al. 2019, §5)", fontsize=10)
    png = save_figure(fig, out_dir / "vs-init.png")

    # lowest vs highest body stage, per regime; body-stage mean per model, ordered by size
    parts = []
    for init in sorted({x["init"] for x in rows}, key=regime_order):
        lo, hi = _ends([x for x in rows if x["init"] == init])
        parts.append(f"{init} {fmt(lo)}→{fmt(hi)}")
    text = f"{method.upper()} to own init, lowest→highest stage: " + ", ".join(parts) + "."
    sizes = {}
    for x in rows:
        if x["stage"] != "head" and x["similarity"] is not None:
            sizes.setdefault(x["model"], [x["params"] or 0, []])[1].append(x["similarity"])
    if len(sizes) > 1:
        order = sorted(sizes, key=lambda m: sizes[m][0])
        means = [float(np.mean(sizes[m][1])) for m in order]
        holds = all(b >= a for a, b in zip(means, means[1:]))
        text += (" By size (params): " + ", ".join(f"{m} {fmt(v)}" for m, v in zip(order, means))
                 + (" — larger models change less." if holds else " — not monotone in size here."))
    if skipped:
        text += f" {len(skipped)} run(s) skipped: {skipped[0]}"
    return csv, png, text


# ----------------------------------------------------------------------------- knn-probe

KNN_COLUMNS = [
    "model", "dataset", "train_size", "init", "seed", "run_id", "checkpoint", "stage", "stage_index", "features",
    "k", "n_fit", "n_test", "knn_auc", "knn_acc", "note",
]


def knn_probe(ctx: StudyContext, out_dir: Path, *, k: int = 20, knn_init: bool = False) -> tuple[Path, Path, str]:
    """Layer-wise k-NN probe: AUC of a kNN classifier on each stage's globally pooled features.

    Fitted on the context's fit set (training images), scored on the probe set (test images)
    by the task's rule (:func:`~transfusion.stats.evaluate`; multilabel: macro AUC
    over labels, uncertain labels ignored). ``knn_init`` also probes each run's rebuilt
    initialisation (feature reuse before fine-tuning; one more forward pass per run).
    """
    checkpoints = ("trained", "init") if knn_init else ("trained",)
    if not ctx.runs:
        raise StudyAbsent(f"study 'knn-probe' needs finished training runs; found only: {ctx.found()}")
    labels = data_labels(r["dataset"] for r in ctx.runs)
    rows, skipped = [], []
    for r in ctx.runs:
        ds = ctx.dataset(r["dataset"])
        fit, probe = ctx.fit_set(r["dataset"]), ctx.probe(r["dataset"])
        for which in checkpoints:
            try:
                test_feats = ctx.activations(r, which).mean
                fit_feats = ctx.fit_features(r, which)
            except (FileNotFoundError, ValueError) as exc:
                skipped.append(f"{r['run_id']} ({r['init']}, {which}): {exc}")
                continue
            for i, stage in enumerate(test_feats):
                row: dict[str, Any] = {
                    "model": r["model"], "dataset": labels[r["dataset"]], "train_size": str(r["train_size"]),
                    "init": r["init"], "seed": r["seed"], "run_id": r["run_id"], "checkpoint": which,
                    "stage": stage, "stage_index": i, "features": test_feats[stage].shape[1],
                    "k": min(k, len(fit)), "n_fit": len(fit), "n_test": len(probe), "knn_auc": None, "knn_acc": None,
                    "note": "",
                }
                ev = _knn_eval(ds.task, fit_feats[stage].numpy(), fit, test_feats[stage].numpy(), probe, k)
                row["knn_auc"], row["knn_acc"] = ev["auc"], ev["acc"]
                row["note"] = ev.get("auc_reason") or ""
                rows.append(row)
    if not rows:
        raise StudyAbsent(f"study 'knn-probe' could not load any checkpoint: {'; '.join(skipped)}")
    csv = write_csv(rows, KNN_COLUMNS, out_dir / "knn-probe.csv")

    fig, axes, groups = _group_panels(rows)
    colors = regime_colors(row["init"] for row in rows)
    for ax, (g, grows) in zip(axes.flat, groups):
        for init in sorted({x["init"] for x in grows}, key=regime_order):
            for which, ls in (("trained", "-"), ("init", ":")):
                sel = [x for x in grows if x["init"] == init and x["checkpoint"] == which]
                if sel:
                    names, mean = _mean_by_stage(sel, "knn_auc")
                    ax.plot(np.arange(len(names)), mean, ls=ls, marker="o" if which == "trained" else ".",
                            color=colors[init], label=f"{init} ({which})")
        names, _ = _mean_by_stage(grows, "knn_auc")
        ax.set_xticks(np.arange(len(names)), names, rotation=30)
        ax.axhline(0.5, color="0.7", lw=0.8)
        ax.set_xlabel("stage")
        ax.set_ylabel(f"kNN probe AUC (k={rows[0]['k']})")
        ax.set_title(f"{g[0]} · {g[1]} · train {g[2]}", fontsize=9)
        ax.legend(fontsize=6, loc="best")
    fig.suptitle("Layer-wise kNN probe on pooled stage features (test probe set)", fontsize=10)
    png = save_figure(fig, out_dir / "knn-probe.png")

    parts = []
    for init in sorted({x["init"] for x in rows}, key=regime_order):
        tr = [x for x in rows if x["init"] == init and x["checkpoint"] == "trained" and x["stage"] != "head"]
        if tr:
            names, mean = _mean_by_stage(tr, "knn_auc")
            best = int(np.nanargmax(mean)) if not np.all(np.isnan(mean)) else 0
            parts.append(f"{init} best at {names[best]} ({fmt(mean[best])})")
    text = "Trained kNN-probe AUC, best stage per regime: " + ", ".join(parts) + "."
    init_rows = [x for x in rows if x["checkpoint"] == "init" and x["stage"] != "head" and x["knn_auc"] is not None]
    if init_rows:
        by = {i: float(np.mean([x["knn_auc"] for x in init_rows if x["init"] == i]))
              for i in {x["init"] for x in init_rows}}
        top = max(by, key=by.get)
        text += f" Before training the most probe-able features are {top}'s (mean {fmt(by[top])} over stages)."
    if skipped:
        text += f" {len(skipped)} checkpoint(s) skipped: {skipped[0]}"
    return csv, png, text


def _knn_eval(task: TaskSpec, fit_x: np.ndarray, fit, test_x: np.ndarray, probe, k: int) -> dict[str, Any]:
    scores = knn_probe_scores(fit_x, fit.targets, fit.mask, test_x, task, k=k)
    return evaluate(task, scores, probe.targets, probe.mask)
