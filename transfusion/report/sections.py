"""The report's main sections: at a glance, and per dataset the summary, each regime minus
random, and accuracy against cost."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from transfusion.core.text import interval, num, points
from transfusion.stats import BORDERLINE, MIN_SEEDS, UNJUDGED

from . import document as D
from .clinical import best_calibrated, calibration_glance
from .costs import COST_MEASURES
from .data import INT8_SUFFIX, RERUNS, ReportData, with_int8
from .pareto import pareto_front
from .plots import CostPoint, accuracy_cost_plot, paired_difference_plot
from .robustness import most_robust
from .schemes import schemes_section
from .verdict_text import method_text, verdict_cells, verdict_counts


def short(dataset: str) -> str:
    """A dataset spec without its options (``synth-retina``), but with how its pixels were made
    when they were not made at the resolution: ``medmnist:pathmnist (from 28 px)``."""
    m = re.search(r"[?&]resize=from:(\d+)", dataset)
    return dataset.split("?")[0] + (f" (from {m.group(1)} px)" if m else "")


def dataset_label(dataset: str, datasets: list[str]) -> str:
    """:func:`short`, with the resolution added where several of ``datasets`` share the short
    name (a grid with a ``res`` axis): ``synth-retina @ 64 px``."""
    base = short(dataset)
    if sum(short(d) == base for d in dict.fromkeys(datasets)) > 1:
        m = re.search(r"[?&]res=(\d+)", dataset)
        if m:
            return f"{base} @ {m.group(1)} px"
    return base


def slug(text: str) -> str:
    """A file-name-safe, unique stem for ``text``."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "x"
    return f"{s}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


def glance(data: ReportData) -> D.Section:
    """Verdicts first (judged, then unjudged with the reason), then one row of recommendations per
    dataset."""
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
    sec.blocks += _glance_verdicts(data)
    sec.blocks += _glance_recommendations(data)
    sec.blocks += _glance_calibration(data)
    sec.blocks += _glance_robustness(data)
    if data.failed:
        sec.blocks.append(D.Para(f"{len(data.failed)} run(s) failed; see 'Failed runs'."))
    return sec


def _glance_verdicts(data: ReportData) -> list:
    rows = [r for r in data.paired if r["verdict"] != "n/a"]
    judged = [r for r in rows if r["verdict"] != UNJUDGED]
    unjudged = [r for r in rows if r["verdict"] == UNJUDGED]
    if not rows:
        return [D.Para("No regime has a random run to be compared with.", lead="Verdicts:")]
    out = [D.Para(f"{verdict_counts(judged, data.margin)}; {len(unjudged)} unjudged"
                  + (" — fewer than " + f"{MIN_SEEDS} seed pairs: training variance not measured" if unjudged else "")
                  + f". Regime − random in AUC points, margin ±{data.margin * 100:g} (fixed before the data: "
                  f"{data.suite.report.margin_reason or 'the suite states no reason'}); the verdicts of a dataset "
                  f"hold together at 95%; ≈ marks a verdict a faithful rerun would change with probability ≥ "
                  f"{BORDERLINE:.0%}.",
                  lead="Verdicts:")]
    cols = ["dataset", "model", "regime − random", "seeds", "difference", "interval", "verdict"]
    names = [d for d, _ in data.datasets]
    sizes = len({size for _, size in data.datasets}) > 1

    def where(r: dict) -> str:  # the train size too when the suite has several
        return dataset_label(r["dataset"], names) + (f" ({r['train_size']})" if sizes else "")

    table = [[where(r), r["model"], r["regime"], str(r["n_seeds"] or 0), *verdict_cells(r)[:2], verdict_cells(r)[3]]
             for r in judged + unjudged]
    out.append(D.Table(cols, table, numeric=frozenset(("seeds", "difference"))))
    return out


