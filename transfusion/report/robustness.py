"""Robustness in the report: the runs' test AUC under each stored corruption × severity (see
:mod:`transfusion.harness.robustness`), the mean corruption AUC and the relative drop from clean
per dataset × model × regime, each regime against random paired by seed, the AUC-against-severity
curves, and the glance line naming the most robust model within the AUC margin of the best.

Statistics: per run, the mean corruption AUC (mCA) is the mean of its AUCs over every stored
corruption × severity, and its relative drop is (clean AUC − mCA) / clean AUC. A regime is
compared with random seed pair by seed pair — on mCA as regime − random, on the drop as
random − regime, so that "better" is the more robust regime in both — by the comparison engine every verdict table
uses (:mod:`transfusion.stats.comparisons`; the same resamples for clean and corrupted scores, so
the replicates of mCA and drop line up across runs): one family per dataset, verdicts within the
report's margin (AUC units for mCA; the same number as a fraction for the drop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transfusion import stats
from transfusion.core.text import num
from transfusion.data.base import TaskSpec
from transfusion.harness.summary import BASELINE

from . import document as D
from .verdict_text import method_text, verdict_cells

CURVE_COLUMNS = ("dataset", "train_size", "model", "init", "corruption", "severity", "modality", "n_seeds",
                 "auc_mean", "auc_sd")
ROBUST_COLUMNS = ("dataset", "train_size", "model", "init", "n_seeds", "modality", "n_conditions", "clean_auc",
                  "mca", "mca_sd", "drop", "drop_sd")
ROBUST_PAIRED_COLUMNS = ("dataset", "train_size", "model", "regime", "measure", "n_seeds", "diff", "ci_low",
                         "ci_high", "level", "eq_low", "eq_high", "eq_level", "family_size", "verdict", "within_margin",
                         "flip", "borderline", "label", "reason")


@dataclass
class RobustnessRows:
    """Rows of the robustness section (see the ``*_COLUMNS`` tuples)."""

    curves: list[dict] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)
    paired: list[dict] = field(default_factory=list)


@dataclass
class _Run:
    seed: int
    clean: float
    mca: float
    drop: float
    clean_reps: np.ndarray | None
    mca_reps: np.ndarray | None


def _replicates(task: TaskSpec, scores: Any, targets: Any, mask: Any, n_boot: int, seed: int) -> np.ndarray | None:
    try:
        reps = stats.bootstrap(task, scores, targets, mask, metric="auc", n_boot=n_boot, seed=seed).replicates
    except stats.UndefinedMetricError:
        return None
    return reps if len(reps) == n_boot else None  # a dropped degenerate resample breaks the alignment


def _run_summary(run: dict, test: dict, rows: list[dict], n_boot: int, seed: int) -> _Run | None:
    aucs = [r["auc"] for r in rows]
    if not rows or any(a is None for a in aucs) or not run.get("test_auc"):
        return None
    task = run["summary"].task
    clean, mca = float(run["test_auc"]), float(np.mean(aucs))
    clean_reps = _replicates(task, test["scores"], test["targets"], test.get("mask"), n_boot, seed)
    reps = [_replicates(task, r["scores"], test["targets"], test.get("mask"), n_boot, seed) for r in rows]
    mca_reps = None if clean_reps is None or any(r is None for r in reps) else np.mean(reps, axis=0)
    return _Run(run["seed"], clean, mca, (clean - mca) / clean, clean_reps, mca_reps)


def robustness_rows(cells: dict[tuple, list[dict]], test: dict[str, dict | None], stored: list[dict], *,
                    margin: float, n_boot: int, level: float = 0.95, seed: int = 0) -> RobustnessRows:
    """The section's rows for ``cells`` ((dataset, size, model, init) → finished runs) from the
    store's robustness rows ``stored`` and the runs' clean ``test`` predictions by run id. Only
    the corruption × severity conditions every run of a dataset has are used, so all rows of a
    dataset average over the same conditions."""
    out = RobustnessRows()
    by_run: dict[str, list[dict]] = {}
    for r in stored:
        by_run.setdefault(r["run_id"], []).append(r)
    per_dataset: dict[tuple[str, str], dict[tuple, list[dict]]] = {}
    for key, runs in cells.items():
        runs = [r for r in runs if r["run_id"] in by_run and test.get(r["run_id"]) is not None]
        if runs:
            per_dataset.setdefault(key[:2], {})[key] = runs
    for dkey, group in per_dataset.items():
        conditions = set.intersection(*({(r["corruption"], r["severity"], r["modality"]) for r in by_run[run["run_id"]]}
                                        for runs in group.values() for run in runs))
        if not conditions:
            continue
        summaries: dict[tuple, list[_Run]] = {}
        for key, runs in group.items():
            for (corr, sev, mod) in sorted(conditions):
                aucs = [next(r["auc"] for r in by_run[run["run_id"]] if (r["corruption"], r["severity"],
                                                                          r["modality"]) == (corr, sev, mod))
                        for run in runs]
                vals = [a for a in aucs if a is not None]
                out.curves.append(dict(zip(("dataset", "train_size", "model", "init"), key), corruption=corr,
                                       severity=sev, modality=mod, n_seeds=len(vals),
                                       auc_mean=float(np.mean(vals)) if vals else None,
                                       auc_sd=float(np.std(vals, ddof=1)) if len(vals) > 1 else None))
            done = []
            for run in runs:
                rows = [r for r in by_run[run["run_id"]] if (r["corruption"], r["severity"], r["modality"]) in conditions]
                s = _run_summary(run, test[run["run_id"]], rows, n_boot, seed)
                if s is not None:
                    done.append(s)
            summaries[key] = done
            if done:
                mca, drop = [s.mca for s in done], [s.drop for s in done]
                out.cells.append(dict(zip(("dataset", "train_size", "model", "init"), key), n_seeds=len(done),
                                      modality=", ".join(sorted({c[2] for c in conditions})),
                                      n_conditions=len(conditions), clean_auc=float(np.mean([s.clean for s in done])),
                                      mca=float(np.mean(mca)), mca_sd=float(np.std(mca, ddof=1)) if len(mca) > 1 else None,
                                      drop=float(np.mean(drop)),
                                      drop_sd=float(np.std(drop, ddof=1)) if len(drop) > 1 else None))
        out.paired += _paired(dkey, summaries, margin=margin, seed=seed)
    return out


def _arm(runs: list[_Run], measure: str) -> stats.Arm:
    """One cell's runs as an arm of the comparison engine on ``measure`` (``mca`` or ``drop``)."""
    runs = sorted(runs, key=lambda s: s.seed)
    reps = None if not runs or any(s.clean_reps is None or s.mca_reps is None for s in runs) else \
        np.stack([_measure_reps(s, measure) for s in runs])
    return stats.Arm(tuple(s.seed for s in runs), np.array([getattr(s, measure) for s in runs]), reps)


