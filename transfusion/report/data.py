"""Everything a report shows, computed from a results store as plain rows (nothing is written).

Statistics (AUC units throughout; the text prints AUC points, 0.005 = 0.5 points):

* **Summary rows** — :func:`transfusion.harness.summary.summary_table`: AUC over seeds, its
  spread and a 95% interval beside the cost profile.
* **Regime − random** — one comparison per dataset × train size × model × regime, over the seeds
  both the regime and ``random`` ran (paired by seed, scored on the same test images), judged by
  the comparison engine (:mod:`transfusion.stats.comparisons`): the mean per-seed AUC difference
  with ``Var = s²/n + c̄`` (``c̄`` the test variance the seeds share), each comparison on its own
  seeds (no pooling), the comparisons of one dataset × train size a family judged together
  (Bonferroni, TOST-consistent: better/worse at ``1 − α/K``, within ±margin at ``1 − 2α/K``), dual
  verdicts (``better (within ±m)``) and a borderline mark where a faithful rerun would reach
  another verdict with probability ≥ 10% (:data:`transfusion.stats.BORDERLINE`). A comparison with fewer than
  :data:`transfusion.stats.MIN_SEEDS` seed pairs is ``unjudged``. Per-seed differences with their
  test-image intervals are listed too (``paired_seeds.csv``), without verdicts.
* **Pareto front / recommendation** — per dataset and train size, over the rows' mean AUC and
  each cost measure: :func:`.pareto.pareto_front` and :func:`.pareto.cheapest_within` with
  ``delta``; a row whose membership turns on a gap within two standard errors of ``delta``
  (:func:`.pareto.front_borderline`; gap SEs from the cells' seed variances and the paired test
  bootstrap) is marked ``borderline``; rows the recommendation could fall on within that noise
  are marked ``alternative`` (:func:`.pareto.recommendation_alternatives`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transfusion import stats
from transfusion.harness.store import Store, store_file
from transfusion.harness.suite import CostOptions, ReportOptions, SuiteError, parse_suite, tomllib
from transfusion.harness.summary import BASELINE, cell_key, load_predictions, ordered, summary_table
from transfusion.stats.seeds import ReplicateCache
from transfusion.transfer import parse_regime, regime_of

from .clinical import ClinicalRows, clinical_rows
from .costs import COST_MEASURES
from .efficiency import crossover_rows
from .paper import paper_table
from .pareto import (
    cheapest_within,
    front_borderline,
    pareto_front,
    recommendation_alternatives,
    recommendation_stability,
)
from .robustness import RobustnessRows, robustness_rows

#: a pretrained source whose own test AUC is below this is flagged as weak (near chance, 0.5)
WEAK_SOURCE_AUC = 0.6

PAIRED_COLUMNS = (
    "dataset", "train_size", "model", "regime", "baseline", "n_seeds", "seeds", "n_test", "auc_regime",
    "auc_baseline", "diff", "diff_sd", "diff_min", "diff_max", "se_test", "se_shared", "se", "df", "level", "ci_low",
    "ci_high", "eq_level", "eq_low", "eq_high", "margin", "family_size", "verdict", "within_margin", "flip",
    "borderline", "label", "reason", "note",
)
SEED_COLUMNS = ("dataset", "train_size", "model", "regime", "seed", "auc_regime", "auc_baseline", "diff",
                "ci_low", "ci_high")
PARETO_COLUMNS = (
    "dataset", "train_size", "cost_measure", "model", "init", "cost", "auc_mean", "auc_se", "on_front",
    "borderline", "recommended", "alternative", "delta", "stability",
)
#: simulated reruns behind each recommendation's stability
RERUNS = 2000
PAPER_COLUMNS = ("paper", "model", "init", "paper_auc_pct", "ours_auc_pct", "ours_std_pct", "diff_pct",
                 "n_seeds", "dataset", "note")
SOURCE_COLUMNS = ("source", "model", "origin", "dataset", "steps", "test_auc", "test_acc", "status",
                  "used_by", "seeds", "weak", "quality")
FAILED_COLUMNS = ("run_id", "kind", "status", "model", "dataset", "init", "seed", "train_size", "error")


@dataclass(frozen=True)
class SuiteInfo:
    """The suite a report is about, as stored: name, TOML hash and text, report options."""

    name: str | None
    digest: str | None
    toml: str | None
    created_at: float | None
    description: str = ""
    report: ReportOptions = field(default_factory=ReportOptions)
    cost: CostOptions | None = None
    note: str = ""


def suite_info(store: Store, suite_name: str | None = None) -> SuiteInfo:
    """The latest stored suite called ``suite_name`` (or the latest of any name), with its
    ``[report]`` options. Raises ``ValueError`` if ``suite_name`` is not in the store."""
    suites = store.suites()
    chosen = suites if suite_name is None else [s for s in suites if s["name"] == suite_name]
    if suite_name is not None and not chosen:
        names = ", ".join(sorted({s["name"] for s in suites})) or "none"
        raise ValueError(f"the store {store.path} holds no suite named {suite_name!r} (it holds: {names})")
    if not chosen:
        return SuiteInfo(None, None, None, None, note="the store records no suite; report defaults apply")
    s = chosen[-1]
    try:
        suite = parse_suite(s["toml"], origin=f"suite {s['name']} (as stored)", data_root="{data_root}")
        report, cost, desc, note = suite.report, suite.cost, suite.description, ""
    except (SuiteError, ValueError) as exc:  # e.g. an unset ${VAR}: read [report] directly
        doc = tomllib.loads(s["toml"])
        known = {k: v for k, v in doc.get("report", {}).items() if k in ReportOptions.__dataclass_fields__}
        report, cost, desc = ReportOptions(**known), None, str(doc.get("description", ""))
        note = f"the stored suite does not parse today ({exc}); its [report] table was read directly"
    return SuiteInfo(name=s["name"], digest=s["hash"], toml=s["toml"], created_at=s["created_at"], description=desc,
                     report=report, cost=cost, note=note)


@dataclass
class ReportData:
    """Everything the report shows, as plain rows (see the ``*_COLUMNS`` tuples)."""

    store_path: Path
    suite: SuiteInfo
    margin: float
    delta: float
    n_boot: int
    level: float
    summary: list[dict]
    paired: list[dict]
    pareto: list[dict]
    recommendations: list[dict]
    paper: list[dict]
    failed: list[dict]
    unfinished: list[dict]
    costs: list[dict]
    exports: list[dict]
    per_label: list[dict] = field(default_factory=list)
    paired_seeds: list[dict] = field(default_factory=list)
    datasets: list[tuple[str, str]] = field(default_factory=list)  # (dataset, train size) in order
    train_devices: list[str] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    clinical: ClinicalRows = field(default_factory=ClinicalRows)
    robustness: RobustnessRows = field(default_factory=RobustnessRows)
    crossover: list[dict] = field(default_factory=list)


def _check_options(margin: float, delta: float, n_boot: int) -> None:
    if not 0 < margin < 1:
        raise ValueError(f"margin is in AUC units (0.005 = 0.5 AUC points) and must be in (0, 1), got {margin}")
    if not 0 <= delta < 1:
        raise ValueError(f"delta is in AUC units (0.01 = 1 AUC point) and must be in [0, 1), got {delta}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def _status_row(r: dict) -> dict:
    return {"run_id": r["run_id"], "kind": r["kind"], "status": r["status"], "model": r["model"],
            "dataset": r["dataset"], "init": r["init"], "seed": r["seed"], "train_size": r["train_size"],
            "error": r["error"] or ""}


def report_data(store_path: str | Path, *, suite_name: str | None = None, margin: float | None = None,
                delta: float | None = None, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> ReportData:
    """Compute the report's rows from a store. ``margin``/``delta`` default to the suite's
    ``[report]`` table (AUC units)."""
    path = store_file(store_path)
    with Store(path) as store:
        suite = suite_info(store, suite_name)
        margin = suite.report.margin if margin is None else float(margin)
        delta = suite.report.delta if delta is None else float(delta)
        _check_options(margin, delta, n_boot)
        runs = (store.runs(suite=suite.name) if suite.name else []) or store.runs()
        costs, exports, variants = store.costs(), store.exports(), store.variants()
        preds = load_predictions(store, runs)
        val_preds = {rid: store.predictions(rid, "val") for rid in preds}
        robust = store.robustness(preds)
    train = [r for r in runs if r["kind"] == "train"]
    done = [r for r in train if r["status"] == "done" and r["summary"]]
    sources = _source_rows(runs, train)
    weak = {r["source"]: r for r in sources if r["weak"]}
    datasets = ordered((r["dataset"], str(r["train_size"])) for r in train)
    cache = ReplicateCache(preds, n_boot=n_boot, seed=seed)
    summary = summary_table(train, costs, suite.cost, cache, level=level, variants=variants)
    cells: dict[tuple, list[dict]] = {}
    for r in done:
        cells.setdefault(cell_key(r), []).append(r)
    models, inits = ordered(r["model"] for r in train), ordered((r["init"] for r in train), BASELINE)
    per_label = [_per_label_row(*key, rows) for key, rows in cells.items()
                 if rows[0]["summary"].task.kind == "multilabel"]
    paired, paired_seeds = [], []
    for family in _families(datasets, models, inits, cells, cache, weak).values():
        paired += judged_rows(family, margin, seed=seed)
        paired_seeds += [s for c in family for s in c.pop("_seeds")]
    pareto, recs = _pareto(summary, datasets, delta, lambda rows: _gap_se(rows, cells, cache),
                           lambda rows: _reruns(rows, cells, seed=seed))
    opts = suite.report
    clinical = clinical_rows(cells, preds, val_preds, sensitivity=opts.sensitivity, specificity=opts.specificity,
                             n_bins=opts.calibration_bins, n_boot=n_boot, level=level, seed=seed,
                             confidence=opts.threshold_confidence)
    robustness = robustness_rows(cells, preds, robust, margin=margin, n_boot=n_boot, level=level, seed=seed)
    crossover = crossover_rows(train, lambda rows: cell_arm(rows, cache), margin=margin, n_boot=max(int(n_boot), 200),
                               level=level, seed=seed)
    devices = sorted({f"{r['summary'].runtime.device} (bf16 autocast {'on' if r['summary'].runtime.amp else 'off'})"
                      for r in done})
    return ReportData(path, suite, margin, delta, int(n_boot), level, summary, paired, pareto, recs,
                      _paper_rows(suite, summary), [_status_row(r) for r in runs if r["status"] == "failed"],
                      [_status_row(r) | {"error": ""} for r in runs if r["status"] in ("pending", "running")],
                      costs, exports, per_label, paired_seeds, datasets, devices, sources, clinical, robustness,
                      crossover)


def _source_rows(runs: list[dict], train: list[dict]) -> list[dict]:
    """One row per weight source the training runs used: a pretraining run of the store (with
    its own test AUC, flagged ``weak`` below :data:`WEAK_SOURCE_AUC`) or published/file weights;
    ``seeds``: how many training seeds share it."""
    by_id = {r["run_id"]: r for r in runs}
    rows = []
    for source in dict.fromkeys(r["source"] for r in train if r.get("source")):
        users = [r for r in train if r.get("source") == source]
        row = dict.fromkeys(SOURCE_COLUMNS)
        row.update(source=source, used_by=len(users), seeds=len({r.get("seed") for r in users}),
                   model=users[0]["model"], weak=False)
        origin = next((r["summary"].source_origin for r in users if r.get("summary")), None)
        row["origin"] = origin or source
        pre = by_id.get(source[4:]) if source.startswith("run:") else None
        if pre is not None:
            summ = pre.get("summary")
            row.update(model=pre["model"], dataset=pre["dataset"], status=pre["status"],
                       steps=summ.steps if summ else None, test_auc=summ.test_auc if summ else None,
                       test_acc=summ.test_acc if summ else None)
            auc = row["test_auc"]
            row["weak"] = auc is not None and auc < WEAK_SOURCE_AUC
            row["quality"] = ("not finished" if auc is None else
                              f"weak: test AUC {auc:.3f} is near chance (0.5), so runs using it show transfer from "
                              "a barely trained network" if row["weak"] else "pretrained in this store")
        elif source.startswith("run:"):
            row.update(status="missing", quality="pretraining run not in this store")
        else:
            row.update(status="done", quality="published ImageNet weights" if source == "imagenet" else "weights file")
        rows.append(row)
    return rows


def _families(datasets: list[tuple[str, str]], models: list[str], inits: list[str], cells: dict[tuple, list[dict]],
              cache: ReplicateCache, weak: dict) -> dict[tuple[str, str], list[dict]]:
    """Per dataset × train size, its regime − random comparisons (rows with ``_estimate`` and
    ``_seeds``, not yet judged)."""
    out = {}
    for data, size in datasets:
        out[(data, size)] = [c for model in models for c in _comparisons(
            data, size, model, {init: cells.get((data, size, model, init), []) for init in inits}, cache, weak)]
    return out


def pilot_comparisons(store_path: str | Path, *, suite_name: str | None = None, n_boot: int = 500,
                      seed: int = 0) -> list[dict]:
    """The regime − random comparisons of a store as a pilot for planning: per comparison the
    columns of :data:`PAIRED_COLUMNS` up to ``df`` (mean, seed SD of the differences ``diff_sd``,
    shared test SE ``se_shared``) and ``family_size`` (the comparisons of its dataset × train size
    with at least two seed pairs); no verdicts."""
    path = store_file(store_path)
    with Store(path) as store:
        suite = suite_info(store, suite_name)
        runs = (store.runs(suite=suite.name) if suite.name else []) or store.runs()
        preds = load_predictions(store, runs)
    train = [r for r in runs if r["kind"] == "train"]
    cells: dict[tuple, list[dict]] = {}
    for r in train:
        if r["status"] == "done" and r["summary"]:
            cells.setdefault(cell_key(r), []).append(r)
    families = _families(ordered((r["dataset"], str(r["train_size"])) for r in train),
                         ordered(r["model"] for r in train), ordered((r["init"] for r in train), BASELINE), cells,
                         ReplicateCache(preds, n_boot=n_boot, seed=seed), {})
    out = []
    for family in families.values():
        measured = [c for c in family if c["_estimate"] is not None and c["_estimate"].training_measured]
        for c in family:
            c.pop("_seeds")
            c.pop("_estimate")
            out.append(c | {"family_size": len(measured)})
    return out


def _per_label_row(data: str, size: str, model: str, init: str, rows: list[dict]) -> dict:
    out = {"dataset": data, "train_size": size, "model": model, "init": init, "n_seeds": len(rows)}
    for lab in rows[0]["summary"].task.labels:
        vals = [(r["summary"].test_per_label_auc or {}).get(lab) for r in rows]
        vals = [v for v in vals if v is not None]
        out[lab] = float(np.mean(vals)) if vals else None
    return out


def cell_arm(runs: list[dict], cache: ReplicateCache) -> stats.Arm:
    """A cell's finished runs as an arm of the comparison engine: test AUC per seed and the aligned
    bootstrap replicates (``None`` when they cannot be computed)."""
    runs = sorted((r for r in runs if r["test_auc"] is not None), key=lambda r: r["seed"])
    try:
        reps = cache.replicates([r["run_id"] for r in runs], runs[0]["summary"].task) if runs else None
    except (stats.UndefinedMetricError, ValueError):
        reps = None
    return stats.Arm(tuple(r["seed"] for r in runs), np.array([float(r["test_auc"]) for r in runs]), reps)


def _comparisons(data: str, size: str, model: str, group: dict[str, list[dict]], cache: ReplicateCache,
                 weak: dict) -> list[dict]:
    """One comparison per regime of ``model`` against its ``random`` runs (paired by seed), each
    with its seed estimate (not yet judged: that needs the whole family) and per-seed rows."""
    base_rows = group.get(BASELINE, [])
    base = {r["seed"]: r for r in base_rows}
    base_arm = cell_arm(base_rows, cache)
    out = []
    for init, rows in group.items():
        if init == BASELINE or not rows:
            continue
        row = dict.fromkeys(PAIRED_COLUMNS)
        row.update(dataset=data, train_size=size, model=model, regime=init, baseline=BASELINE, _seeds=[],
                   _estimate=None)
        w = weak.get(rows[0].get("source"))
        notes = [f"weak source (its test AUC {w['test_auc']:.3f})"] if w else []
        unpaired = sorted(r["seed"] for r in rows if r["seed"] not in base)
        if unpaired:
            notes.append(f"no {BASELINE} run with seed(s) {', '.join(map(str, unpaired))} to pair with")
        row["note"] = "; ".join(notes)
        arm = cell_arm(rows, cache)
        est, seeds, reason = stats.paired_estimate(arm, base_arm)
        if not seeds:
            row.update(verdict="n/a", reason=f"no seed with both a {init} and a {BASELINE} run")
            out.append(row)
            continue
        if est is None:
            row.update(verdict="n/a", reason=reason)
            out.append(row)
            continue
        by_seed = {r["seed"]: r for r in rows}
        pairs = [(by_seed[s], base[s]) for s in seeds]
        for (a, b), d, reps in zip(pairs, est.per_seed, _seed_replicates(arm, base_arm, seeds)):
            lo, hi = np.quantile(reps, [0.025, 0.975])
            row["_seeds"].append({"dataset": data, "train_size": size, "model": model, "regime": init,
                                  "seed": a["seed"], "auc_regime": a["test_auc"], "auc_baseline": b["test_auc"],
                                  "diff": d, "ci_low": float(lo), "ci_high": float(hi)})
        row.update(_estimate=est, n_seeds=est.n_seeds, seeds=" ".join(str(s) for s in seeds),
                   n_test=len(cache.predictions[pairs[0][0]["run_id"]]["targets"]),
                   auc_regime=float(np.mean([a["test_auc"] for a, _ in pairs])),
                   auc_baseline=float(np.mean([b["test_auc"] for _, b in pairs])), diff=est.mean,
                   diff_sd=est.sd_seeds, diff_min=est.min, diff_max=est.max, se_test=est.se_test,
                   se_shared=float(np.sqrt(est.var_shared)), se=est.se,
                   df=est.df if np.isfinite(est.df) else None)
        out.append(row)
    return out


def _seed_replicates(a: stats.Arm, b: stats.Arm, seeds: tuple[int, ...]) -> np.ndarray:
    """(S, B) replicates of each seed pair's difference."""
    ra = np.asarray(a.replicates)[[a.seeds.index(s) for s in seeds]]
    return ra - np.asarray(b.replicates)[[b.seeds.index(s) for s in seeds]]


