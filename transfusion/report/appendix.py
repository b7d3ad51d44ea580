"""The report's supporting sections: weight sources, the paper comparison, the analysis
studies, exported models, failed runs and the environment."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from transfusion.core.files import write_csv
from transfusion.core.text import num

from . import document as D
from .data import FAILED_COLUMNS, PAPER_COLUMNS, SOURCE_COLUMNS, WEAK_SOURCE_AUC, ReportData
from .paper import PAPER, paper_table
from .sections import short

COST_COLUMNS = ("cost_key", "model", "res", "in_chans", "num_classes", "batch", "device", "params", "macs",
                "torch_ms", "torch_p95_ms", "torch_img_s", "onnx_ms", "onnx_p95_ms", "onnx_max_rel_err", "gpu_ms",
                "gpu_amp_ms", "threads", "load", "latency_flag", "cpu",
                "cores", "gpu", "torch", "onnxruntime", "platform", "error")
EXPORT_COLUMNS = ("export_id", "run_id", "model", "dataset", "init", "passed", "max_abs_err", "max_rel_err",
                  "auc_torch", "auc_onnx", "auc_diff", "ort_ms_batch1", "ort_ms_batchN", "batch", "onnx_path",
                  "created")


def sources_section(data: ReportData, tabs: Path) -> D.Section:
    sec = D.Section("Weight sources")
    csv_path = write_csv(tabs / "sources.csv", SOURCE_COLUMNS, data.sources)
    if not data.sources:
        sec.blocks.append(D.Para("No run used pretrained weights (only from-scratch regimes)."))
        return sec
    sec.blocks.append(D.Para(
        "Where the weights of the transfer, Mean-Var and transfusion regimes came from. A pretraining run's "
        f"own test AUC (on its source task) says how much there was to transfer; below {WEAK_SOURCE_AUC} it is "
        "flagged weak."))
    shared = [r for r in data.sources if r["seeds"] > 1 and r["source"].startswith("run:")]
    if shared:
        sec.blocks.append(D.Para(
            f"{len(shared)} pretraining run(s) serve several training seeds each: the seeds of a regime that needs "
            "weights vary its training, not its source, so its seed-to-seed spread, intervals and verdicts leave out "
            "the randomness of pretraining and hold for this source — another pretraining (another seed or machine) "
            "can move them. With [source] seed = \"per-seed\" every training seed gets its own pretraining run."))
    cols = ["model", "source", "source task", "steps", "source test AUC", "source accuracy", "runs using it",
            "seeds", "quality"]
    sec.blocks.append(D.Table(cols, [[r["model"], r["origin"], short(r["dataset"] or "") or "—",
                                      "" if r["steps"] is None else str(r["steps"]), num(r["test_auc"]),
                                      num(r["test_acc"]), str(r["used_by"]), str(r["seeds"]), r["quality"]]
                                     for r in data.sources],
                              numeric=frozenset(cols[3:8]), csv=csv_path))
    return sec


def paper_section(data: ReportData, tabs: Path) -> D.Section:
    sec = D.Section("Comparison with the paper")
    key = data.suite.report.paper
    if not key:
        sec.blocks.append(D.Para(f"This suite sets no [report] paper table (one of {', '.join(sorted(PAPER))}); "
                                 "nothing to compare."))
        return sec
    table = paper_table(key)
    csv_path = write_csv(tabs / "paper.csv", PAPER_COLUMNS, data.paper)
    sec.blocks.append(D.Para(f"{table.title}. Source: {table.source}. {table.note} Differences are ours − paper "
                             "in AUC points; an empty paper cell is a number this project has not verified."))
    cols = ["model", "regime", "paper AUC (%)", "ours AUC (%)", "ours std", "ours − paper", "seeds", "note"]
    sec.blocks.append(D.Table(cols, [[r["model"], r["init"], num(r["paper_auc_pct"], ".1f"),
                                      num(r["ours_auc_pct"], ".1f"), num(r["ours_std_pct"], ".1f"),
                                      num(r["diff_pct"], "+.1f"), str(r["n_seeds"]), r["note"]] for r in data.paper],
                              numeric=frozenset(cols[2:7]), csv=csv_path))
    return sec


def studies_sections(study_out: list, err: str | None) -> list[D.Section]:
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


def exports_section(data: ReportData, tabs: Path) -> D.Section:
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
    csv_path = write_csv(tabs / "exports.csv", EXPORT_COLUMNS, rows)
    cols = ["run", "model", "regime", "parity", "max rel err", "AUC torch", "AUC ONNX", "ORT ms (b=1)",
            "ORT ms (b=N)", "file", "exported"]
    sec.blocks.append(D.Table(cols, [[str(r["run_id"]), str(r["model"]), str(r["init"]),
                                      "passed" if r["passed"] else "FAILED", num(r["max_rel_err"], ".2e"),
                                      num(r["auc_torch"], ".4f"), num(r["auc_onnx"], ".4f"), num(r["ort_ms_batch1"], ".2f"),
                                      f"{num(r['ort_ms_batchN'], '.2f')} (N={r['batch']})", str(r["onnx_path"]),
                                      r["created"]] for r in rows],
                              numeric=frozenset(cols[4:9]), csv=csv_path))
    return sec


def failed_section(data: ReportData, tabs: Path) -> D.Section:
    sec = D.Section("Failed runs")
    csv_path = write_csv(tabs / "failed.csv", FAILED_COLUMNS, data.failed + data.unfinished)
    if not data.failed:
        sec.blocks.append(D.Para("No run failed."))
    else:
        cols = ["run", "kind", "model", "dataset", "regime", "seed", "train size", "error"]
        sec.blocks.append(D.Table(cols, [[r["run_id"], r["kind"], r["model"], short(r["dataset"] or ""), r["init"],
                                          str(r["seed"]), str(r["train_size"]), r["error"]] for r in data.failed],
                                  csv=csv_path))
    if data.unfinished:
        sec.blocks.append(D.Para(f"{len(data.unfinished)} run(s) not finished (pending or running): "
                                 + ", ".join(r["run_id"] for r in data.unfinished) + "."))
    return sec


def _with_tail(median: float | None, p95: float | None) -> str:
    """``"3.12 (3.40)"``: a latency's median and, where measured, its p95 (ms)."""
    return num(median, ".2f") + ("" if p95 is None else f" ({p95:.2f})")