def _glance_recommendations(data: ReportData) -> list:
    measures = [m for m in COST_MEASURES if any(r["cost_measure"] == m.key for r in data.recommendations)]
    cols = ["dataset", "best AUC"] + [f"cheapest within δ by {m.name}" for m in measures]
    table = []
    for key in data.datasets:
        rows = [r for r in data.summary if (r["dataset"], r["train_size"]) == key and r["auc_mean"] is not None]
        if not rows:
            continue
        best = max(rows, key=lambda r: r["auc_mean"])
        recs = {r["cost_measure"]: r for r in data.recommendations if (r["dataset"], r["train_size"]) == key}
        label = short(key[0]) + (f" ({key[1]})" if key[1] != "all" else "")
        cells = [label, f"{best['model']} · {best['init']} {num(best['auc_mean'])}"]
        for m in measures:
            rec = recs.get(m.key)
            cells.append("—" if rec is None else f"{rec['model']} · {rec['init']} ({m.fmt(rec['cost'])})"
                         + ("" if rec.get("stability") is None else f", {rec['stability']:.0%} of reruns")
                         + "".join(f"; ≈ {a} · {b}" for a, b in rec["alternatives"]))
        table.append(cells)
    if not table:
        return []
    return [D.Para(f"the cheapest model · regime whose mean AUC is within δ = {data.delta * 100:g} AUC points of "
                   "the best, per cost measure (on equal cost, the regime that needs no pretrained weights). "
                   "≈ names the rows the pick could fall on instead within the noise of the AUC gaps (two "
                   "standard errors): the data do not decide between them. 'N% of reruns': how often a faithful "
                   "rerun (new seeds, the same test images; each cell's mean drawn from its predictive law, "
                   f"{RERUNS} draws) makes the same pick.",
                   lead="Recommendations:"),
            D.Table(cols, table)]


def _glance_calibration(data: ReportData) -> list:
    """Per dataset, the best-calibrated model · regime among those within the margin of the best AUC,
    or that none calibrates measurably better (:func:`~.clinical.best_calibrated`)."""
    items = []
    for key in data.datasets:
        pick = best_calibrated([r for r in data.clinical.calibration if (r["dataset"], r["train_size"]) == key],
                               data.margin)
        if pick:
            items.append(f"{short(key[0])} (train size {key[1]}): {calibration_glance(pick)}")
    if not items:
        return []
    return [D.Para(f"the lowest debiased calibration error (CE) among the rows within the margin ({data.margin * 100:g} "
                   "AUC points) of the best AUC, named best only when its CE² is below every other such row's "
                   "(unpaired seed + test-image intervals, Bonferroni at α = 0.05); see each dataset's 'Calibration "
                   "and operating points'.", lead="Best calibrated:"), D.Bullets(items)]


def _glance_robustness(data: ReportData) -> list:
    """Per dataset with corruption scores, the most robust model · regime within the margin."""
    items = []
    for key in data.datasets:
        best = most_robust([r for r in data.robustness.cells if (r["dataset"], r["train_size"]) == key], data.margin)
        if best:
            items.append(f"{short(key[0])} (train size {key[1]}): {best['model']} · {best['init']} — relative drop "
                         f"{best['drop'] * 100:.1f}% under corruption (mCA {num(best['mca'])}, clean AUC "
                         f"{num(best['clean_auc'])})")
    if not items:
        return []
    return [D.Para(f"the smallest relative AUC drop under corruption among the rows within the margin "
                   f"({data.margin * 100:g} AUC points) of the best clean AUC; see each dataset's 'Robustness'.",
                   lead="Most robust:"), D.Bullets(items)]


def _latency(row: dict, key: str) -> str:
    """A latency cell (ms), marked ``†`` when its cost row is flagged (see the note under the table)."""
    value = row[key]
    return num(value, ".2f") + (" †" if value is not None and row.get("latency_flag") else "")