def judged_rows(rows: list[dict], margin: float, *, seed: int = 0) -> list[dict]:
    """Rows of one family with their ``_estimate`` judged together by the comparison engine: the
    verdict columns of :data:`PAIRED_COLUMNS` filled in, ``_estimate`` removed."""
    estimates = [r.pop("_estimate") for r in rows]
    for r, j in zip(rows, stats.judge_family(estimates, margin, seed=seed)):
        if j is None:
            continue
        r.update(ci_low=j.ci_low, ci_high=j.ci_high, level=j.level, eq_low=j.eq_low, eq_high=j.eq_high,
                 eq_level=j.eq_level, margin=margin, verdict=j.verdict, within_margin=j.within_margin, flip=j.flip,
                 borderline=j.borderline, label=j.label, reason=j.reason, family_size=j.family_size)
    return rows


def _gap_se(rows: list[dict], cells: dict[tuple, list[dict]], cache: ReplicateCache) -> np.ndarray:
    """(n, n) standard errors of the AUC gaps between summary ``rows`` of one dataset × train size:
    :func:`transfusion.stats.difference` of the two cells (each cell's seed variance over its
    seeds, plus the test variance the two means do not share — aligned replicates, so the test
    noise both cells share cancels). Where a cell has no replicates (an int8 twin, a store without
    predictions) the rows' own standard errors are added (wider)."""
    n = len(rows)
    arms = []
    for r in rows:
        arm = cell_arm(cells.get(cell_key(r), []), cache)
        arms.append(arm if arm.replicates is not None and len(arm.seeds) else None)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            a, b = arms[i], arms[j]
            if a is not None and b is not None and np.shape(a.replicates)[1] == np.shape(b.replicates)[1]:
                se = stats.difference((a.values, a.replicates), (b.values, b.replicates)).se
            else:
                se = float(np.sqrt(sum((rows[k].get("auc_se") or rows[k].get("auc_se_test") or 0.0) ** 2
                                       for k in (i, j))))
            out[i, j] = out[j, i] = se
    return out