def environment_section(data: ReportData, tabs: Path, env: dict) -> D.Section:
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
    csv_path = write_csv(tabs / "costs.csv", COST_COLUMNS, crow)
    if crow:
        cols = ["cost key", "device", "machine", "torch", "onnxruntime", "threads", "other load (cores)",
                "PyTorch ms (p95)", "ONNX Runtime ms (p95)", "latency flag / error"]
        sec.blocks.append(D.Table(cols, [[r["cost_key"], str(r["device"]),
                                          f"{r['cpu']}, {r['cores']} cores" + (f", {r['gpu']}" if r["gpu"] else ""),
                                          str(r["torch"]), str(r["onnxruntime"]), num(r["threads"], "d"),
                                          num(r["load"], ".1f"), _with_tail(r["torch_ms"], r["torch_p95_ms"]),
                                          _with_tail(r["onnx_ms"], r["onnx_p95_ms"]),
                                          "; ".join(str(x) for x in (r["latency_flag"], r["error"]) if x)]
                                         for r in crow],
                                  caption="Every cost figure and the machine that measured it: the thread count "
                                          "the CPU latencies used, the cores other processes kept busy while they "
                                          "were timed, median and p95 of the batch-1 latencies, and why a latency "
                                          "is not to be trusted (flagged)", csv=csv_path))
    else:
        sec.blocks.append(D.Para("The store holds no cost profile (suite [cost] disabled or not run yet)."))
    if data.train_devices:
        sec.blocks.append(D.Para(", ".join(data.train_devices), lead="Training device(s):"))
    if s.toml:
        sec.blocks.append(D.Code(s.toml, "toml", summary="suite TOML"))
    return sec


