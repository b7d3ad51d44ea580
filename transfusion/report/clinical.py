"""Calibration and operating points in the report: rows per dataset × model × regime computed
from the runs' stored validation and test predictions (no training), the section that shows
them with a reliability diagram per dataset, and the glance line on the best-calibrated model
within the AUC margin of the best.

Per cell (the seeds of one dataset × model × regime), every interval comes from
:func:`~transfusion.stats.seeds.seed_estimate`: per seed the measure and its bootstrap replicates
over the test images, aligned across seeds and cells (the same resampled rows for every run of a
dataset), so an interval counts the seed-to-seed variation and the test sample the seeds share —
and contains its estimate. Never a percentile interval of a biased statistic.

- CE (:mod:`transfusion.stats.calibration`): the debiased root-mean-square calibration error
  ``sqrt(max(0, mean CE²))`` (probability units) with its interval computed on CE², cut at 0,
  square-rooted; ``ce_floor`` the CE a perfectly calibrated model with these scores stays under
  95% of the time at this test size (consistency resampling, the seeds drawing with the same
  uniforms); ``ce_sd`` the seed-to-seed SD of CE. Brier and NLL likewise (intervals cut at 0).
  ``ece``: the plug-in ECE (biased upward), mean over seeds, no interval.
- After temperature scaling: each seed's scores rescaled by its own temperature (fitted on its
  validation scores), then the same measures; ``temperature`` is the mean over seeds.
- Operating points (:mod:`transfusion.stats.operating`): per seed a threshold on validation for
  each target, shown with one-sided ``confidence`` (skipped with a reason when the validation
  split has too few cases); the seeds' test rates at their own thresholds, their mean with an
  interval cut to [0, 1]; ``threshold`` the mean over seeds (``threshold_min``/``max`` their
  range); ``tp``… the seeds' test counts summed (for reference only: the seeds share the images).
- "Best calibrated": among the rows within the AUC margin of the best AUC, the lowest CE, named
  best only when its CE² is below every other such row's — unpaired differences
  (:func:`~transfusion.stats.seeds.difference`) at ``1 − α/(K − 1)`` each (Bonferroni over the
  K − 1 comparisons, α = 0.05).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transfusion.core.text import interval, num
from transfusion.stats.calibration import (
    COLUMNS,
    apply_temperature,
    calibration_replicates,
    ce_from_ce2,
    consistency_ce2,
    fit_temperature,
    noise_floor,
    reliability_curve,
    summarize,
)
from transfusion.stats.comparisons import ALPHA
from transfusion.stats.operating import (
    DEFAULT_CONFIDENCE,
    RATES,
    choose_thresholds,
    columns,
    rate_replicates,
)
from transfusion.stats.seeds import difference, same_targets, seed_estimate

from . import document as D

_CE = COLUMNS.index("ce2")
_MEASURES = ("ce", "brier", "nll")  # the measures with intervals, in the table's order
CALIBRATION_COLUMNS = ("dataset", "train_size", "model", "init", "n_seeds", "auc_mean",
                       *(f"{m}{s}" for m in _MEASURES for s in ("", "_low", "_high", "_sd")), "ce_floor", "ce2",
                       "ece", "temperature", *(f"{m}_scaled{s}" for m in _MEASURES for s in ("", "_low", "_high")),
                       "ce_scaled_floor", "ece_scaled", "n_bins", "n_seeds_val", "level")
OPERATING_COLUMNS = ("dataset", "train_size", "model", "init", "label", "target", "level", "confidence", "n_seeds",
                     "threshold", "threshold_min", "threshold_max",
                     *(f"{r}{s}" for r in RATES for s in ("", "_low", "_high")), "tp", "fp", "tn", "fn", "reason")


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


def _aligned(test: Sequence[dict]) -> bool:
    """Whether the seeds were scored on the same test rows (their replicates then line up)."""
    return same_targets([{"targets": np.asarray(t["targets"]), "mask": t.get("mask")} for t in test])


def _measured(task: Any, test: list[dict], scores: list[np.ndarray], *, n_bins: int, n_boot: int, seed: int,
              level: float) -> dict:
    """Row fields of one set of per-seed ``scores`` on the seeds' ``test`` targets: CE, Brier, NLL
    with intervals (:func:`~transfusion.stats.calibration.summarize`) and seed SDs, the CE floor,
    the mean CE², the plug-in ECE, and ``_ce2`` = (per-seed CE² (S,), replicates (S, B) or None)
    for the best-calibrated comparison."""
    pts, reps, draws = [], [], []
    for t, s in zip(test, scores):
        pt, rp = calibration_replicates(task, s, t["targets"], t.get("mask"), n_bins=n_bins, n_boot=n_boot, seed=seed)
        pts.append(pt)
        reps.append(rp)
        draws.append(consistency_ce2(task, s, t.get("mask"), n_bins=n_bins, seed=seed))
    p = np.array(pts)
    r = np.array(reps) if _aligned(test) and n_boot >= 2 else None
    est = summarize(p, r, level)
    ce_seed = [ce_from_ce2(v) for v in p[:, _CE]]
    out: dict[str, Any] = {"ece": est["ece"].value, "ce2": float(p[:, _CE].mean()),
                           "ce_floor": noise_floor(np.array(draws)) if _aligned(test) else None,
                           "_ce2": (p[:, _CE], None if r is None else r[:, :, _CE])}
    for m in _MEASURES:
        values = ce_seed if m == "ce" else p[:, COLUMNS.index(m)]
        out.update({m: est[m].value, f"{m}_low": est[m].low, f"{m}_high": est[m].high,
                    f"{m}_sd": float(np.std(values, ddof=1)) if len(values) > 1 else None})
    return out


def _calibration_row(key: tuple, runs: list[dict], test: list[dict], val: list[dict | None], *, n_bins: int,
                     n_boot: int, level: float, seed: int) -> dict:
    task = runs[0]["summary"].task
    row = dict(zip(("dataset", "train_size", "model", "init"), key), n_seeds=len(runs),
               auc_mean=float(np.mean([r["test_auc"] for r in runs])), n_bins=n_bins, level=level)
    row.update(_measured(task, test, [np.asarray(t["scores"], np.float64) for t in test], n_bins=n_bins,
                         n_boot=n_boot, seed=seed, level=level))
    temps = [fit_temperature(task, v["scores"], v["targets"], v.get("mask")) for v in val
             if v is not None and len(v["scores"])]
    row.update(n_seeds_val=len(temps), temperature=float(np.mean(temps)) if temps else None)
    if temps and len(temps) == len(test):  # every seed scaled: the same cell, after temperature scaling
        scaled = _measured(task, test, [apply_temperature(task, t["scores"], T) for t, T in zip(test, temps)],
                           n_bins=n_bins, n_boot=n_boot, seed=seed, level=level)
        row.update({f"{m}_scaled{s}": scaled[f"{m}{s}"] for m in _MEASURES for s in ("", "_low", "_high")})
        row.update(ce_scaled_floor=scaled["ce_floor"], ece_scaled=scaled["ece"])
    return row


def _rate_fields(points: np.ndarray, reps: np.ndarray | None, level: float) -> dict:
    """``{rate, rate_low, rate_high}`` per :data:`RATES` from per-seed rates (S, 4) and aligned
    replicates (S, B, 4): mean over seeds with a :func:`seed_estimate` interval cut to [0, 1]
    (resamples leaving a rate undefined for any seed are dropped); ``None`` where a seed's rate
    is undefined (e.g. PPV with nothing called positive)."""
    out: dict[str, Any] = {}
    for j, name in enumerate(RATES):
        x = points[:, j]
        lo = hi = None
        if not np.all(np.isfinite(x)):
            out.update({name: None, f"{name}_low": None, f"{name}_high": None})
            continue
        if reps is not None:
            r = reps[:, :, j][:, np.all(np.isfinite(reps[:, :, j]), axis=0)]
            if r.shape[1] >= 2:
                lo, hi = seed_estimate(x, r).interval(level, (0.0, 1.0))
        out.update({name: float(x.mean()), f"{name}_low": lo, f"{name}_high": hi})
    return out


def _operating_row(base: dict, label: str, target: str, want: float, found: list[tuple[float, dict, tuple]],
                   reasons: list[str], n_val: int, *, level: float, n_boot: int, seed: int) -> dict:
    """One operating row from ``found`` = (threshold, test prediction, test column) per seed that
    reached the target, ``reasons`` of the seeds that did not (of ``n_val`` seeds with validation)."""
    row = dict(base, label=label, target=target, level=want, n_seeds=len(found),
               reason="" if not reasons else (reasons[0] if not found else f"{len(reasons)} of {n_val} seeds: "
                                                                              f"{reasons[0]}"))
    if not found:
        return row
    pts, reps, counts = [], [], np.zeros(4, np.int64)
    for thr, _, (s, y, known) in found:
        pt, rp = rate_replicates(s, y, known, thr, n_boot=n_boot, seed=seed)
        pts.append(pt)
        reps.append(rp)
        call, pos = s >= thr, y.astype(bool)
        counts += [np.sum(call & pos & known), np.sum(call & ~pos & known), np.sum(~call & ~pos & known),
                   np.sum(~call & pos & known)]
    aligned = _aligned([t for _, t, _ in found]) and n_boot >= 2
    thr = [f[0] for f in found]
    row.update(threshold=float(np.mean(thr)), threshold_min=min(thr), threshold_max=max(thr),
               **dict(zip(("tp", "fp", "tn", "fn"), (int(c) for c in counts))),
               **_rate_fields(np.array(pts), np.array(reps) if aligned else None, level))
    return row


def _operating_rows(key: tuple, runs: list[dict], test: list[dict], val: list[dict | None], *, sensitivity: float,
                    specificity: float, confidence: float, level: float, n_boot: int, seed: int) -> list[dict]:
    task = runs[0]["summary"].task
    found: dict[tuple[str, str, float], list] = {}
    reasons: dict[tuple[str, str, float], list[str]] = {}
    n_val = 0
    for t, v in zip(test, val):
        if v is None or not len(v["scores"]):
            continue
        n_val += 1
        cols = {c[0]: c[1:] for c in columns(task, t["scores"], t["targets"], t.get("mask"))}
        for ch in choose_thresholds(task, v, sensitivity=sensitivity, specificity=specificity, confidence=confidence):
            k = (ch.label, ch.target, ch.level)
            found.setdefault(k, [])
            reasons.setdefault(k, [])
            if ch.threshold is None:
                reasons[k].append(ch.reason)
            else:
                found[k].append((ch.threshold, t, cols[ch.label]))
    base = dict(zip(("dataset", "train_size", "model", "init"), key), confidence=confidence)
    return [_operating_row(base, *k, found[k], reasons[k], n_val, level=level, n_boot=n_boot, seed=seed)
            for k in found]


def clinical_rows(cells: dict[tuple, list[dict]], test: dict[str, dict | None], val: dict[str, dict | None], *,
                  sensitivity: float, specificity: float, n_bins: int, n_boot: int, level: float = 0.95,
                  seed: int = 0, confidence: float = DEFAULT_CONFIDENCE) -> ClinicalRows:
    """The section's rows for ``cells`` ((dataset, size, model, init) → finished runs), from the
    runs' ``test`` and ``val`` predictions by run id (``val`` may lack older runs). Intervals at
    ``level`` from ``n_boot`` test-image resamples drawn with ``seed`` (the same for every run);
    thresholds at one-sided ``confidence``."""
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
                                         confidence=confidence, level=level, n_boot=n_boot, seed=seed)
        out.reliability[key] = reliability_curve(*_pooled_column(runs[0]["summary"].task, t), n_bins)
    return out


# ------------------------------------------------------------------ best calibrated

@dataclass(frozen=True)
class CalibrationPick:
    """The glance's answer for one dataset. ``lowest``: the row with the lowest CE among the
    ``n_eligible`` rows within the AUC margin of the best; ``best``: that row when its CE² is
    below every other eligible row's (each difference interval at ``level`` = 1 − α/(K − 1) below
    0), else ``None``; ``tied``: the eligible rows it cannot be separated from."""

    lowest: dict
    best: dict | None
    tied: tuple[dict, ...]
    n_eligible: int
    level: float | None


def _separated(a: dict, b: dict, level: float) -> bool:
    """Whether row ``a``'s CE² is below row ``b``'s: the unpaired difference interval lies below 0."""
    (xa, ra), (xb, rb) = a.get("_ce2", (None, None)), b.get("_ce2", (None, None))
    if ra is None or rb is None or np.shape(ra)[1] != np.shape(rb)[1]:
        return False
    return difference((xa, ra), (xb, rb)).interval(level)[1] < 0


def best_calibrated(rows: list[dict], margin: float) -> CalibrationPick | None:
    """Among ``rows`` whose mean AUC is within ``margin`` (AUC units) of the best, the lowest CE,
    named best only where the data say so (module docstring); ``None`` without such rows."""
    ok = [r for r in rows if r.get("auc_mean") is not None and r.get("ce") is not None and r.get("ce2") is not None]
    if not ok:
        return None
    top = max(r["auc_mean"] for r in ok)
    eligible = [r for r in ok if r["auc_mean"] >= top - margin]
    lowest = min(eligible, key=lambda r: r["ce2"])
    others = [r for r in eligible if r is not lowest]
    if not others:
        return CalibrationPick(lowest, lowest, (), 1, None)
    level = 1.0 - ALPHA / len(others)
    tied = tuple(r for r in others if not _separated(lowest, r, level))
    return CalibrationPick(lowest, None if tied else lowest, tied, len(eligible), level)


def _ce_text(r: dict) -> str:
    return f"CE {_triple(r, 'ce')} (floor {num(r.get('ce_floor'))})"


def calibration_glance(pick: CalibrationPick) -> str:
    """One line for the glance: the best-calibrated row, or that none calibrates measurably better."""
    low = pick.lowest
    scaled = f", {num(low['ce_scaled'])} after temperature scaling" if low.get("ce_scaled") is not None else ""
    desc = f"{low['model']} · {low['init']} — {_ce_text(low)}{scaled}, AUC {num(low['auc_mean'])}"
    if pick.best is not None and pick.n_eligible == 1:
        return f"{desc} (the only row within the margin)"
    if pick.best is not None:
        return (f"{desc}; its CE² is below each of the other {pick.n_eligible - 1} rows within the margin "
                f"({pick.level:.4g} intervals, Bonferroni)")
    tied = ", ".join(f"{r['model']} · {r['init']} (CE {num(r['ce'])})" for r in pick.tied)
    return f"no regime calibrates measurably better: lowest {desc}; not separable from {tied}"


# ------------------------------------------------------------------ section

def _triple(r: dict, key: str, spec: str = ".3f") -> str:
    lo, hi = r.get(f"{key}_low"), r.get(f"{key}_high")
    return num(r.get(key), spec) + ("" if lo is None else f" [{interval(lo, hi, spec)}]")


def _calibration_blocks(cal: list[dict], margin: float, calibration_csv: Path) -> list:
    n_bins = cal[0]["n_bins"]
    text = (f"Calibration error CE — root-mean-square, debiased (Kumar, Liang & Ma 2019; {n_bins} equal-mass bins; "
            "each bin's binomial noise subtracted, so a perfectly calibrated model scores 0 on average) — Brier score "
            "and negative log-likelihood (nats) of the test scores: mean over seeds with a 95% interval that counts "
            "both the seed-to-seed variation and the test sample (bootstrap over test images, the same resamples for "
            "every seed; CE's interval is computed on CE², cut at 0, then square-rooted); SD: seed to seed; lower is "
            "better. Floor: the CE a perfectly calibrated model with these scores stays under 95% of the time at this "
            "test size (outcomes redrawn from the scores themselves): a CE under its floor is indistinguishable from "
            "perfect calibration. Then the same after temperature scaling (one temperature per run, fitted on its "
            "validation split; T > 1 means the raw scores were over-confident). Scaling changes no ranking, so no AUC. "
            "The plug-in ECE (biased upward at these test sizes: no interval) is in the CSV.")
    cols = ["model", "regime", "seeds", "AUC", "CE", "floor", "CE SD", "Brier", "NLL", "T", "CE scaled",
            "Brier scaled", "NLL scaled"]
    table = [[r["model"], r["init"], str(r["n_seeds"]), num(r["auc_mean"]), _triple(r, "ce"), num(r.get("ce_floor")),
              num(r["ce_sd"]), _triple(r, "brier"), _triple(r, "nll"), num(r["temperature"], ".2f"),
              _triple(r, "ce_scaled"), num(r.get("brier_scaled")), num(r.get("nll_scaled"))] for r in cal]
    blocks: list = [D.Para(text), D.Table(cols, table, numeric=frozenset(cols[2:]), csv=calibration_csv)]
    pick = best_calibrated(cal, margin)
    if pick:
        blocks.append(D.Para(f"{calibration_glance(pick)} — among the rows within {margin * 100:g} AUC points of the "
                             "best AUC; named best only when its CE² is below every other such row's (unpaired "
                             "seed + test-image intervals, Bonferroni at α = 0.05).", lead="Best calibrated:"))
    return blocks


def _operating_blocks(ops: list[dict], operating_csv: Path) -> list:
    conf = ops[0]["confidence"]
    text = (f"Thresholds chosen on each run's validation split so that the target holds with {conf:.0%} one-sided "
            "confidence: the highest threshold whose Clopper–Pearson lower bound of validation sensitivity is ≥ the "
            "target (for specificity the lowest such threshold), which needs enough validation cases — e.g. 29 "
            "positives for sensitivity ≥ 0.9 at 95% — and is skipped otherwise. Then read on the test split (a score "
            "≥ threshold is positive): each rate is the mean over seeds of the rate at each seed's own threshold, "
            "with a 95% interval that counts the seeds and a bootstrap of the test images; threshold: mean over "
            "seeds [min–max].")
    cols = ["model", "regime", "label", "target", "threshold", "sensitivity", "specificity", "PPV", "NPV"]
    table = []
    for r in ops:
        head = [r["model"], r["init"], r["label"], f"{r['target']} ≥ {r['level']:g}"]
        if r.get("threshold") is None:
            table.append([*head, f"skipped: {r['reason']}", "—", "—", "—", "—"])
            continue
        table.append([*head, f"{num(r['threshold'])} [{num(r['threshold_min'])}–{num(r['threshold_max'])}]",
                      *(_triple(r, k) for k in RATES)])
    return [D.Para(text, lead="Operating points."), D.Table(cols, table, numeric=frozenset(cols[5:]),
                                                              csv=operating_csv)]


def clinical_section(rows: ClinicalRows, key: tuple[str, str], title: str, figure: Path, *, margin: float,
                     calibration_csv: Path, operating_csv: Path) -> D.Section:
    """The "Calibration and operating points" section of one dataset (``key`` = (dataset, size))."""
    from .plots import reliability_plot

    sec = D.Section("Calibration and operating points", level=3)
    cal = [r for r in rows.calibration if (r["dataset"], r["train_size"]) == key]
    if not cal:
        sec.blocks.append(D.Para("No finished run with stored test predictions."))
        return sec
    sec.blocks += _calibration_blocks(cal, margin, calibration_csv)
    n_bins = cal[0]["n_bins"]
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
    sec.blocks += _operating_blocks(ops, operating_csv)
    return sec