def _reruns(rows: list[dict], cells: dict[tuple, list[dict]], *, seed: int = 0) -> np.ndarray:
    """(:data:`RERUNS`, n) mean AUCs of simulated faithful reruns of ``rows`` (new seeds, the same
    test images): each cell's mean drawn from its predictive law given its seeds, mean + s·√(2/n)·t(n−1)
    (the test error the rerun shares with this run stays). An int8 twin moves with its fp32 cell;
    a row of fewer than two seeds (training noise unmeasured) makes every draw NaN."""
    rng = np.random.default_rng([seed, 0x5EC0])
    n_rows = len(rows)
    out = np.empty((RERUNS, n_rows))
    shift: dict[tuple, np.ndarray] = {}
    for i, r in enumerate(rows):
        key = (r["dataset"], r["train_size"], r["model"], r["init"].removesuffix(INT8_SUFFIX))
        if key not in shift:
            aucs = [x["test_auc"] for x in cells.get(key, []) if x["test_auc"] is not None]
            if len(aucs) < 2:
                return np.full((RERUNS, n_rows), np.nan)
            n = len(aucs)
            shift[key] = float(np.std(aucs, ddof=1)) * np.sqrt(2.0 / n) * rng.standard_t(n - 1, RERUNS)
        out[:, i] = float(r["auc_mean"]) + shift[key]
    return out