def _paired(dkey: tuple[str, str], summaries: dict[tuple, list[_Run]], *, margin: float, seed: int = 0) -> list[dict]:
    """Each regime against random, paired by seed, judged together by the comparison engine: mCA
    (regime − random) and the relative drop (random − regime), so that a positive difference is
    the more robust regime."""
    family, estimates = [], []
    for key, runs in summaries.items():
        model, init = key[2], key[3]
        if init == BASELINE:
            continue
        base = summaries.get((*dkey, model, BASELINE), [])
        for measure in ("mca", "drop"):
            a, b = _arm(runs, measure), _arm(base, measure)
            # drop: random's minus the regime's, so that > 0 (and "better") is the more robust regime
            est, seeds, reason = stats.paired_estimate(a, b) if measure == "mca" else stats.paired_estimate(b, a)
            row = dict(dataset=dkey[0], train_size=dkey[1], model=model, regime=init, measure=measure,
                       n_seeds=len(seeds), diff=None if est is None else est.mean, ci_low=None, ci_high=None,
                       family_size=None,
                       level=None, eq_low=None, eq_high=None, eq_level=None, verdict="n/a", within_margin=None,
                       flip=None, borderline=None, label="n/a",
                       reason=(f"no seed with both a {init} and a {BASELINE} run" if not seeds else reason))
            family.append(row)
            estimates.append(est)
    for row, j in zip(family, stats.judge_family(estimates, margin, seed=seed)):
        if j is not None:
            row.update(ci_low=j.ci_low, ci_high=j.ci_high, level=j.level, eq_low=j.eq_low, eq_high=j.eq_high,
                       eq_level=j.eq_level, verdict=j.verdict, within_margin=j.within_margin, flip=j.flip,
                       borderline=j.borderline, label=j.label, reason=j.reason, family_size=j.family_size)
    return family


