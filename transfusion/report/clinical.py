"""Calibration and operating points in the report: rows per dataset × model × regime computed
from the runs' stored validation and test predictions (no training), the section that shows
them with a reliability diagram per dataset, and the glance line naming the best-calibrated
model within the AUC margin of the best.

Per cell (the seeds of one dataset × model × regime):
- ECE, Brier, NLL: the mean over seeds; the interval is the percentile bootstrap over test images
  with the same resamples for every seed (the seeds share the test split), so it covers the
  test-sample noise of the mean; ``*_sd`` is the seed-to-seed SD.
- After temperature scaling: each seed's scores rescaled by its own temperature (fitted on its
  validation scores), then the same measures; ``temperature`` is the mean over seeds.
- Operating points: per seed a threshold on validation for each target, read on test; the
  rates pool the seeds' confusion counts (Wilson intervals on the pooled counts) and
  ``threshold`` is the mean over seeds (``threshold_min``/``max`` their range).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transfusion.core.text import interval, num
from transfusion.stats.calibration import (
    MEASURES,
    apply_temperature,
    calibration_replicates,
    fit_temperature,
    intervals,
    reliability_curve,
)
from transfusion.stats.operating import operating_points, wilson

from . import document as D

CALIBRATION_COLUMNS = ("dataset", "train_size", "model", "init", "n_seeds", "auc_mean",
                       *(f"{m}{s}" for m in MEASURES for s in ("", "_low", "_high", "_sd")),
                       "temperature", *(f"{m}_scaled{s}" for m in MEASURES for s in ("", "_low", "_high")),
                       "n_bins", "n_seeds_val")
OPERATING_COLUMNS = ("dataset", "train_size", "model", "init", "label", "target", "level", "n_seeds",
                     "threshold", "threshold_min", "threshold_max",
                     *(f"{r}{s}" for r in ("sensitivity", "specificity", "ppv", "npv") for s in ("", "_low", "_high")),
                     "tp", "fp", "tn", "fn")


@dataclass
class ClinicalRows:
    """The rows of the section and, per cell, the reliability curve of the seeds' pooled test
    scores (mean predicted probability, observed frequency)."""

    calibration: list[dict] = field(default_factory=list)
    operating: list[dict] = field(default_factory=list)
    reliability: dict[tuple[str, str, str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _pooled_column(task: Any, preds: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """One (p, y) column from the seeds' test predictions for the reliability diagram: P(positive)
    for binary, every known label entry for multilabel, top-label confidence for multiclass."""
    ps, ys = [], []
    for p in preds:
        s, t = np.asarray(p["scores"], np.float64), np.asarray(p["targets"])
        if task.kind == "binary":
            ps.append(s.reshape(-1))
            ys.append(t.reshape(-1).astype(np.float64))
        elif task.kind == "multiclass":
            ps.append(s.max(axis=1))
            ys.append((s.argmax(axis=1) == t.astype(np.int64)).astype(np.float64))
        else:
            m = p.get("mask")
            keep = np.ones_like(s, bool) if m is None or not np.size(m) else np.asarray(m, bool)
            ps.append(s[keep])
            ys.append(t[keep].astype(np.float64))
    return np.concatenate(ps), np.concatenate(ys)


def _calibration_row(key: tuple, runs: list[dict], test: list[dict], val: list[dict | None], *, n_bins: int,
                     n_boot: int, level: float, seed: int) -> dict:
    task = runs[0]["summary"].task
    points, reps, scaled_points, scaled_reps, temps = [], [], [], [], []
    for t, v in zip(test, val):
        pt, rp = calibration_replicates(task, t["scores"], t["targets"], t.get("mask"), n_bins=n_bins,
                                        n_boot=n_boot, seed=seed)
        points.append(pt)
        reps.append(rp)
        if v is not None and len(v["scores"]):
            temp = fit_temperature(task, v["scores"], v["targets"], v.get("mask"))
            temps.append(temp)
            pt, rp = calibration_replicates(task, apply_temperature(task, t["scores"], temp), t["targets"],
                                            t.get("mask"), n_bins=n_bins, n_boot=n_boot, seed=seed)
            scaled_points.append(pt)
            scaled_reps.append(rp)
    same_n = len({len(t["targets"]) for t in test}) == 1  # aligned resamples need the same test rows
    raw = intervals(np.mean(points, axis=0), np.mean(reps, axis=0) if same_n else np.empty((0, 3)), level)
    sd = np.std(points, axis=0, ddof=1) if len(points) > 1 else [None] * 3
    row = dict(zip(("dataset", "train_size", "model", "init"), key), n_seeds=len(runs),
               auc_mean=float(np.mean([r["test_auc"] for r in runs])), n_bins=n_bins, n_seeds_val=len(temps),
               temperature=float(np.mean(temps)) if temps else None)
    for j, m in enumerate(MEASURES):
        row.update({m: raw[m].value, f"{m}_low": raw[m].low, f"{m}_high": raw[m].high,
                    f"{m}_sd": None if sd[j] is None else float(sd[j])})
    if scaled_points and len(scaled_points) == len(points):
        scaled = intervals(np.mean(scaled_points, axis=0),
                           np.mean(scaled_reps, axis=0) if same_n else np.empty((0, 3)), level)
        for m in MEASURES:
            row.update({f"{m}_scaled": scaled[m].value, f"{m}_scaled_low": scaled[m].low,
                        f"{m}_scaled_high": scaled[m].high})
    return row


def _operating_rows(key: tuple, runs: list[dict], test: list[dict], val: list[dict | None], *, sensitivity: float,
                    specificity: float, level: float) -> list[dict]:
    task = runs[0]["summary"].task
    per: dict[tuple[str, str], list] = {}
    for t, v in zip(test, val):
        if v is None:
            continue
        for p in operating_points(task, v, t, sensitivity=sensitivity, specificity=specificity, level=level):
            per.setdefault((p.label, p.target), []).append(p)
    rows = []
    for (label, target), pts in per.items():
        counts = {k: sum(p.test[k] for p in pts) for k in ("tp", "fp", "tn", "fn")}
        tp, fp, tn, fn = (counts[k] for k in ("tp", "fp", "tn", "fn"))
        thr = [p.threshold for p in pts]
        row = dict(zip(("dataset", "train_size", "model", "init"), key), label=label, target=target,
                   level=pts[0].level, n_seeds=len(pts), threshold=float(np.mean(thr)), threshold_min=min(thr),
                   threshold_max=max(thr), **counts)
        for name, (k, n) in (("sensitivity", (tp, tp + fn)), ("specificity", (tn, tn + fp)), ("ppv", (tp, tp + fp)),
                             ("npv", (tn, tn + fn))):
            v, lo, hi = wilson(k, n, level)
            row.update({name: v, f"{name}_low": lo, f"{name}_high": hi})
        rows.append(row)
    return rows


def clinical_rows(cells: dict[tuple, list[dict]], test: dict[str, dict | None], val: dict[str, dict | None], *,
                  sensitivity: float, specificity: float, n_bins: int, n_boot: int, level: float = 0.95,
                  seed: int = 0) -> ClinicalRows:
    """The section's rows for ``cells`` ((dataset, size, model, init) → finished runs), from the
    runs' ``test`` and ``val`` predictions by run id (``val`` may lack older runs)."""
    out = ClinicalRows()
    for key, runs in cells.items():
        runs = [r for r in runs if test.get(r["run_id"]) is not None]
        if not runs:
            continue
        t = [test[r["run_id"]] for r in runs]
        v = [val.get(r["run_id"]) for r in runs]
        out.calibration.append(_calibration_row(key, runs, t, v, n_bins=n_bins, n_boot=n_boot, level=level,
                                                seed=seed))
        out.operating += _operating_rows(key, runs, t, v, sensitivity=sensitivity, specificity=specificity,
                                         level=level)
        out.reliability[key] = reliability_curve(*_pooled_column(runs[0]["summary"].task, t), n_bins)
    return out


