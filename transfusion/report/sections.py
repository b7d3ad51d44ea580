"""The report's main sections: at a glance, and per dataset the summary, each regime minus
random, and accuracy against cost."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from transfusion.core.text import num, points
from transfusion.harness.summary import ordered

from . import document as D
from .costs import COST_MEASURES
from .data import ReportData
from .pareto import pareto_front
from .plots import CostPoint, accuracy_cost_plot, paired_difference_plot


def short(dataset: str) -> str:
    """A dataset spec without its options (``synth-retina``)."""
    return dataset.split("?")[0]


def slug(text: str) -> str:
    """A file-name-safe, unique stem for ``text``."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "x"
    return f"{s}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def verdict_counts(rows: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "none"


def glance(data: ReportData) -> D.Section:
    sec = D.Section("At a glance")
    if not data.summary:
        sec.blocks.append(D.Para("The store holds no training runs yet."))
        return sec
    weak = [r for r in data.sources if r["weak"]]
    if weak:
        sec.blocks.append(D.Para(
            "; ".join(f"{r['model']} ← {short(r['dataset'] or '')} (test AUC {num(r['test_auc'])} after "
                      f"{r['steps']} steps)" for r in weak)
            + ". These sources are near chance: the transfer, Mean-Var and transfusion rows of those models "
              "measure transfer from a barely trained network, not from a good source. See 'Weight sources'.",
            lead="Weak weight sources:"))
    for data_key in data.datasets:
        dataset, size = data_key
        rows = [r for r in data.summary if (r["dataset"], r["train_size"]) == data_key and r["auc_mean"] is not None]
        head = f"{short(dataset)} (train size {size}):"
        if not rows:
            sec.blocks.append(D.Para("no finished runs.", lead=head))
            continue
        best = max(rows, key=lambda r: r["auc_mean"])
        items = [f"Best AUC: {best['model']} · {best['init']} {num(best['auc_mean'])} "
                 f"(95% interval {num(best['auc_ci_low'])}–{num(best['auc_ci_high'])}, {best['n_seeds']} seed(s))."]
        for rec in (r for r in data.recommendations if (r["dataset"], r["train_size"]) == data_key):
            m = next(c for c in COST_MEASURES if c.key == rec["cost_measure"])
            items.append(f"Cheapest within {data.delta * 100:g} AUC points of the best, by {m.name}: "
                         f"{rec['model']} · {rec['init']} (AUC {num(rec['auc_mean'])}, {m.fmt(rec['cost'])}; "
                         f"the best costs {m.fmt(rec['best_cost'])}). Pareto front: "
                         + "; ".join(f"{a} · {b}" for a, b in rec["front"]) + ".")
        pooled = [r for r in data.paired if (r["dataset"], r["train_size"]) == data_key]
        for regime in ordered(r["regime"] for r in pooled):
            rr = [r for r in pooled if r["regime"] == regime]
            has_mean = {r["model"] for r in rr if r["seed"] == "mean"}
            use = [r for r in rr if r["seed"] == "mean" or r["model"] not in has_mean]
            detail = "; ".join(f"{r['model']} {points(r['diff'])} [{points(r['ci_low'])}, {points(r['ci_high'])}] "
                               f"{r['verdict']}" for r in use)
            items.append(f"{regime} − random (AUC points, margin ±{data.margin * 100:g}): {verdict_counts(use)} — "
                         f"{detail}.")
        sec.blocks += [D.Para("", lead=head), D.Bullets(items)]
    if data.failed:
        sec.blocks.append(D.Para(f"{len(data.failed)} run(s) failed; see 'Failed runs'."))
    return sec