def dataset_sections(data: ReportData, key: tuple[str, str], figs: Path, summary_csv: Path, paired_csv: Path,
                      pareto_csv: Path) -> list[D.Section]:
    dataset, size = key
    name = dataset_label(dataset, [d for d, _ in data.datasets])
    rows = [r for r in data.summary if (r["dataset"], r["train_size"]) == key]
    task = next((r["task"] for r in rows if r["task"]), "unknown")
    sec = D.Section(f"{name} · train size {size}")
    sec.blocks.append(D.Para(f"dataset {dataset}; task {task}; "
                             f"{len({r['model'] for r in rows})} model(s) × {len({r['init'] for r in rows})} regime(s)."))
    has_gpu = any(r["gpu_ms"] is not None for r in rows)
    cols = ["model", "regime", "seeds", "AUC", "SD", "min–max", "AUC 95% interval", "AUPRC", "accuracy", "res (px)",
            "params (M)", "GMACs", "PyTorch CPU ms", "ONNX Runtime ms"] + (["GPU ms"] if has_gpu else []) + \
        ["train s", "failed"]
    table_rows = []
    for r in rows:
        spread = "—" if r["auc_min"] is None else interval(r["auc_min"], r["auc_max"])
        ci = interval(r["auc_ci_low"], r["auc_ci_high"])
        cells = [r["model"], r["init"], str(r["n_seeds"]), num(r["auc_mean"]), num(r["auc_std"]), spread, ci,
                 num(r["auprc_mean"]), num(r["acc_mean"]),
                 num(r["res_px"], "d"), num(r["params"] and r["params"] / 1e6, ".2f"),
                 num(r["macs"] and r["macs"] / 1e9, ".3f"), _latency(r, "torch_ms"), _latency(r, "onnx_ms")]
        if has_gpu:
            cells.append(num(r["gpu_ms"], ".2f"))
        cells += [num(r["train_seconds"], ".1f"), str(r["n_failed"])]
        table_rows.append(cells)
    methods = sorted({r["ci_method"] for r in rows if r["ci_method"]})
    sec.blocks.append(D.Table(cols, table_rows, caption="Test AUC: mean over seeds, seed-to-seed SD and range, "
                              "95% interval; beside cost (per image at the run's resolution, latency at batch 1)",
                              numeric=frozenset(cols[2:]), csv=summary_csv))
    sec.blocks.append(D.Para("95% interval: " + ("; ".join(methods) if methods else "none available") + ". "
                             + ("" if has_gpu else "GPU latency: not measured for these models (no CUDA cost row).")))
    flagged = sorted({(r["model"], r["latency_flag"]) for r in rows if r.get("latency_flag")})
    if flagged:
        sec.blocks.append(D.Para(
            "; ".join(f"{m}: {why}" for m, why in flagged) + ". Re-measure them on a quiet machine "
            "(`transfusion profile MODEL --res PX`) before reading latencies off these rows.",
            lead="† Latency not to be trusted —"))
    per_label = [r for r in data.per_label if (r["dataset"], r["train_size"]) == key]
    if per_label:
        labels = [k for k in per_label[0] if k not in ("dataset", "train_size", "model", "init", "n_seeds")]
        sec.blocks.append(D.Table(["model", "regime", *labels], [[r["model"], r["init"], *(num(r[k]) for k in labels)]
                                                                 for r in per_label],
                                  caption="AUC per label (mean over seeds)", numeric=frozenset(labels)))
    out = [sec]
    schemes = schemes_section(rows, data.delta)
    if schemes is not None:
        out.append(schemes)
    out.append(_paired_section(data, key, figs, paired_csv))
    # accuracy vs cost
    sub = D.Section("Accuracy against cost", level=3)
    recs = {r["cost_measure"]: r for r in data.recommendations if (r["dataset"], r["train_size"]) == key}
    for m in COST_MEASURES:
        pts = [r for r in with_int8(rows, m.key) if r["auc_mean"] is not None and r.get(m.key) is not None]
        if not pts:
            sub.blocks.append(D.Para(f"AUC against {m.name}: not measured for these models."))
            continue
        marks = [CostPoint(r["model"], r["init"].removesuffix(INT8_SUFFIX), float(r[m.key]), float(r["auc_mean"]),
                           r["auc_ci_low"], r["auc_ci_high"], int8=r["init"].endswith(INT8_SUFFIX)) for r in pts]
        front = pareto_front([p.cost for p in marks], [p.auc for p in marks], tolerance=data.delta)
        rec = recs[m.key]
        rec_i = next(i for i, r in enumerate(pts) if (r["model"], r["init"]) == (rec["model"], rec["init"]))
        png = accuracy_cost_plot(marks, front, rec_i, figs / f"{slug(dataset + size)}-auc-vs-{m.key}.png",
                                 xlabel=m.axis + " (log scale)", delta=data.delta,
                                 title=f"{name} (train size {size}): AUC against {m.name}")
        sub.blocks.append(D.Figure(png, f"AUC against {m.name}. Recommendation (cheapest within "
                                        f"{data.delta * 100:g} AUC points of the best): {rec['model']} · "
                                        f"{rec['init']} — AUC {num(rec['auc_mean'])} at {m.fmt(rec['cost'])}"
                                        + (" (within noise of it: " + "; ".join(f"{a} · {b}" for a, b in
                                                                                rec["alternatives"]) + ")"
                                           if rec["alternatives"] else "") + "; best "
                                        f"{rec['best_model']} · {rec['best_init']} {num(rec['best_auc'])} at "
                                        f"{m.fmt(rec['best_cost'])}. Pareto front: "
                                        + "; ".join(f"{a} · {b}" + (" ≈" if (a, b) in rec["borderline"] else "")
                                                    for a, b in rec["front"])
                                        + (" (≈ borderline: its place turns on a gap within noise of δ)"
                                           if any(f in rec["borderline"] for f in rec["front"]) else "") + ".",
                                        csv=pareto_csv))
    out.append(sub)
    if any(r.get("int8_checked") for r in rows):
        out.append(_int8_section(rows, data.margin))
    return out