def best_calibrated(rows: list[dict], margin: float) -> dict | None:
    """The row with the lowest ECE among those whose mean AUC is within ``margin`` of the best."""
    ok = [r for r in rows if r["auc_mean"] is not None and r["ece"] is not None]
    if not ok:
        return None
    best = max(r["auc_mean"] for r in ok)
    return min((r for r in ok if r["auc_mean"] >= best - margin), key=lambda r: r["ece"])


def _triple(r: dict, key: str, spec: str = ".3f") -> str:
    lo, hi = r.get(f"{key}_low"), r.get(f"{key}_high")
    return num(r.get(key), spec) + ("" if lo is None else f" [{interval(lo, hi, spec)}]")


def clinical_section(rows: ClinicalRows, key: tuple[str, str], title: str, figure: Path, *, margin: float,
                     calibration_csv: Path, operating_csv: Path) -> D.Section:
    """The "Calibration and operating points" section of one dataset (``key`` = (dataset, size))."""
    from .plots import reliability_plot

    sec = D.Section("Calibration and operating points", level=3)
    cal = [r for r in rows.calibration if (r["dataset"], r["train_size"]) == key]
    if not cal:
        sec.blocks.append(D.Para("No finished run with stored test predictions."))
        return sec
    n_bins = cal[0]["n_bins"]
    sec.blocks.append(D.Para(
        f"Expected calibration error (ECE, {n_bins} equal-mass bins), Brier score and negative log-likelihood of the "
        "test scores: mean over seeds with a 95% bootstrap interval over test images (SD: seed to seed); lower is "
        "better. Then the same after temperature scaling (one temperature per run, fitted on its validation split; "
        "T > 1 means the raw scores were over-confident). Scaling changes no ranking, so no AUC."))
    cols = ["model", "regime", "seeds", "AUC", "ECE", "ECE SD", "Brier", "NLL", "T", "ECE scaled", "Brier scaled",
            "NLL scaled"]
    sec.blocks.append(D.Table(cols, [[r["model"], r["init"], str(r["n_seeds"]), num(r["auc_mean"]), _triple(r, "ece"),
                                      num(r["ece_sd"]), _triple(r, "brier"), _triple(r, "nll"),
                                      num(r["temperature"], ".2f"), _triple(r, "ece_scaled"), num(r.get("brier_scaled")),
                                      num(r.get("nll_scaled"))] for r in cal],
                              numeric=frozenset(cols[2:]), csv=calibration_csv))
    best = best_calibrated(cal, margin)
    if best:
        sec.blocks.append(D.Para(f"{best['model']} · {best['init']} (ECE {num(best['ece'])}, AUC "
                                 f"{num(best['auc_mean'])}) among the rows within {margin * 100:g} AUC points of "
                                 "the best AUC.", lead="Best calibrated:"))
    curves = {k[2:]: v for k, v in rows.reliability.items() if k[:2] == key}
    png = reliability_plot(curves, figure, title=f"{title}: reliability (test scores pooled over seeds)")
    sec.blocks.append(D.Figure(png, "Reliability diagram per model: observed frequency of the positive class against "
                                    f"the mean predicted probability in each of {n_bins} equal-mass bins, one line per "
                                    "regime (multiclass: top-label confidence against accuracy); the diagonal is "
                                    "perfect calibration, points below it over-confidence.", csv=calibration_csv))
    ops = [r for r in rows.operating if (r["dataset"], r["train_size"]) == key]
    if not ops:
        sec.blocks.append(D.Para("Operating points: none (a multiclass task has no single positive class, and runs "
                                 "stored before validation scores were kept have none)."))
        return sec
    sec.blocks.append(D.Para(
        "Thresholds chosen on each run's validation split for the target sensitivity or specificity, then read on "
        "the test split (a score ≥ threshold is positive). Rates pool the seeds' test counts; 95% Wilson intervals; "
        "threshold: mean over seeds [min–max].", lead="Operating points."))
    ocols = ["model", "regime", "label", "target", "threshold", "sensitivity", "specificity", "PPV", "NPV"]
    sec.blocks.append(D.Table(ocols, [[r["model"], r["init"], r["label"], f"{r['target']} ≥ {r['level']:g}",
                                       f"{num(r['threshold'])} [{num(r['threshold_min'])}–{num(r['threshold_max'])}]",
                                       _triple(r, "sensitivity"), _triple(r, "specificity"), _triple(r, "ppv"),
                                       _triple(r, "npv")] for r in ops],
                              numeric=frozenset(ocols[4:]), csv=operating_csv))
    return sec