def _pareto(summary: list[dict], datasets: list[tuple[str, str]], delta: float,
            gap_se: Callable[[list[dict]], np.ndarray],
            reruns: Callable[[list[dict]], np.ndarray]) -> tuple[list[dict], list[dict]]:
    rows, recs = [], []
    for data, size in datasets:
        group = [r for r in summary if (r["dataset"], r["train_size"]) == (data, size) and r["auc_mean"] is not None]
        for m in COST_MEASURES:
            pts = [r for r in with_int8(group, m.key) if r.get(m.key) is not None]
            if not pts:
                continue
            costs = [float(r[m.key]) for r in pts]
            aucs = [float(r["auc_mean"]) for r in pts]
            se = gap_se(pts)
            prefer = [_from_scratch(r["init"]) for r in pts]
            front = pareto_front(costs, aucs, tolerance=delta)
            borderline = front_borderline(costs, aucs, se, tolerance=delta)
            rec = cheapest_within(costs, aucs, delta, prefer=prefer)
            alternative = recommendation_alternatives(costs, aucs, delta, se, prefer=prefer)
            stability = recommendation_stability(costs, aucs, delta, reruns(pts), prefer=prefer)
            stability = None if np.isnan(stability) else stability
            best = int(np.argmax(aucs))
            for i, r in enumerate(pts):
                rows.append({"dataset": data, "train_size": size, "cost_measure": m.key, "model": r["model"],
                             "init": r["init"], "cost": costs[i], "auc_mean": aucs[i], "auc_se": r.get("auc_se"),
                             "on_front": bool(front[i]), "borderline": bool(borderline[i]),
                             "recommended": i == rec, "alternative": bool(alternative[i] and i != rec),
                             "delta": delta, "stability": stability if i == rec else None})
            recs.append({"dataset": data, "train_size": size, "cost_measure": m.key, "model": pts[rec]["model"],
                         "init": pts[rec]["init"], "cost": costs[rec], "auc_mean": aucs[rec],
                         "best_model": pts[best]["model"], "best_init": pts[best]["init"], "best_auc": aucs[best],
                         "best_cost": costs[best], "delta": delta,
                         "front": [(pts[i]["model"], pts[i]["init"]) for i in np.flatnonzero(front)],
                         "borderline": [(pts[i]["model"], pts[i]["init"]) for i in np.flatnonzero(borderline)],
                         "alternatives": [(pts[i]["model"], pts[i]["init"]) for i in np.flatnonzero(alternative)
                                          if i != rec], "stability": stability})
    return rows, recs