def _int8_section(rows: list[dict], margin: float) -> D.Section:
    """fp32 against int8 per cell: latency, size, AUC and how many seeds passed the check."""
    sub = D.Section("int8 deployment check", level=3)
    sub.blocks.append(D.Para(
        "Each trained run's model exported to ONNX and quantised to static int8 (QDQ, per-channel weights, "
        "activations calibrated on training images); both score the run's test split in ONNX Runtime. "
        f"A run passes when the 95% paired-bootstrap interval of int8 − fp32 AUC lies above −{margin * 100:g} AUC "
        "points (the suite's margin). Latency: batch 1, ONNX Runtime CPU, the model's cost profile; size: graph "
        "and weights."))
    cols = ["model", "regime", "fp32 ms", "int8 ms", "speed-up", "fp32 MB", "int8 MB", "AUC fp32", "AUC int8",
            "int8 − fp32 (points)", "seeds passed"]
    table = []
    for r in rows:
        if not r.get("int8_checked"):
            continue
        speed = r["onnx_ms"] / r["int8_onnx_ms"] if r.get("onnx_ms") and r.get("int8_onnx_ms") else None
        table.append([r["model"], r["init"], _latency(r, "onnx_ms"), num(r["int8_onnx_ms"], ".2f"),
                      num(speed, ".2f") + ("×" if speed else ""), num(r["onnx_bytes"] and r["onnx_bytes"] / 1e6, ".2f"),
                      num(r["int8_bytes"] and r["int8_bytes"] / 1e6, ".2f"), num(r["auc_mean"]),
                      num(r["int8_auc_mean"]), num(r["int8_auc_diff"] * 100, "+.2f"),
                      f"{r['int8_passed']}/{r['int8_checked']}"])
    sub.blocks.append(D.Table(cols, table, caption="fp32 and int8 side by side (AUC: mean over the checked seeds; "
                              "'AUC fp32' is the PyTorch test AUC of the whole cell)", numeric=frozenset(cols[2:])))
    return sub


def _paired_section(data: ReportData, key: tuple[str, str], figs: Path, paired_csv: Path) -> D.Section:
    dataset, size = key
    sub = D.Section("Each regime minus random, paired by seed", level=3)
    pr = [r for r in data.paired if (r["dataset"], r["train_size"]) == key]
    if not pr:
        sub.blocks.append(D.Para("No regime other than random with a random run to pair with."))
        return sub
    k = max((r["family_size"] or 0) for r in pr)
    sub.blocks.append(D.Para(
        "Mean over seed pairs of the test-AUC difference (AUC points; both runs of a pair share the seed and the "
        "test images). " + method_text(k, data.margin, data.n_boot)))
    seeds = {}
    for s in data.paired_seeds:
        if (s["dataset"], s["train_size"]) == key:
            seeds.setdefault((s["model"], s["regime"]), []).append(s)
    pcols = ["model", "regime", "seeds", "AUC regime", "AUC random", "difference", "per seed", "interval",
             "equivalence interval", "verdict", "note"]
    sub.blocks.append(D.Table(pcols, [[r["model"], r["regime"], str(r["n_seeds"] or 0), num(r["auc_regime"]),
                                       num(r["auc_baseline"]), *verdict_cells(r)[:1],
                                       ", ".join(points(s["diff"], "+.1f") for s in seeds.get((r["model"], r["regime"]), [])),
                                       *verdict_cells(r)[1:3], r.get("label") or r["verdict"],
                                       "; ".join(x for x in (r["reason"], r["note"]) if x)] for r in pr],
                              numeric=frozenset(pcols[2:6]), csv=paired_csv))
    ok = [r for r in pr if r["diff"] is not None]
    if ok:
        png = paired_difference_plot(
            [f"{r['model']} · {r['regime']} ({r['n_seeds']} seed{'s' if r['n_seeds'] != 1 else ''})" for r in ok],
            [r["diff"] for r in ok], [r["ci_low"] for r in ok], [r["ci_high"] for r in ok], [r["verdict"] for r in ok],
            figs / f"{slug(dataset + size)}-paired.png", margin=data.margin,
            seed_diffs=[[s["diff"] for s in seeds.get((r["model"], r["regime"]), [])] for r in ok],
            title=f"{short(dataset)} (train size {size}): regime − random")
        sub.blocks.append(D.Figure(png, "Each regime minus random: the mean difference over seed pairs (AUC points) "
                                        "with its interval, each seed pair's difference as a small dot; the shaded "
                                        "band is the equivalence margin.", csv=paired_csv))
    return sub


