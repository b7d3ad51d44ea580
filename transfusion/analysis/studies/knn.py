"""The layer-wise kNN-probe study: how much of the task each stage's pooled features solve
without training a head — feature reuse measured by probing, as later work on Raghu et al.,
"Transfusion" (NeurIPS 2019) did; optionally also at initialisation, before fine-tuning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from transfusion.analysis.probe import knn_probe_scores
from transfusion.analysis.studies.aggregate import mean_by_stage
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
from transfusion.data import ArraySplit, TaskSpec
from transfusion.stats import evaluate

__all__ = ["KNN_COLUMNS", "knn_probe"]

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
    if not ctx.runs:
        raise StudyAbsent(f"study 'knn-probe' needs finished training runs; found only: {ctx.found()}")
    rows, skipped = _probe_rows(ctx, ("trained", "init") if knn_init else ("trained",), k)
    if not rows:
        raise StudyAbsent(f"study 'knn-probe' could not load any checkpoint: {'; '.join(skipped)}")
    csv = write_csv(out_dir / "knn-probe.csv", KNN_COLUMNS, rows)
    png = save_figure(_probe_figure(rows), out_dir / "knn-probe.png")
    return csv, png, _probe_summary(rows, skipped)


def _probe_rows(ctx: StudyContext, checkpoints: tuple[str, ...], k: int) -> tuple[list[dict], list[str]]:
    """One row per run × checkpoint × stage, and a note per checkpoint that could not be loaded."""
    labels = data_labels(r["dataset"] for r in ctx.runs)
    rows, skipped = [], []
    for r in ctx.runs:
        task = ctx.dataset(r["dataset"]).task
        fit, probe = ctx.fit_set(r["dataset"]), ctx.probe(r["dataset"])
        for which in checkpoints:
            try:
                test_feats = ctx.activations(r, which).mean
                fit_feats = ctx.fit_features(r, which)
            except (FileNotFoundError, ValueError) as exc:
                skipped.append(f"{r['run_id']} ({r['init']}, {which}): {exc}")
                continue
            head = {"model": r["model"], "dataset": labels[r["dataset"]], "train_size": str(r["train_size"]),
                    "init": r["init"], "seed": r["seed"], "run_id": r["run_id"], "checkpoint": which,
                    "k": min(k, len(fit)), "n_fit": len(fit), "n_test": len(probe)}
            for i, stage in enumerate(test_feats):
                ev = _knn_eval(task, fit_feats[stage].numpy(), fit, test_feats[stage].numpy(), probe, k)
                rows.append({**head, "stage": stage, "stage_index": i, "features": test_feats[stage].shape[1],
                             "knn_auc": ev["auc"], "knn_acc": ev["acc"], "note": ev.get("auc_reason") or ""})
    return rows, skipped


def _knn_eval(task: TaskSpec, fit_x: np.ndarray, fit: ArraySplit, test_x: np.ndarray, probe: ArraySplit,
              k: int) -> dict[str, Any]:
    """:func:`~transfusion.stats.evaluate` of the kNN probe fitted on ``fit_x`` (n, C), scored on ``test_x`` (m, C)."""
    scores = knn_probe_scores(fit_x, fit.targets, fit.mask, test_x, task, k=k)
    return evaluate(task, scores, probe.targets, probe.mask)


def _probe_figure(rows: list[dict]) -> Any:
    """One panel per group: probe AUC per stage, trained (solid) and at init (dotted), per regime."""
    fig, axes, groups = group_panels(rows)
    colors = regime_colors(row["init"] for row in rows)
    for ax, (g, grows) in zip(axes.flat, groups):
        for init in sorted({x["init"] for x in grows}, key=regime_order):
            for which, ls in (("trained", "-"), ("init", ":")):
                sel = [x for x in grows if x["init"] == init and x["checkpoint"] == which]
                if sel:
                    names, mean = mean_by_stage(sel, "knn_auc")
                    ax.plot(np.arange(len(names)), mean, ls=ls, marker="o" if which == "trained" else ".",
                            color=colors[init], label=f"{init} ({which})")
        ax.axhline(0.5, color="0.7", lw=0.8)
        stage_panel(ax, mean_by_stage(grows, "knn_auc")[0], g, f"kNN probe AUC (k={rows[0]['k']})", ylim=None,
                    legend={"fontsize": 6, "loc": "best"})
    fig.suptitle("Layer-wise kNN probe on pooled stage features (test probe set)", fontsize=10)
    return fig


def _probe_summary(rows: list[dict], skipped: list[str]) -> str:
    """The best body stage per regime after training, and the most probe-able regime at init."""
    parts = []
    for init in sorted({x["init"] for x in rows}, key=regime_order):
        tr = [x for x in rows if x["init"] == init and x["checkpoint"] == "trained" and x["stage"] != "head"]
        if tr:
            names, mean = mean_by_stage(tr, "knn_auc")
            best = int(np.nanargmax(mean)) if not np.all(np.isnan(mean)) else 0
            parts.append(f"{init} best at {names[best]} ({num(mean[best], '.2f')})")
    text = "Trained kNN-probe AUC, best stage per regime: " + ", ".join(parts) + "."
    init_rows = [x for x in rows if x["checkpoint"] == "init" and x["stage"] != "head" and x["knn_auc"] is not None]
    if init_rows:
        by = {i: float(np.mean([x["knn_auc"] for x in init_rows if x["init"] == i]))
              for i in {x["init"] for x in init_rows}}
        top = max(by, key=by.get)
        text += f" Before training the most probe-able features are {top}'s (mean {num(by[top], '.2f')} over stages)."
    if skipped:
        text += f" {len(skipped)} checkpoint(s) skipped: {skipped[0]}"
    return text