def dataset_sections(data: ReportData, key: tuple[str, str], figs: Path, summary_csv: Path, paired_csv: Path,
                      pareto_csv: Path) -> list[D.Section]:
    dataset, size = key
    rows = [r for r in data.summary if (r["dataset"], r["train_size"]) == key]
    task = next((r["task"] for r in rows if r["task"]), "unknown")
    sec = D.Section(f"{short(dataset)} · train size {size}")
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
        cells = [r["model"], r["init"], str(r["n_seeds"]), auc, ci, num(r["auprc_mean"]), num(r["acc_mean"]),
                 num(r["res_px"], "d"), num(r["params"] and r["params"] / 1e6, ".2f"),
                 num(r["macs"] and r["macs"] / 1e9, ".3f"), num(r["torch_ms"], ".2f"), num(r["onnx_ms"], ".2f")]
        if has_gpu:
            cells.append(num(r["gpu_ms"], ".2f"))
        cells += [num(r["train_seconds"], ".1f"), str(r["n_failed"])]
        table_rows.append(cells)
    methods = sorted({r["ci_method"] for r in rows if r["ci_method"]})
    sec.blocks.append(D.Table(cols, table_rows, caption="AUC over seeds beside cost (cost per image at the run's "
                              "resolution, latency at batch 1)", numeric=frozenset(cols[2:]), csv=summary_csv))
    sec.blocks.append(D.Para("95% interval: " + ("; ".join(methods) if methods else "none available") + ". "
                             + ("" if has_gpu else "GPU latency: not measured for these models (no CUDA cost row).")))
    per_label = [r for r in data.per_label if (r["dataset"], r["train_size"]) == key]
    if per_label:
        labels = [k for k in per_label[0] if k not in ("dataset", "train_size", "model", "init", "n_seeds")]
        sec.blocks.append(D.Table(["model", "regime", *labels], [[r["model"], r["init"], *(num(r[k]) for k in labels)]
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
        sub.blocks.append(D.Table(pcols, [[r["model"], r["regime"], str(r["seed"]), num(r["auc_regime"]),
                                           num(r["auc_baseline"]), points(r["diff"]),
                                           "—" if r["ci_low"] is None else f"[{points(r['ci_low'])}, {points(r['ci_high'])}]",
                                           r["verdict"], r["note"] or ""] for r in pr],
                                  numeric=frozenset(pcols[2:7]), csv=paired_csv))
        ok = [r for r in pr if r["diff"] is not None]
        if ok:
            png = paired_difference_plot(
                [f"{r['model']} · {r['regime']} · " + (f"seed {r['seed']}" if r["seed"] != "mean" else "mean over seeds") for r in ok], [r["diff"] for r in ok],
                [r["ci_low"] for r in ok], [r["ci_high"] for r in ok], [r["verdict"] for r in ok],
                figs / f"{slug(dataset + size)}-paired.png", margin=data.margin,
                title=f"{short(dataset)} (train size {size}): regime − random")
            sub.blocks.append(D.Figure(png, "Each regime minus random: paired differences in AUC points with 95% "
                                       "intervals; the shaded band is the equivalence margin.", csv=paired_csv))
    out.append(sub)

    # accuracy vs cost
    sub = D.Section("Accuracy against cost", level=3)
    recs = {r["cost_measure"]: r for r in data.recommendations if (r["dataset"], r["train_size"]) == key}
    for m in COST_MEASURES:
        pts = [r for r in rows if r["auc_mean"] is not None and r.get(m.key) is not None]
        if not pts:
            sub.blocks.append(D.Para(f"AUC against {m.name}: not measured for these models."))
            continue
        marks = [CostPoint(r["model"], r["init"], float(r[m.key]), float(r["auc_mean"]), r["auc_ci_low"],
                            r["auc_ci_high"]) for r in pts]
        front = pareto_front([p.cost for p in marks], [p.auc for p in marks])
        rec = recs[m.key]
        rec_i = next(i for i, r in enumerate(pts) if (r["model"], r["init"]) == (rec["model"], rec["init"]))
        png = accuracy_cost_plot(marks, front, rec_i, figs / f"{slug(dataset + size)}-auc-vs-{m.key}.png",
                                 xlabel=m.axis + " (log scale)", delta=data.delta,
                                 title=f"{short(dataset)} (train size {size}): AUC against {m.name}")
        sub.blocks.append(D.Figure(png, f"AUC against {m.name}. Recommendation (cheapest within "
                                        f"{data.delta * 100:g} AUC points of the best): {rec['model']} · "
                                        f"{rec['init']} — AUC {num(rec['auc_mean'])} at {m.fmt(rec['cost'])}; best "
                                        f"{rec['best_model']} · {rec['best_init']} {num(rec['best_auc'])} at "
                                        f"{m.fmt(rec['best_cost'])}.", csv=pareto_csv))
    out.append(sub)
    return out


def method_section(data: ReportData) -> D.Section:
    sec = D.Section("How to read this report")
    sec.blocks.append(D.Bullets([
        "AUC mean ± std: over the seeds of a row (std with ddof 1; none for one seed).",
        "95% interval: one seed — the run's percentile bootstrap over test images; several seeds — a two-level "
        "bootstrap resampling the test images (the same rows for every seed) and the seeds.",
        f"Regime − random: paired bootstrap over the same test images ({data.n_boot} resamples); verdicts within "
        f"±{data.margin * 100:g} AUC points (transfusion.stats.equivalence_verdict).",
        "Pareto front: rows no other row beats on both AUC and cost. Recommendation: the cheapest row whose AUC is "
        f"within δ = {data.delta * 100:g} AUC points of the best, per cost measure.",
        "MACs: fvcore multiply-adds per image at the run's resolution; latency: median of timed runs at batch 1 on "
        "the machine named in the Environment section.",
        "See docs/report.md for every section and column.",
    ]))
    return sec


