"""The accuracy-versus-cost report of a results store.

``build_report(store_path, out_dir, suite_name=...)`` writes ``report.md``, a self-contained
``report.html`` (figures embedded as base64 PNG), ``figures/*.png`` and ``tables/*.csv``.
:func:`report_data` computes everything the report shows, without writing anything.

Statistics (AUC units throughout; the text prints AUC points, 0.005 = 0.5 points):

* **AUC per row** — mean over the row's seeds of each run's test AUC; std with ddof 1 (none
  for one seed).
* **95% interval per row** — one seed: the run's own percentile bootstrap interval over test
  images (``summary.test_auc_ci``; recomputed from the stored predictions when the run kept
  none). Several seeds: a *two-level* bootstrap — each replicate resamples the test images
  (the same rows for every seed) and, independently, the seeds with replacement, and averages
  the resampled seeds' AUCs; the interval is the 2.5/97.5 percentiles. It covers both the test
  sample and the training randomness.
* **Regime − random** — for every (dataset, model, train size, seed) with a ``random`` run:
  :func:`transfusion.bench.metrics.paired_difference` (paired bootstrap: the same resampled
  test images for both runs) and :func:`~transfusion.bench.metrics.equivalence_verdict` with
  the margin. With several seeds, a pooled row (seed ``mean``) averages the per-seed
  differences inside each replicate and resamples seed pairs (two-level, as above).
* **Pareto front / recommendation** — per dataset and train size, over the rows' mean AUC and
  each cost measure: :func:`transfusion.analysis.pareto.pareto_front` and
  :func:`~transfusion.analysis.pareto.cheapest_within` with ``delta``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import importlib.metadata
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transfusion.analysis import report_doc as D
from transfusion.analysis.paper import PAPER, paper_table
from transfusion.analysis.pareto import cheapest_within, pareto_front
from transfusion.bench import metrics as M
from transfusion.bench.store import Store
from transfusion.data.base import TaskSpec

STORE_NAME = "results.sqlite"
DEFAULT_MARGIN = 0.005
DEFAULT_DELTA = 0.01
BASELINE = "random"
#: a pretrained source whose own test AUC is below this is flagged as weak (near chance, 0.5)
WEAK_SOURCE_AUC = 0.6


@dataclass(frozen=True)
class CostMeasure:
    """A cost column of the summary: its key, short name, axis label (with unit) and format."""

    key: str
    name: str
    axis: str
    unit: str

    def fmt(self, v: float | None) -> str:
        if v is None:
            return "—"
        if self.key == "macs":
            return f"{v / 1e9:.3g} GMACs"
        if self.key == "params":
            return f"{v / 1e6:.3g} M params"
        return f"{v:.3g} ms"


COST_MEASURES: tuple[CostMeasure, ...] = (
    CostMeasure("macs", "MACs", "MACs per image at the run's resolution (fvcore; 1 multiply-add = 1)", "MACs"),
    CostMeasure("params", "parameters", "parameters (count)", "params"),
    CostMeasure("torch_ms", "PyTorch CPU latency", "PyTorch CPU latency, batch 1 (ms)", "ms"),
    CostMeasure("onnx_ms", "ONNX Runtime latency", "ONNX Runtime CPU latency, batch 1 (ms)", "ms"),
    CostMeasure("gpu_ms", "GPU latency", "GPU latency, batch 1, fp32 (ms)", "ms"),
)

SUMMARY_COLUMNS = (
    "dataset", "task", "train_size", "model", "init", "n_seeds", "n_failed", "auc_mean", "auc_std",
    "auc_ci_low", "auc_ci_high", "ci_method", "auprc_mean", "acc_mean", "res_px", "params", "macs",
    "torch_ms", "onnx_ms", "gpu_ms", "gpu_amp_ms", "train_seconds", "steps_to_target", "cost_key",
    "gpu_cost_key", "run_ids",
)
PAIRED_COLUMNS = (
    "dataset", "train_size", "model", "regime", "baseline", "seed", "n_test", "auc_regime", "auc_baseline",
    "diff", "ci_low", "ci_high", "margin", "verdict", "method", "n_boot", "note",
)
PARETO_COLUMNS = (
    "dataset", "train_size", "cost_measure", "model", "init", "cost", "auc_mean", "on_front", "recommended",
    "delta",
)
PAPER_COLUMNS = ("paper", "model", "init", "paper_auc_pct", "ours_auc_pct", "ours_std_pct", "diff_pct",
                 "n_seeds", "dataset", "note")
SOURCE_COLUMNS = ("source", "model", "origin", "dataset", "steps", "test_auc", "test_acc", "status",
                  "used_by", "weak", "quality")
FAILED_COLUMNS = ("run_id", "kind", "status", "model", "dataset", "init", "seed", "train_size", "error")
COST_COLUMNS = ("cost_key", "model", "res", "in_chans", "num_classes", "batch", "device", "params", "macs",
                "torch_ms", "torch_img_s", "onnx_ms", "onnx_max_rel_err", "gpu_ms", "gpu_amp_ms", "cpu",
                "cores", "gpu", "torch", "onnxruntime", "platform", "error")
EXPORT_COLUMNS = ("export_id", "run_id", "model", "dataset", "init", "passed", "max_abs_err", "max_rel_err",
                  "auc_torch", "auc_onnx", "auc_diff", "ort_ms_batch1", "ort_ms_batchN", "batch", "onnx_path",
                  "created")


# --------------------------------------------------------------------------- inputs


def resolve_store(path: str | Path) -> Path:
    """The SQLite file behind ``path``: the file itself, or ``DIR/results.sqlite``."""
    p = Path(path)
    if p.is_dir():
        p = p / STORE_NAME
    if not p.is_file():
        raise FileNotFoundError(f"no results store at {p} (give a store file or the folder holding {STORE_NAME})")
    return p


@dataclass(frozen=True)
class SuiteInfo:
    """The suite a report is about, as stored: name, TOML hash and text, report options."""

    name: str | None
    digest: str | None
    toml: str | None
    created_at: float | None
    description: str = ""
    margin: float = DEFAULT_MARGIN
    delta: float = DEFAULT_DELTA
    paper: str | None = None
    cost: Any = None  # transfusion.bench.suite.CostOptions, when the TOML parses
    note: str = ""
    probe: int | None = None  # probe-set size for the analysis studies ([report].probe)


def suite_info(store: Store, suite_name: str | None = None) -> SuiteInfo:
    """The latest stored suite called ``suite_name`` (or the latest of any name), with its
    ``[report]`` options. Raises ``ValueError`` if ``suite_name`` is not in the store."""
    suites = store.suites()
    if suite_name is not None:
        chosen = [s for s in suites if s["name"] == suite_name]
        if not chosen:
            names = ", ".join(sorted({s["name"] for s in suites})) or "none"
            raise ValueError(f"the store {store.path} holds no suite named {suite_name!r} (it holds: {names})")
    else:
        chosen = suites
    if not chosen:
        return SuiteInfo(None, None, None, None, note="the store records no suite; report defaults apply")
    s = chosen[-1]
    from transfusion.bench.suite import SuiteError, parse_suite

    try:
        suite = parse_suite(s["toml"], origin=f"suite {s['name']} (as stored)", data_root="{data_root}")
        report, cost, desc, note = suite.report, suite.cost, suite.description, ""
    except (SuiteError, ValueError) as exc:  # e.g. an unset ${VAR}: read [report] directly
        from transfusion.bench.suite import tomllib

        doc = tomllib.loads(s["toml"])
        report, cost, desc = doc.get("report", {}), None, str(doc.get("description", ""))
        note = f"the stored suite does not parse today ({exc}); its [report] table was read directly"
    return SuiteInfo(
        name=s["name"], digest=s["hash"], toml=s["toml"], created_at=s["created_at"], description=desc,
        margin=float(report.get("margin", DEFAULT_MARGIN)), delta=float(report.get("delta", DEFAULT_DELTA)),
        paper=report.get("paper"), cost=cost, note=note, probe=report.get("probe"))


def task_of(summary: dict) -> TaskSpec:
    """The :class:`TaskSpec` recorded in a run summary."""
    t = summary["task"]
    return TaskSpec(t["kind"], tuple(t["labels"]), t.get("positive_rule", ""))


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


# --------------------------------------------------------------------------- statistics


def two_level_interval(replicates: np.ndarray, *, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of a mean over seeds from aligned bootstrap replicates.

    ``replicates``: (S, B) — replicate b of seed s, all seeds scored on the *same* resampled
    test rows b. Each of the B outputs averages seeds drawn with replacement (S draws) at that
    replicate, so the interval reflects both test-set sampling and seed-to-seed spread.
    One seed reduces to the plain percentile interval of its replicates.
    """
    r = np.asarray(replicates, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] == 0:
        raise ValueError(f"replicates must be (seeds, replicates) with replicates > 0, got shape {r.shape}")
    s, b = r.shape
    if s == 1:
        vals = r[0]
    else:
        pick = np.random.default_rng([seed, 0x5EED]).integers(0, s, size=(b, s))
        vals = r[pick, np.arange(b)[:, None]].mean(axis=1)
    lo, hi = np.quantile(vals, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def _aligned_replicates(task: TaskSpec, preds: list[dict], *, n_boot: int, seed: int) -> np.ndarray:
    """(S, B) AUC replicates of several runs on the same resampled test rows.

    :func:`transfusion.bench.metrics.bootstrap` with one seed draws the same resamples for every
    run of a dataset, and which replicates are degenerate depends on the targets only, so the
    kept replicates line up run by run."""
    reps = [M.bootstrap(task, p["scores"], p["targets"], p["mask"], metric="auc", n_boot=n_boot, seed=seed).replicates
            for p in preds]
    if len({len(r) for r in reps}) != 1:
        raise ValueError("bootstrap replicates do not line up across runs (different test targets?)")
    return np.stack(reps)


def _same_targets(preds: list[dict]) -> bool:
    t0, m0 = preds[0]["targets"], preds[0]["mask"]
    for p in preds[1:]:
        if not np.array_equal(p["targets"], t0):
            return False
        if (p["mask"] is None) != (m0 is None) or (m0 is not None and not np.array_equal(p["mask"], m0)):
            return False
    return True


# --------------------------------------------------------------------------- the data


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
    datasets: list[tuple[str, str]] = field(default_factory=list)  # (dataset, train size) in order
    train_devices: list[str] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)