def _measure_reps(s: _Run, measure: str) -> np.ndarray:
    return s.mca_reps if measure == "mca" else (s.clean_reps - s.mca_reps) / s.clean_reps  # type: ignore[operator]


def most_robust(rows: list[dict], margin: float) -> dict | None:
    """The row with the smallest relative drop among those whose clean AUC is within ``margin``
    of the best clean AUC."""
    if not rows:
        return None
    best = max(r["clean_auc"] for r in rows)
    return min((r for r in rows if r["clean_auc"] >= best - margin), key=lambda r: r["drop"])


def robustness_section(rows: RobustnessRows, key: tuple[str, str], title: str, figure: Path, *, margin: float,
                       n_boot: int, cells_csv: Path, curves_csv: Path, paired_csv: Path) -> D.Section | None:
    """The "Robustness" section of one dataset, or ``None`` when nothing was scored under corruption."""
    from .plots import severity_plot

    cells = [r for r in rows.cells if (r["dataset"], r["train_size"]) == key]
    if not cells:
        return None
    curves = [r for r in rows.curves if (r["dataset"], r["train_size"]) == key]
    corruptions = list(dict.fromkeys(r["corruption"] for r in curves))
    severities = sorted({r["severity"] for r in curves})
    sec = D.Section("Robustness", level=3)
    sec.blocks.append(D.Para(
        f"Each run's best checkpoint scores its test split again under {len(corruptions)} corruption(s) × "
        f"severities {', '.join(map(str, severities))} (MedMNIST-C's parameters for {cells[0]['modality']} images; "
        "no retraining). mCA: the mean AUC over those conditions; drop: (clean AUC − mCA) / clean AUC. "
        "Means over seeds (SD seed to seed); per corruption the AUC averaged over its severities."))
    cols = ["model", "regime", "seeds", "clean AUC", "mCA", "mCA SD", "drop", *corruptions]
    table = []
    for r in cells:
        per = {c: [x["auc_mean"] for x in curves if (x["model"], x["init"], x["corruption"]) == (r["model"], r["init"], c)
                   and x["auc_mean"] is not None] for c in corruptions}
        table.append([r["model"], r["init"], str(r["n_seeds"]), num(r["clean_auc"]), num(r["mca"]), num(r["mca_sd"]),
                      num(r["drop"] * 100, ".1f") + "%", *(num(np.mean(v)) if v else "—" for v in per.values())])
    sec.blocks.append(D.Table(cols, table, numeric=frozenset(cols[2:]), csv=cells_csv))
    best = most_robust(cells, margin)
    if best:
        sec.blocks.append(D.Para(f"{best['model']} · {best['init']} (drop {best['drop'] * 100:.1f}%, mCA "
                                 f"{num(best['mca'])}) among the rows within {margin * 100:g} AUC points of the best "
                                 "clean AUC.", lead="Most robust:"))
    series = {}
    for r in curves:
        series.setdefault((r["model"], r["init"]), {}).setdefault(r["corruption"], []).append(
            (r["severity"], r["auc_mean"]))
    clean = {(r["model"], r["init"]): r["clean_auc"] for r in cells}
    png = severity_plot(series, clean, figure, title=f"{title}: test AUC against corruption severity")
    sec.blocks.append(D.Figure(png, "Test AUC (mean over seeds) against severity, one panel per corruption, one line per "
                                    "model · regime; severity 0 is the clean test split.", csv=curves_csv))
    paired = [r for r in rows.paired if (r["dataset"], r["train_size"]) == key]
    if paired:
        k = max((r["family_size"] or 0) for r in paired)
        sec.blocks.append(D.Para(
            "Paired by seed: mCA as regime − random (AUC points), the drop as random's − the regime's (percentage "
            "points of clean AUC), so a positive difference and 'better' mean the regime is the more robust. "
            + method_text(k, margin, n_boot, units="points"), lead="Each regime against random."))
        pcols = ["model", "regime", "measure", "seeds", "difference", "interval", "equivalence interval", "verdict",
                 "note"]
        sec.blocks.append(D.Table(pcols, [[r["model"], r["regime"],
                                           "mCA" if r["measure"] == "mca" else "drop (random − regime)",
                                           str(r["n_seeds"]), *verdict_cells(r), r["reason"]] for r in paired],
                                  numeric=frozenset(pcols[3:5]), csv=paired_csv))
    return sec
