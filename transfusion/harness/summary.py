"""The summary table of a results store: one row per dataset × train size × model × regime,
the AUC over its seeds beside the cost profile. ``transfusion bench`` prints it and writes
``OUT/summary.csv``; the report writes the same rows to ``tables/summary.csv``.

Per row: ``auc_mean`` over seeds; ``auc_std`` (ddof 1) and ``auc_min`` / ``auc_max`` — the
seed-to-seed spread, empty for one seed; a 95% interval ``auc_ci_low`` / ``auc_ci_high`` whose
``ci_method`` says what it covers — one seed: the run's bootstrap over test images (training
variance not measured); several seeds: ``mean ± √(z²·c̄ + t²·s²/n)``, cut to AUC's range [0, 1]
(:func:`transfusion.stats.seed_estimate`: ``c̄`` the test variance every seed shares,
``auc_se_shared`` = √c̄; ``auc_se`` = √(s²/n + c̄); ``auc_se_test`` the bootstrap SD of the seed mean;
``auc_df`` = n − 1); cost columns from the profile of the row's model at its resolution (see
:data:`transfusion.cost.COST_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from transfusion import stats
from transfusion.stats.seeds import ReplicateCache, seed_estimate
from transfusion.train.summary import RunSummary

from .costs import cost_key_of, cost_model, match_costs
from .store import Store
from .suite import CostOptions

BASELINE = "random"

SUMMARY_COLUMNS = (
    "dataset", "task", "train_size", "model", "init", "n_seeds", "n_failed", "auc_mean", "auc_std", "auc_min",
    "auc_max", "auc_ci_low", "auc_ci_high", "ci_method", "auc_se_test", "auc_se_shared", "auc_se", "auc_df", "auprc_mean", "acc_mean", "res_px", "params", "macs",
    "torch_ms", "onnx_ms", "gpu_ms", "gpu_amp_ms", "latency_flag", "int8_auc_mean", "int8_auc_diff", "int8_passed",
    "int8_checked", "int8_onnx_ms", "onnx_bytes", "int8_bytes", "train_seconds", "steps_to_target", "cost_key",
    "gpu_cost_key", "run_ids",
)


def read_summary_csv(path: str | Path) -> list[dict]:
    """Rows written by :func:`transfusion.core.files.write_csv` from :func:`summary_table`, with
    numbers as numbers and empty cells as ``None``."""
    import csv

    def value(text: str) -> Any:
        if text == "":
            return None
        for cast in (int, float):
            try:
                return cast(text)
            except ValueError:
                pass
        return text

    with Path(path).open(newline="", encoding="utf-8") as f:
        return [{k: (v if k in _TEXT_COLUMNS else value(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def ordered(values: Iterable[str], first: str | None = None) -> list[str]:
    """Distinct ``values`` in order of appearance, ``first`` moved to the front if present."""
    seen = list(dict.fromkeys(values))
    if first in seen:
        seen.remove(first)
        seen.insert(0, first)
    return seen


def cell_key(run: dict) -> tuple[str, str, str, str]:
    """(dataset, train size, model, init): the cell a training run belongs to."""
    return run["dataset"], str(run["train_size"]), run["model"], run["init"]


def load_predictions(store: Store, runs: Iterable[dict]) -> dict[str, dict | None]:
    """Stored test predictions of the finished training runs, by run id."""
    return {r["run_id"]: store.predictions(r["run_id"]) for r in runs
            if r["status"] == "done" and r["kind"] == "train"}


_TEXT_COLUMNS = {"dataset", "task", "train_size", "model", "init", "ci_method", "cost_key", "gpu_cost_key", "run_ids"}


def _mean(values: Iterable[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summary_table(runs: list[dict], costs: list[dict], cost_options: CostOptions | None,
                  predictions: dict[str, dict | None] | ReplicateCache, *, level: float = 0.95,
                  variants: list[dict] = ()) -> list[dict]:
    """Rows with the columns of :data:`SUMMARY_COLUMNS` for the training runs among ``runs`` (store
    rows), in grid order: datasets and models as they first appear, ``random`` first.
    ``predictions``: the runs' test predictions, or a :class:`~transfusion.stats.seeds.ReplicateCache`
    of them (shared with other tables). ``variants``: the store's int8 records
    (:func:`transfusion.harness.int8.evaluate_int8`): a cell's ``int8_*`` columns are the mean
    int8 AUC and int8 − fp32 difference over its checked seeds, how many of them passed the
    non-inferiority check out of ``int8_checked``, and the model's int8 latency and file sizes."""
    int8 = {v["run_id"]: v for v in variants if v.get("variant") == "int8-static" and not v.get("error")}
    cache = predictions if isinstance(predictions, ReplicateCache) else ReplicateCache(predictions)
    train = [r for r in runs if r["kind"] == "train"]
    cells: dict[tuple, list[dict]] = {}
    for r in train:
        cells.setdefault(cell_key(r), []).append(r)
    datasets = ordered((r["dataset"], str(r["train_size"])) for r in train)
    models = ordered(r["model"] for r in train)
    inits = ordered((r["init"] for r in train), BASELINE)
    out = []
    for data, size in datasets:
        for model in models:
            for init in inits:
                group = cells.get((data, size, model, init))
                if group:
                    out.append(_row(group, costs, cost_options, cache, level=level) | _int8_cells(group, int8))
    return out