def _suite_runs(store: Store, name: str | None) -> list[dict]:
    runs = store.runs(suite=name) if name else store.runs()
    return runs or store.runs()


def _match_costs(costs: list[dict], suite: SuiteInfo, model: str, res: int, in_chans: int,
                 num_classes: int) -> tuple[dict | None, dict | None]:
    """(CPU cost row, GPU cost row) for a model × resolution × channels × classes; the suite's
    own cost key first, else the latest row measured on that kind of device."""
    cands = [c for c in costs if (c.get("model"), c.get("res"), c.get("in_chans", 3), c.get("num_classes"))
             == (model, res, in_chans, num_classes)]
    cpu = [c for c in cands if str(c.get("device", "cpu")).startswith("cpu")]
    gpu = [c for c in cands if c.get("gpu_ms") is not None]
    want = None
    if suite.cost is not None:
        from transfusion.bench.runner import cost_key

        want = cost_key(model, res, in_chans, num_classes, suite.cost)
    pick = next((c for c in cpu if c["cost_key"] == want), cpu[-1] if cpu else None)
    gpick = next((c for c in gpu if c["cost_key"] == want), gpu[-1] if gpu else None)
    return pick, gpick


def _order(values: Iterable[str], first: str | None = None) -> list[str]:
    seen = list(dict.fromkeys(values))
    if first in seen:
        seen.remove(first)
        seen.insert(0, first)
    return seen