#: what marks a summary row's int8 twin (its ``init``: ``"random · int8"``)
INT8_SUFFIX = " · int8"


def with_int8(rows: list[dict], measure: str) -> list[dict]:
    """``rows``, and — for the ONNX Runtime latency measure only — each row's int8 twin where the
    suite checked int8 variants (``[cost] int8``): ``init`` marked with :data:`INT8_SUFFIX`, the
    int8 latency as ``onnx_ms`` and the mean int8 test AUC as ``auc_mean`` (its interval unknown;
    its standard error taken as the fp32 cell's, which the int8 scores closely follow)."""
    if measure != "onnx_ms":
        return list(rows)
    twins = [{**r, "init": r["init"] + INT8_SUFFIX, "onnx_ms": r["int8_onnx_ms"], "auc_mean": r["int8_auc_mean"],
              "auc_ci_low": None, "auc_ci_high": None, "latency_flag": None}
             for r in rows if r.get("int8_onnx_ms") is not None and r.get("int8_auc_mean") is not None]
    return list(rows) + twins


def _from_scratch(init: str) -> bool:
    """Whether a regime needs no pretrained weights (an unparseable one counts as needing them)."""
    try:
        return not parse_regime(regime_of(init)).needs_source
    except ValueError:
        return False


def _paper_rows(suite: SuiteInfo, summary: list[dict]) -> list[dict]:
    if not suite.report.paper:
        return []
    table = paper_table(suite.report.paper)
    out = []
    for v in table.values:
        wanted = ("random",) if v.init == "random" else ("transfer",)
        ours = [r for r in summary if r["model"] == v.model and r["init"] in wanted and r["auc_mean"] is not None]
        o = ours[0] if ours else None
        ours_pct = o["auc_mean"] * 100 if o else None
        note = v.note or ("" if o else "not in this store")
        if o and len(ours) > 1:
            note = (note + "; " if note else "") + f"{len(ours)} matching rows, the first is shown"
        out.append({"paper": table.key, "model": v.model, "init": v.init, "paper_auc_pct": v.auc_pct,
                    "ours_auc_pct": ours_pct, "ours_std_pct": o["auc_std"] * 100 if o and o["auc_std"] is not None
                    else None, "diff_pct": ours_pct - v.auc_pct if ours_pct is not None and v.auc_pct is not None
                    else None, "n_seeds": o["n_seeds"] if o else 0, "dataset": o["dataset"] if o else "",
                    "note": note})
    return out


def source_weak(data: ReportData) -> list[dict[str, Any]]:
    """The weight sources flagged weak."""
    return [r for r in data.sources if r["weak"]]