def _int8_cells(group: list[dict], int8: dict[str, dict]) -> dict:
    checked = [int8[r["run_id"]] for r in group if r["status"] == "done" and r["run_id"] in int8]
    if not checked:
        return {}
    return {"int8_auc_mean": _mean(v["test_auc"] for v in checked),
            "int8_auc_diff": _mean(v["auc_diff"] for v in checked),
            "int8_passed": sum(bool(v["passed"]) for v in checked), "int8_checked": len(checked)}


def _row(group: list[dict], costs: list[dict], cost_options: CostOptions | None, cache: ReplicateCache, *,
         level: float) -> dict:
    data, size, model, init = cell_key(group[0])
    done = [r for r in group if r["status"] == "done" and r["summary"] is not None]
    aucs = [r["test_auc"] for r in done if r["test_auc"] is not None]
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(dataset=data, train_size=size, model=model, init=init, n_seeds=len(aucs),
               n_failed=sum(r["status"] == "failed" for r in group),
               auc_mean=float(np.mean(aucs)) if aucs else None,
               auc_std=float(np.std(aucs, ddof=1)) if len(aucs) > 1 else None,
               auc_min=min(aucs) if len(aucs) > 1 else None, auc_max=max(aucs) if len(aucs) > 1 else None,
               auprc_mean=_mean(r["test_auprc"] for r in done), acc_mean=_mean(r["test_acc"] for r in done),
               train_seconds=_mean(r["train_seconds"] for r in done),
               steps_to_target=_mean(r["steps_to_target"] for r in done),
               run_ids=" ".join(r["run_id"] for r in done), ci_method="")
    if not done:
        return row
    s0: RunSummary = done[0]["summary"]
    row.update(task=s0.task.kind, res_px=s0.res)
    want = cost_key_of(s0, cost_options) if cost_options is not None else None
    cpu, gpu = match_costs(costs, (cost_model(model, s0.spec.scheme), s0.res, s0.in_chans, s0.num_classes), want)
    base = cpu or gpu
    if base is not None:
        row.update(params=base.get("params"), macs=base.get("macs"))
    if cpu is not None:
        row.update(torch_ms=cpu.get("torch_ms"), onnx_ms=cpu.get("onnx_ms"), latency_flag=cpu.get("latency_flag"),
                   int8_onnx_ms=cpu.get("int8_onnx_ms"), onnx_bytes=cpu.get("onnx_bytes"),
                   int8_bytes=cpu.get("int8_bytes"), cost_key=cpu["cost_key"])
    if gpu is not None:
        row.update(gpu_ms=gpu.get("gpu_ms"), gpu_amp_ms=gpu.get("gpu_amp_ms"), gpu_cost_key=gpu["cost_key"])
    row.update(_interval([r for r in done if r["test_auc"] is not None], cache, level=level))
    return row


def _interval(with_auc: list[dict], cache: ReplicateCache, *, level: float) -> dict:
    """``auc_ci_low``, ``auc_ci_high``, ``ci_method`` and the standard errors of a cell's runs."""
    if not with_auc:
        return {}
    task = with_auc[0]["summary"].task
    try:
        reps = cache.replicates([r["run_id"] for r in with_auc], task)
    except (stats.UndefinedMetricError, ValueError) as exc:
        return {"ci_method": f"unavailable: {exc}"}
    est = seed_estimate([r["test_auc"] for r in with_auc], reps)
    out = {"auc_se_test": est.se_test, "auc_se_shared": float(np.sqrt(est.var_shared)), "auc_se": est.se,
           "auc_df": est.df if np.isfinite(est.df) else None}
    if est.n_seeds == 1:
        ci = with_auc[0]["summary"].test_auc_ci
        lo, hi = ci if ci else tuple(np.quantile(reps[0], [(1 - level) / 2, (1 + level) / 2]))
        return out | {"auc_ci_low": float(lo), "auc_ci_high": float(hi),
                      "ci_method": "one seed: bootstrap over test images only (training variance not measured)"}
    lo, hi = est.interval(level, within=(0.0, 1.0))
    return out | {"auc_ci_low": lo, "auc_ci_high": hi,
                  "ci_method": f"mean ± √(z²·c̄ + t²·s²/n) over {est.n_seeds} seeds (s the seed SD on n − 1 "
                               f"degrees of freedom, c̄ the test variance the seeds share: {cache.n_boot} aligned "
                               "bootstrap resamples), cut to [0, 1]"}