def report_data(
    store_path: str | Path,
    *,
    suite_name: str | None = None,
    margin: float | None = None,
    delta: float | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> ReportData:
    """Compute the report's rows from a store (nothing is written). ``margin``/``delta``
    default to the suite's ``[report]`` table (AUC units)."""
    path = resolve_store(store_path)
    with Store(path) as store:
        suite = suite_info(store, suite_name)
        margin = suite.margin if margin is None else float(margin)
        delta = suite.delta if delta is None else float(delta)
        if not 0 < margin < 1:
            raise ValueError(f"margin is in AUC units (0.005 = 0.5 AUC points) and must be in (0, 1), got {margin}")
        if not 0 <= delta < 1:
            raise ValueError(f"delta is in AUC units (0.01 = 1 AUC point) and must be in [0, 1), got {delta}")
        if int(n_boot) < 1:
            raise ValueError(f"n_boot must be >= 1, got {n_boot}")
        runs = _suite_runs(store, suite.name)
        costs = store.costs()
        exports = store.exports()
        preds = {r["run_id"]: store.predictions(r["run_id"]) for r in runs
                 if r["status"] == "done" and r["kind"] == "train"}
    train = [r for r in runs if r["kind"] == "train"]
    done = [r for r in train if r["status"] == "done" and r["summary"]]
    failed = [{"run_id": r["run_id"], "kind": r["kind"], "status": r["status"], "model": r["model"],
               "dataset": r["dataset"], "init": r["init"], "seed": r["seed"], "train_size": r["train_size"],
               "error": r["error"] or ""} for r in runs if r["status"] == "failed"]
    unfinished = [{"run_id": r["run_id"], "kind": r["kind"], "status": r["status"], "model": r["model"],
                   "dataset": r["dataset"], "init": r["init"], "seed": r["seed"], "train_size": r["train_size"],
                   "error": ""} for r in runs if r["status"] in ("pending", "running")]

    sources = _source_rows(runs, train)
    weak = {r["source"]: r for r in sources if r["weak"]}
    datasets = list(dict.fromkeys((r["dataset"], str(r["train_size"])) for r in train))
    models = _order(r["model"] for r in train)
    inits = _order((r["init"] for r in train), BASELINE)

    summary: list[dict] = []
    per_label: list[dict] = []
    paired: list[dict] = []
    for data, size in datasets:
        for model in models:
            group_runs = {init: [r for r in done if (r["dataset"], str(r["train_size"]), r["model"], r["init"])
                                 == (data, size, model, init)] for init in inits}
            for init in inits:
                all_runs = [r for r in train if (r["dataset"], str(r["train_size"]), r["model"], r["init"])
                            == (data, size, model, init)]
                if not all_runs:
                    continue
                rows = group_runs[init]
                summary.append(_summary_row(data, size, model, init, rows, all_runs, costs, suite, preds,
                                            n_boot=n_boot, level=level, seed=seed))
                if rows and task_of(rows[0]["summary"]).kind == "multilabel":
                    per_label.append(_per_label_row(data, size, model, init, rows))
            paired += _paired_rows(data, size, model, group_runs, preds, margin=margin, n_boot=n_boot,
                                   level=level, seed=seed, weak=weak)
    pareto, recs = _pareto(summary, datasets, delta)
    paper = _paper_rows(suite, summary)
    devices = sorted({f"{r['summary'].get('device')} (bf16 autocast {'on' if r['summary'].get('amp') else 'off'})"
                      for r in done})
    return ReportData(path, suite, margin, delta, int(n_boot), level, summary, paired, pareto, recs, paper,
                      failed, unfinished, costs, exports, per_label, datasets, devices, sources)


def _source_rows(runs: list[dict], train: list[dict]) -> list[dict]:
    """One row per weight source the training runs used: a pretraining run of the store (with
    its own test AUC, flagged ``weak`` below :data:`WEAK_SOURCE_AUC`) or published/file weights."""
    by_id = {r["run_id"]: r for r in runs}
    rows = []
    for source in dict.fromkeys(r["source"] for r in train if r.get("source")):
        users = [r for r in train if r.get("source") == source]
        row = dict.fromkeys(SOURCE_COLUMNS)
        row.update(source=source, used_by=len(users), model=users[0]["model"], weak=False)
        origin = next((r["summary"].get("source_origin") for r in users if r.get("summary")), None)
        row["origin"] = origin or source
        pre = by_id.get(source[4:]) if source.startswith("run:") else None
        if pre is not None:
            summ = pre.get("summary") or {}
            row.update(model=pre["model"], dataset=pre["dataset"], status=pre["status"], steps=summ.get("steps"),
                       test_auc=summ.get("test_auc"), test_acc=summ.get("test_acc"))
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


def _summary_row(data: str, size: str, model: str, init: str, rows: list[dict], all_runs: list[dict],
                 costs: list[dict], suite: SuiteInfo, preds: dict, *, n_boot: int, level: float,
                 seed: int) -> dict:
    aucs = [r["test_auc"] for r in rows if r["test_auc"] is not None]
    s0 = rows[0]["summary"] if rows else None
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(dataset=data, train_size=size, model=model, init=init, n_seeds=len(aucs),
               n_failed=sum(r["status"] == "failed" for r in all_runs),
               auc_mean=float(np.mean(aucs)) if aucs else None,
               auc_std=float(np.std(aucs, ddof=1)) if len(aucs) > 1 else None,
               auprc_mean=_mean(r["test_auprc"] for r in rows), acc_mean=_mean(r["test_acc"] for r in rows),
               train_seconds=_mean(r["train_seconds"] for r in rows),
               steps_to_target=_mean(r["steps_to_target"] for r in rows),
               run_ids=" ".join(r["run_id"] for r in rows), ci_method="")
    if s0 is None:
        return row
    task = task_of(s0)
    row.update(task=task.kind, res_px=s0["res"])
    cpu, gpu = _match_costs(costs, suite, model, s0["res"], s0["in_chans"], len(task.labels))
    base = cpu or gpu
    if base is not None:
        row.update(params=base.get("params"), macs=base.get("macs"))
    if cpu is not None:
        row.update(torch_ms=cpu.get("torch_ms"), onnx_ms=cpu.get("onnx_ms"), cost_key=cpu["cost_key"])
    if gpu is not None:
        row.update(gpu_ms=gpu.get("gpu_ms"), gpu_amp_ms=gpu.get("gpu_amp_ms"), gpu_cost_key=gpu["cost_key"])
    with_auc = [r for r in rows if r["test_auc"] is not None]
    if len(with_auc) == 1:
        r = with_auc[0]
        ci = r["summary"].get("test_auc_ci")
        if ci:
            row.update(auc_ci_low=ci[0], auc_ci_high=ci[1], ci_method="run's bootstrap over test images")
        elif preds.get(r["run_id"]) is not None:
            p = preds[r["run_id"]]
            lo, hi = M.bootstrap_ci(task, p["scores"], p["targets"], p["mask"], n_boot=n_boot, level=level, seed=seed)
            row.update(auc_ci_low=lo, auc_ci_high=hi, ci_method=f"bootstrap over test images ({n_boot})")
    elif len(with_auc) > 1:
        ps = [preds.get(r["run_id"]) for r in with_auc]
        if any(p is None for p in ps):
            row["ci_method"] = "unavailable: predictions missing"
        elif not _same_targets(ps):
            row["ci_method"] = "unavailable: seeds scored on different test images"
        else:
            try:
                reps = _aligned_replicates(task, ps, n_boot=n_boot, seed=seed)
                lo, hi = two_level_interval(reps, level=level, seed=seed)
                row.update(auc_ci_low=lo, auc_ci_high=hi,
                           ci_method=f"two-level bootstrap: test images × seeds ({n_boot})")
            except (M.UndefinedMetricError, ValueError) as exc:
                row["ci_method"] = f"unavailable: {exc}"
    return row


def _per_label_row(data: str, size: str, model: str, init: str, rows: list[dict]) -> dict:
    labels = rows[0]["summary"]["task"]["labels"]
    out = {"dataset": data, "train_size": size, "model": model, "init": init, "n_seeds": len(rows)}
    for lab in labels:
        out[lab] = _mean((r["summary"].get("test_per_label_auc") or {}).get(lab) for r in rows)
    return out


def _paired_rows(data: str, size: str, model: str, group_runs: dict[str, list[dict]], preds: dict, *,
                 margin: float, n_boot: int, level: float, seed: int, weak: dict | None = None) -> list[dict]:
    base_runs = {r["seed"]: r for r in group_runs.get(BASELINE, [])}
    out = []
    for init, rows in group_runs.items():
        if init == BASELINE or not rows:
            continue
        common = dict(dataset=data, train_size=size, model=model, regime=init, baseline=BASELINE, margin=margin)
        pairs = []
        for r in rows:
            row = dict.fromkeys(PAIRED_COLUMNS)
            w = (weak or {}).get(r.get("source"))
            row.update(common, seed=r["seed"], auc_regime=r["test_auc"],
                       note=f"weak source (its test AUC {w['test_auc']:.3f})" if w else "")
            b = base_runs.get(r["seed"])
            pa, pb = preds.get(r["run_id"]), preds.get(b["run_id"]) if b else None
            if b is None:
                row.update(verdict="n/a", note=f"no {BASELINE} run with seed {r['seed']} to pair with")
            elif pa is None or pb is None:
                row.update(verdict="n/a", note="predictions missing from the store")
            elif not _same_targets([pa, pb]):
                row.update(verdict="n/a", note="the two runs were scored on different test images")
            else:
                task = task_of(r["summary"])
                row.update(auc_baseline=b["test_auc"], n_test=len(pa["targets"]))
                try:
                    d = M.paired_difference(task, pa["scores"], pb["scores"], pa["targets"], pa["mask"], metric="auc",
                                            n_boot=n_boot, level=level, seed=seed)
                    row.update(diff=d.diff, ci_low=d.ci_low, ci_high=d.ci_high, method=d.method, n_boot=d.n_boot,
                               verdict=M.equivalence_verdict(d.ci_low, d.ci_high, margin))
                    pairs.append((task, pa, pb))
                except M.UndefinedMetricError as exc:
                    row.update(verdict="n/a", note=str(exc))
            out.append(row)
        if len(pairs) > 1:
            task = pairs[0][0]
            row = dict.fromkeys(PAIRED_COLUMNS)
            row.update(common, seed="mean", n_test=len(pairs[0][1]["targets"]), note=f"{len(pairs)} seed pairs")
            if not _same_targets([p for _, pa, pb in pairs for p in (pa, pb)]):
                row.update(verdict="n/a", note="seeds scored on different test images")
            else:
                ra = _aligned_replicates(task, [pa for _, pa, _ in pairs], n_boot=n_boot, seed=seed)
                rb = _aligned_replicates(task, [pb for _, _, pb in pairs], n_boot=n_boot, seed=seed)
                lo, hi = two_level_interval(ra - rb, level=level, seed=seed)
                da = [M.evaluate(task, pa["scores"], pa["targets"], pa["mask"])["auc"] for _, pa, _ in pairs]
                db = [M.evaluate(task, pb["scores"], pb["targets"], pb["mask"])["auc"] for _, _, pb in pairs]
                row.update(auc_regime=float(np.mean(da)), auc_baseline=float(np.mean(db)),
                           diff=float(np.mean(da) - np.mean(db)), ci_low=lo, ci_high=hi, n_boot=n_boot,
                           method="paired two-level bootstrap (test images × seed pairs)",
                           verdict=M.equivalence_verdict(lo, hi, margin))
            out.append(row)
    return out


def _pareto(summary: list[dict], datasets: list[tuple[str, str]], delta: float) -> tuple[list[dict], list[dict]]:
    rows, recs = [], []
    for data, size in datasets:
        group = [r for r in summary if (r["dataset"], r["train_size"]) == (data, size) and r["auc_mean"] is not None]
        for m in COST_MEASURES:
            pts = [r for r in group if r.get(m.key) is not None]
            if not pts:
                continue
            costs = [float(r[m.key]) for r in pts]
            aucs = [float(r["auc_mean"]) for r in pts]
            front = pareto_front(costs, aucs)
            rec = cheapest_within(costs, aucs, delta)
            best = int(np.argmax(aucs))
            for i, r in enumerate(pts):
                rows.append({"dataset": data, "train_size": size, "cost_measure": m.key, "model": r["model"],
                             "init": r["init"], "cost": costs[i], "auc_mean": aucs[i], "on_front": bool(front[i]),
                             "recommended": i == rec, "delta": delta})
            recs.append({"dataset": data, "train_size": size, "cost_measure": m.key, "model": pts[rec]["model"],
                         "init": pts[rec]["init"], "cost": costs[rec], "auc_mean": aucs[rec],
                         "best_model": pts[best]["model"], "best_init": pts[best]["init"], "best_auc": aucs[best],
                         "best_cost": costs[best], "delta": delta,
                         "front": [(pts[i]["model"], pts[i]["init"]) for i in np.flatnonzero(front)]})
    return rows, recs


def _paper_rows(suite: SuiteInfo, summary: list[dict]) -> list[dict]:
    if not suite.paper:
        return []
    table = paper_table(suite.paper)
    out = []
    for v in table.values:
        ours = [r for r in summary if r["model"] == v.model and r["init"] in _paper_inits(v.init)
                and r["auc_mean"] is not None]
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


def _paper_inits(init: str) -> tuple[str, ...]:
    return ("random",) if init == "random" else ("transfer",)


# --------------------------------------------------------------------------- formatting


def _f(v: Any, spec: str = ".3f") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return format(v, spec)


def _pts(v: float | None, spec: str = "+.2f") -> str:
    """AUC units → AUC points text."""
    return "—" if v is None else format(v * 100, spec)


def _short(dataset: str) -> str:
    return dataset.split("?")[0]


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "x"
    return f"{s}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def _write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = list(columns)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return path


def environment() -> dict[str, Any]:
    """This machine and the library versions (for the report's environment section)."""
    from transfusion.bench.runner import machine_info

    info = machine_info()
    versions = {}
    for pkg in ("transfusion", "torch", "torchvision", "onnx", "onnxruntime", "onnxscript", "fvcore", "numpy",
                "scikit-learn", "scipy", "pandas", "matplotlib"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"machine": info, "versions": versions, "python": sys.version.split()[0],
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# --------------------------------------------------------------------------- studies


def _run_studies(store_path: Path, out_dir: Path, probe: int | None = None) -> tuple[list[Any], str | None]:
    try:
        from transfusion.analysis.studies import run_all
    except ImportError as exc:
        return [], f"the analysis studies module (transfusion.analysis.studies) is not available: {exc}"
    opts = {"probe": int(probe), "fit": int(probe)} if probe else {}
    try:
        return list(run_all(store_path, out_dir, **opts)), None
    except Exception as exc:  # shown in the report, never silenced
        return [], f"the analysis studies failed: {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- the document


def build_report(
    store_path: str | Path,
    out_dir: str | Path,
    *,
    suite_name: str | None = None,
    margin: float | None = None,
    delta: float | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    studies: bool = True,
) -> dict[str, Path]:
    """Write the report of ``store_path`` (a store file or its folder) into ``out_dir``.

    Returns paths: ``md``, ``html``, ``figures`` and ``tables`` (folders). ``margin`` (the
    equivalence margin) and ``delta`` (the recommendation's tolerance) are in AUC units and
    default to the suite's ``[report]`` table; ``studies=False`` skips the analysis studies.
    The figures, tables (and, with studies, studies) folders are emptied of the ``.png`` and
    ``.csv`` files of an earlier report first, so none of its stale figures survive.
    """
    data = report_data(store_path, suite_name=suite_name, margin=margin, delta=delta, n_boot=n_boot, level=level)
    out = Path(out_dir)
    figs, tabs = out / "figures", out / "tables"
    for d in (figs, tabs, *((out / "studies",) if studies else ())):
        d.mkdir(parents=True, exist_ok=True)
        for old in (*d.glob("*.png"), *d.glob("*.csv")):
            old.unlink()
    study_out, study_err = (_run_studies(data.store_path, out / "studies", data.suite.probe) if studies
                            else ([], "skipped (studies=False)"))
    env = environment()
    doc = _document(data, out, figs, tabs, study_out, study_err, env)
    md = out / "report.md"
    html_path = out / "report.html"
    _atomic_write(md, D.render_markdown(doc, out))
    _atomic_write(html_path, D.render_html(doc, out))
    return {"md": md, "html": html_path, "figures": figs, "tables": tabs}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _document(data: ReportData, out: Path, figs: Path, tabs: Path, study_out: list, study_err: str | None,
              env: dict) -> D.Doc:
    s = data.suite
    title = f"transfusion report: {s.name or 'results store'}"
    sub = (f"{s.description} — " if s.description else "") + f"store {data.store_path}; generated {env['date']}"
    doc = D.Doc(title, subtitle=sub)
    summary_csv = _write_csv(tabs / "summary.csv", SUMMARY_COLUMNS, data.summary)
    paired_csv = _write_csv(tabs / "paired.csv", PAIRED_COLUMNS, data.paired)
    pareto_csv = _write_csv(tabs / "pareto.csv", PARETO_COLUMNS, data.pareto)

    doc.sections.append(_glance(data))
    for data_key in data.datasets:
        doc.sections += _dataset_sections(data, data_key, figs, summary_csv, paired_csv, pareto_csv)
    doc.sections.append(_sources_section(data, tabs))
    doc.sections.append(_paper_section(data, tabs))
    doc.sections += _studies_sections(study_out, study_err)
    doc.sections.append(_exports_section(data, tabs))
    doc.sections.append(_failed_section(data, tabs))
    doc.sections.append(_environment_section(data, tabs, env))
    doc.sections.append(_method_section(data))
    return doc


def _verdict_counts(rows: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "none"


def _glance(data: ReportData) -> D.Section:
    sec = D.Section("At a glance")
    if not data.summary:
        sec.blocks.append(D.Para("The store holds no training runs yet."))
        return sec
    weak = [r for r in data.sources if r["weak"]]
    if weak:
        sec.blocks.append(D.Para(
            "; ".join(f"{r['model']} ← {_short(r['dataset'] or '')} (test AUC {_f(r['test_auc'])} after "
                      f"{r['steps']} steps)" for r in weak)
            + ". These sources are near chance: the transfer, Mean-Var and transfusion rows of those models "
              "measure transfer from a barely trained network, not from a good source. See 'Weight sources'.",
            lead="Weak weight sources:"))
    for data_key in data.datasets:
        dataset, size = data_key
        rows = [r for r in data.summary if (r["dataset"], r["train_size"]) == data_key and r["auc_mean"] is not None]
        head = f"{_short(dataset)} (train size {size}):"
        if not rows:
            sec.blocks.append(D.Para("no finished runs.", lead=head))
            continue
        best = max(rows, key=lambda r: r["auc_mean"])
        items = [f"Best AUC: {best['model']} · {best['init']} {_f(best['auc_mean'])} "
                 f"(95% interval {_f(best['auc_ci_low'])}–{_f(best['auc_ci_high'])}, {best['n_seeds']} seed(s))."]
        for rec in (r for r in data.recommendations if (r["dataset"], r["train_size"]) == data_key):
            m = next(c for c in COST_MEASURES if c.key == rec["cost_measure"])
            items.append(f"Cheapest within {data.delta * 100:g} AUC points of the best, by {m.name}: "
                         f"{rec['model']} · {rec['init']} (AUC {_f(rec['auc_mean'])}, {m.fmt(rec['cost'])}; "
                         f"the best costs {m.fmt(rec['best_cost'])}). Pareto front: "
                         + "; ".join(f"{a} · {b}" for a, b in rec["front"]) + ".")
        pooled = [r for r in data.paired if (r["dataset"], r["train_size"]) == data_key]
        for regime in _order(r["regime"] for r in pooled):
            rr = [r for r in pooled if r["regime"] == regime]
            has_mean = {r["model"] for r in rr if r["seed"] == "mean"}
            use = [r for r in rr if r["seed"] == "mean" or r["model"] not in has_mean]
            detail = "; ".join(f"{r['model']} {_pts(r['diff'])} [{_pts(r['ci_low'])}, {_pts(r['ci_high'])}] "
                               f"{r['verdict']}" for r in use)
            items.append(f"{regime} − random (AUC points, margin ±{data.margin * 100:g}): {_verdict_counts(use)} — "
                         f"{detail}.")
        sec.blocks += [D.Para("", lead=head), D.Bullets(items)]
    if data.failed:
        sec.blocks.append(D.Para(f"{len(data.failed)} run(s) failed; see 'Failed runs'."))
    return sec


def _sources_section(data: ReportData, tabs: Path) -> D.Section:
    sec = D.Section("Weight sources")
    csv_path = _write_csv(tabs / "sources.csv", SOURCE_COLUMNS, data.sources)
    if not data.sources:
        sec.blocks.append(D.Para("No run used pretrained weights (only from-scratch regimes)."))
        return sec
    sec.blocks.append(D.Para(
        "Where the weights of the transfer, Mean-Var and transfusion regimes came from. A pretraining run's "
        f"own test AUC (on its source task) says how much there was to transfer; below {WEAK_SOURCE_AUC} it is "
        "flagged weak."))
    cols = ["model", "source", "source task", "steps", "source test AUC", "source accuracy", "runs using it",
            "quality"]
    sec.blocks.append(D.Table(cols, [[r["model"], r["origin"], _short(r["dataset"] or "") or "—",
                                      "" if r["steps"] is None else str(r["steps"]), _f(r["test_auc"]),
                                      _f(r["test_acc"]), str(r["used_by"]), r["quality"]] for r in data.sources],
                              numeric=frozenset(cols[3:7]), csv=csv_path))
    return sec


def _dataset_sections(data: ReportData, key: tuple[str, str], figs: Path, summary_csv: Path, paired_csv: Path,
                      pareto_csv: Path) -> list[D.Section]:
    dataset, size = key
    rows = [r for r in data.summary if (r["dataset"], r["train_size"]) == key]
    task = next((r["task"] for r in rows if r["task"]), "unknown")
    sec = D.Section(f"{_short(dataset)} · train size {size}")
    sec.blocks.append(D.Para(f"dataset {dataset}; task {task}; "
                             f"{len({r['model'] for r in rows})} model(s) × {len({r['init'] for r in rows})} regime(s)."))
    has_gpu = any(r["gpu_ms"] is not None for r in rows)
    cols = ["model", "regime", "seeds", "AUC mean ± std", "AUC 95% interval", "AUPRC", "accuracy", "res (px)",
            "params (M)", "GMACs", "PyTorch CPU ms", "ONNX Runtime ms"] + (["GPU ms"] if has_gpu else []) + \
        ["train s", "failed"]
    table_rows = []
    for r in rows:
        auc = "—" if r["auc_mean"] is None else (
            f"{r['auc_mean']:.3f} ± {r['auc_std']:.3f}" if r["auc_std"] is not None else f"{r['auc_mean']:.3f}")
        ci = "—" if r["auc_ci_low"] is None else f"{r['auc_ci_low']:.3f}–{r['auc_ci_high']:.3f}"
        cells = [r["model"], r["init"], str(r["n_seeds"]), auc, ci, _f(r["auprc_mean"]), _f(r["acc_mean"]),
                 _f(r["res_px"], "d"), _f(r["params"] and r["params"] / 1e6, ".2f"),
                 _f(r["macs"] and r["macs"] / 1e9, ".3f"), _f(r["torch_ms"], ".2f"), _f(r["onnx_ms"], ".2f")]
        if has_gpu:
            cells.append(_f(r["gpu_ms"], ".2f"))
        cells += [_f(r["train_seconds"], ".1f"), str(r["n_failed"])]
        table_rows.append(cells)
    methods = sorted({r["ci_method"] for r in rows if r["ci_method"]})
    sec.blocks.append(D.Table(cols, table_rows, caption="AUC over seeds beside cost (cost per image at the run's "
                              "resolution, latency at batch 1)", numeric=frozenset(cols[2:]), csv=summary_csv))
    sec.blocks.append(D.Para("95% interval: " + ("; ".join(methods) if methods else "none available") + ". "
                             + ("" if has_gpu else "GPU latency: not measured for these models (no CUDA cost row).")))
    per_label = [r for r in data.per_label if (r["dataset"], r["train_size"]) == key]
    if per_label:
        labels = [k for k in per_label[0] if k not in ("dataset", "train_size", "model", "init", "n_seeds")]
        sec.blocks.append(D.Table(["model", "regime", *labels], [[r["model"], r["init"], *(_f(r[k]) for k in labels)]
                                                                 for r in per_label],
                                  caption="AUC per label (mean over seeds)", numeric=frozenset(labels)))
    out = [sec]

    # paired comparisons
    sub = D.Section("Each regime minus random, on the same test images", level=3)
    pr = [r for r in data.paired if (r["dataset"], r["train_size"]) == key]
    if not pr:
        sub.blocks.append(D.Para("No regime other than random with a random run to pair with."))
    else:
        sub.blocks.append(D.Para(
            f"Difference in test AUC (AUC points) with a 95% paired-bootstrap interval ({data.n_boot} resamples "
            f"of the test images); verdict within an equivalence margin of ±{data.margin * 100:g} AUC points: "
            "equivalent = the whole interval inside the margin; better/worse = the interval excludes 0 "
            "(and is not inside the margin); inconclusive = otherwise."))
        pcols = ["model", "regime", "seed", "AUC regime", "AUC random", "difference", "95% interval", "verdict", "note"]
        sub.blocks.append(D.Table(pcols, [[r["model"], r["regime"], str(r["seed"]), _f(r["auc_regime"]),
                                           _f(r["auc_baseline"]), _pts(r["diff"]),
                                           "—" if r["ci_low"] is None else f"[{_pts(r['ci_low'])}, {_pts(r['ci_high'])}]",
                                           r["verdict"], r["note"] or ""] for r in pr],
                                  numeric=frozenset(pcols[2:7]), csv=paired_csv))
        ok = [r for r in pr if r["diff"] is not None]
        if ok:
            from transfusion.analysis.plots import paired_difference_plot

            png = paired_difference_plot(
                [f"{r['model']} · {r['regime']} · " + (f"seed {r['seed']}" if r["seed"] != "mean" else "mean over seeds") for r in ok], [r["diff"] for r in ok],
                [r["ci_low"] for r in ok], [r["ci_high"] for r in ok], [r["verdict"] for r in ok],
                figs / f"{_slug(dataset + size)}-paired.png", margin=data.margin,
                title=f"{_short(dataset)} (train size {size}): regime − random")
            sub.blocks.append(D.Figure(png, "Each regime minus random: paired differences in AUC points with 95% "
                                       "intervals; the shaded band is the equivalence margin.", csv=paired_csv))
    out.append(sub)

    # accuracy vs cost
    sub = D.Section("Accuracy against cost", level=3)
    from transfusion.analysis.plots import CostPoint, accuracy_cost_plot

    recs = {r["cost_measure"]: r for r in data.recommendations if (r["dataset"], r["train_size"]) == key}
    for m in COST_MEASURES:
        pts = [r for r in rows if r["auc_mean"] is not None and r.get(m.key) is not None]
        if not pts:
            sub.blocks.append(D.Para(f"AUC against {m.name}: not measured for these models."))
            continue
        points = [CostPoint(r["model"], r["init"], float(r[m.key]), float(r["auc_mean"]), r["auc_ci_low"],
                            r["auc_ci_high"]) for r in pts]
        front = pareto_front([p.cost for p in points], [p.auc for p in points])
        rec = recs[m.key]
        rec_i = next(i for i, r in enumerate(pts) if (r["model"], r["init"]) == (rec["model"], rec["init"]))
        png = accuracy_cost_plot(points, front, rec_i, figs / f"{_slug(dataset + size)}-auc-vs-{m.key}.png",
                                 xlabel=m.axis + " (log scale)", delta=data.delta,
                                 title=f"{_short(dataset)} (train size {size}): AUC against {m.name}")
        sub.blocks.append(D.Figure(png, f"AUC against {m.name}. Recommendation (cheapest within "
                                        f"{data.delta * 100:g} AUC points of the best): {rec['model']} · "
                                        f"{rec['init']} — AUC {_f(rec['auc_mean'])} at {m.fmt(rec['cost'])}; best "
                                        f"{rec['best_model']} · {rec['best_init']} {_f(rec['best_auc'])} at "
                                        f"{m.fmt(rec['best_cost'])}.", csv=pareto_csv))
    out.append(sub)
    return out


def _paper_section(data: ReportData, tabs: Path) -> D.Section:
    sec = D.Section("Comparison with the paper")
    key = data.suite.paper
    if not key:
        sec.blocks.append(D.Para(f"This suite sets no [report] paper table (one of {', '.join(sorted(PAPER))}); "
                                 "nothing to compare."))
        return sec
    table = paper_table(key)
    csv_path = _write_csv(tabs / "paper.csv", PAPER_COLUMNS, data.paper)
    sec.blocks.append(D.Para(f"{table.title}. Source: {table.source}. {table.note} Differences are ours − paper "
                             "in AUC points; an empty paper cell is a number this project has not verified."))
    cols = ["model", "regime", "paper AUC (%)", "ours AUC (%)", "ours std", "ours − paper", "seeds", "note"]
    sec.blocks.append(D.Table(cols, [[r["model"], r["init"], _f(r["paper_auc_pct"], ".1f"),
                                      _f(r["ours_auc_pct"], ".1f"), _f(r["ours_std_pct"], ".1f"),
                                      _f(r["diff_pct"], "+.1f"), str(r["n_seeds"]), r["note"]] for r in data.paper],
                              numeric=frozenset(cols[2:7]), csv=csv_path))
    return sec


def _studies_sections(study_out: list, err: str | None) -> list[D.Section]:
    sec = D.Section("Analysis studies")
    subs: list[D.Section] = []
    if err:
        sec.blocks.append(D.Para(f"No analysis figures: {err}."))
        return [sec]
    present = [s for s in study_out if not getattr(s, "absent", None)]
    absent = [s for s in study_out if getattr(s, "absent", None)]
    for s in present:
        sub = D.Section(str(s.title), level=3)
        if getattr(s, "summary", ""):
            sub.blocks.append(D.Para(str(s.summary)))
        png, csv_path = getattr(s, "png", None), getattr(s, "csv", None)
        if png is not None and Path(png).is_file():
            sub.blocks.append(D.Figure(Path(png), str(s.title), csv=Path(csv_path) if csv_path else None))
        elif csv_path:
            sub.blocks.append(D.Para(f"Data: {csv_path} (no figure)."))
        subs.append(sub)
    if present:
        sec.blocks.append(D.Para("Present: " + ", ".join(str(s.title) for s in present) + "."))
    if absent:
        sec.blocks.append(D.Para("Absent, and why:"))
        sec.blocks.append(D.Bullets([f"{s.title}: {s.absent}" for s in absent]))
    if not study_out:
        sec.blocks.append(D.Para("The studies module returned no studies."))
    return [sec, *subs]


def _exports_section(data: ReportData, tabs: Path) -> D.Section:
    sec = D.Section("Exported models (ONNX)")
    if not data.exports:
        sec.blocks.append(D.Para("No model of this store has been exported yet (transfusion export RUN_ID --out DIR)."))
        return sec
    rows = []
    for e in data.exports:
        c = e["card"]
        par, lat, src = c.get("parity", {}), c.get("latency", {}), c.get("source", {})
        rows.append({"export_id": e["export_id"], "run_id": e["run_id"], "model": src.get("model"),
                     "dataset": src.get("dataset"), "init": src.get("init"), "passed": e["passed"],
                     "max_abs_err": par.get("max_abs_err"), "max_rel_err": par.get("max_rel_err"),
                     "auc_torch": par.get("auc_torch"), "auc_onnx": par.get("auc_onnx"),
                     "auc_diff": par.get("auc_diff"), "ort_ms_batch1": lat.get("ort_ms_batch1"),
                     "ort_ms_batchN": lat.get("ort_ms_batchN"), "batch": lat.get("batch"),
                     "onnx_path": e["onnx_path"],
                     "created": _dt.datetime.fromtimestamp(e["created_at"] or 0, _dt.timezone.utc).strftime(
                         "%Y-%m-%d %H:%M UTC")})
    csv_path = _write_csv(tabs / "exports.csv", EXPORT_COLUMNS, rows)
    cols = ["run", "model", "regime", "parity", "max rel err", "AUC torch", "AUC ONNX", "ORT ms (b=1)",
            "ORT ms (b=N)", "file", "exported"]
    sec.blocks.append(D.Table(cols, [[str(r["run_id"]), str(r["model"]), str(r["init"]),
                                      "passed" if r["passed"] else "FAILED", _f(r["max_rel_err"], ".2e"),
                                      _f(r["auc_torch"], ".4f"), _f(r["auc_onnx"], ".4f"), _f(r["ort_ms_batch1"], ".2f"),
                                      f"{_f(r['ort_ms_batchN'], '.2f')} (N={r['batch']})", str(r["onnx_path"]),
                                      r["created"]] for r in rows],
                              numeric=frozenset(cols[4:9]), csv=csv_path))
    return sec


def _failed_section(data: ReportData, tabs: Path) -> D.Section:
    sec = D.Section("Failed runs")
    csv_path = _write_csv(tabs / "failed.csv", FAILED_COLUMNS, data.failed + data.unfinished)
    if not data.failed:
        sec.blocks.append(D.Para("No run failed."))
    else:
        cols = ["run", "kind", "model", "dataset", "regime", "seed", "train size", "error"]
        sec.blocks.append(D.Table(cols, [[r["run_id"], r["kind"], r["model"], _short(r["dataset"] or ""), r["init"],
                                          str(r["seed"]), str(r["train_size"]), r["error"]] for r in data.failed],
                                  csv=csv_path))
    if data.unfinished:
        sec.blocks.append(D.Para(f"{len(data.unfinished)} run(s) not finished (pending or running): "
                                 + ", ".join(r["run_id"] for r in data.unfinished) + "."))
    return sec


def _environment_section(data: ReportData, tabs: Path, env: dict) -> D.Section:
    sec = D.Section("Environment")
    m = env["machine"]
    s = data.suite
    sec.blocks.append(D.Para(f"{m.get('cpu')}, {m.get('cores')} cores; GPU: {m.get('gpu', 'none')}; "
                             f"{m.get('platform')}; Python {env['python']}; {env['date']}.",
                             lead="This report was generated on:"))
    sec.blocks.append(D.Para(", ".join(f"{k} {v}" for k, v in env["versions"].items()), lead="Library versions:"))
    created = _dt.datetime.fromtimestamp(s.created_at, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") \
        if s.created_at else "—"
    sec.blocks.append(D.Para(f"{s.name or '—'}, TOML sha256 {s.digest or '—'} (first 16 hex digits), registered "
                             f"{created}; margin ±{data.margin * 100:g} AUC points, δ {data.delta * 100:g} AUC "
                             f"points. {s.note}", lead="Suite:"))
    crow = []
    for c in data.costs:
        mach = c.get("machine") or {}
        crow.append({**{k: c.get(k) for k in COST_COLUMNS}, "cpu": mach.get("cpu"), "cores": mach.get("cores"),
                     "gpu": mach.get("gpu"), "torch": mach.get("torch"), "onnxruntime": mach.get("onnxruntime"),
                     "platform": mach.get("platform"), "error": c.get("error")})
    csv_path = _write_csv(tabs / "costs.csv", COST_COLUMNS, crow)
    if crow:
        cols = ["cost key", "device", "machine", "torch", "onnxruntime", "error"]
        sec.blocks.append(D.Table(cols, [[r["cost_key"], str(r["device"]),
                                          f"{r['cpu']}, {r['cores']} cores" + (f", {r['gpu']}" if r["gpu"] else ""),
                                          str(r["torch"]), str(r["onnxruntime"]), str(r["error"] or "")] for r in crow],
                                  caption="Every cost figure and the machine that measured it", csv=csv_path))
    else:
        sec.blocks.append(D.Para("The store holds no cost profile (suite [cost] disabled or not run yet)."))
    if data.train_devices:
        sec.blocks.append(D.Para(", ".join(data.train_devices), lead="Training device(s):"))
    if s.toml:
        sec.blocks.append(D.Code(s.toml, "toml", summary="suite TOML"))
    return sec


def _method_section(data: ReportData) -> D.Section:
    sec = D.Section("How to read this report")
    sec.blocks.append(D.Bullets([
        "AUC mean ± std: over the seeds of a row (std with ddof 1; none for one seed).",
        "95% interval: one seed — the run's percentile bootstrap over test images; several seeds — a two-level "
        "bootstrap resampling the test images (the same rows for every seed) and the seeds.",
        f"Regime − random: paired bootstrap over the same test images ({data.n_boot} resamples); verdicts within "
        f"±{data.margin * 100:g} AUC points (transfusion.bench.metrics.equivalence_verdict).",
        "Pareto front: rows no other row beats on both AUC and cost. Recommendation: the cheapest row whose AUC is "
        f"within δ = {data.delta * 100:g} AUC points of the best, per cost measure.",
        "MACs: fvcore multiply-adds per image at the run's resolution; latency: median of timed runs at batch 1 on "
        "the machine named in the Environment section.",
        "See docs/report.md for every section and column.",
    ]))
    return sec


def report_json(data: ReportData) -> str:
    """The report's rows as JSON (for tools)."""
    return json.dumps({"summary": data.summary, "paired": data.paired, "recommendations": data.recommendations,
                       "paper": data.paper, "sources": data.sources}, default=str, indent=1)