def method_section(data: ReportData) -> D.Section:
    sec = D.Section("How to read this report")
    sec.blocks.append(D.Bullets([
        "AUC: the mean over a row's seeds; SD (ddof 1) and min–max are the seed-to-seed spread — empty for one "
        "seed, where training variance was not measured.",
        "95% interval of a row: one seed — the run's bootstrap over test images only; several seeds — mean ± "
        "√(z²·c̄ + t²·s²/n): s the seed-to-seed SD (n − 1 degrees of freedom), c̄ the test variance every seed "
        "shares (the between-seed covariance of aligned bootstrap resamples; seeds cannot average it away), cut to "
        "AUC's range [0, 1]. It covers what another set of seeds on the same kind of test sample would give.",
        f"A verdict compares a regime with random, seed pair by seed pair, on that comparison's own seeds (nothing is "
        f"pooled between regimes: their noise can differ, and three to five seeds cannot show it alike). It is given "
        f"only with at least {MIN_SEEDS} seed pairs, because a single run measures the test sample, not training "
        "randomness — which is what changes between seeds and between machines (another CPU rounds differently and "
        "trains a different model). Better / worse: the interval at 1 − 0.05/K excludes 0. Within the margin "
        f"(±{data.margin * 100:g} AUC points): the interval at 1 − 0.10/K lies inside it (two one-sided tests). A "
        "significant difference inside the margin reads 'better (within ±m)'. Inconclusive means the data cannot "
        "tell: it is not evidence of equivalence. With K judged comparisons per dataset (Bonferroni), every verdict "
        "of a dataset holds together at 95%; the coverage of this rule is simulated in docs/report.md.",
        "≈ borderline: a faithful rerun (new seeds, the same test images) would reach another verdict with "
        f"probability ≥ {BORDERLINE:.0%} (the rerun's mean and seed SD drawn from their predictive distribution); the flip "
        "probability is the column flip of paired.csv. `transfusion compare` lists such moves without counting "
        "them, unless the two estimates differ beyond rerun noise.",
        "What a verdict does not say: that a regime helps on other data, at another training length or size, or "
        "with real ImageNet weights — only that on this task, with this recipe and these weight sources, the "
        "difference lies where the interval says.",
        "Pareto front: rows that no row of lower or equal cost beats by more than δ in AUC. A row whose place on "
        "or off the front turns on a gap within two standard errors of δ is borderline (≈ in the captions, "
        "`borderline` in pareto.csv): another seed or machine can move it, and `transfusion compare` does not "
        "count its moves as changes. Recommendation: the cheapest row whose mean "
        f"AUC is within δ = {data.delta * 100:g} AUC points of the best, per cost measure; among rows of equal cost "
        "(one model under several regimes) the one that needs no pretrained weights when it qualifies. Rows after "
        "≈ are picks the noise of the AUC gaps (two standard errors) could make instead: the data do not decide "
        "between them.",
        "MACs: fvcore multiply-adds per image at the run's resolution; latency: median of timed runs at batch 1 on "
        "the machine named in the Environment section.",
        "See docs/report.md for every section and column.",
    ]))
    return sec
