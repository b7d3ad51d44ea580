"""Label efficiency in the report: for a suite with several training sizes, per dataset × model,
the size from which random init is equivalent (within the margin) to the model's best transfer
regime — the crossover of :mod:`transfusion.stats.crossover` — with its bootstrap interval, and
AUC against training size per regime with the crossover marked.

A model qualifies with at least two training sizes where both random and a regime that needs
pretrained weights ran (fine-tuning: arms under other training schemes are other networks and
stay out), each such cell with at least :data:`~transfusion.stats.MIN_SEEDS` seeds.
The *best transfer regime* is the one with the highest AUC averaged over those sizes (one regime
for the whole curve, so the gap is a curve of one comparison). Sizes are the runs' actual numbers
of training images (a fraction or ``all`` resolved), averaged over the cell's seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transfusion.core.text import num
from transfusion.harness.summary import BASELINE
from transfusion.stats import MIN_SEEDS
from transfusion.stats.crossover import estimate_crossover
from transfusion.transfer import parse_regime, regime_of

from . import document as D

CROSSOVER_COLUMNS = ("dataset", "model", "regime", "state", "size", "size_low", "size_high", "sizes", "gaps",
                     "margin", "n_seeds", "statement")


def _needs_source(init: str) -> bool:
    try:
        return parse_regime(regime_of(init)).needs_source
    except ValueError:
        return False


def _curves(runs: list[dict]) -> dict[str, dict[float, dict[int, float]]]:
    """regime → training images → {seed: test AUC} of one dataset × model's done fine-tuning runs
    (an arm under another training scheme is another network: not on these curves)."""
    by_cell: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        if r.get("scheme", "finetune") != "finetune":
            continue
        by_cell.setdefault((r["init"], str(r["train_size"])), []).append(r)
    out: dict[str, dict[float, dict[int, float]]] = {}
    for (init, _), cell in by_cell.items():
        n = float(np.mean([r["summary"].n_train for r in cell]))
        out.setdefault(init, {})[n] = {int(r["seed"]): float(r["test_auc"]) for r in cell}
    return out


def statement(state: str, size: float | None, low: float | None, high: float | None, regime: str) -> str:
    """The crossover in words."""
    if state == "not-reached":
        return f"random init does not reach {regime} within the margin at any size tried: the crossover lies beyond them"
    span = f"{num(low, '.0f')}–{'beyond the sizes tried' if high is None or not np.isfinite(high) else num(high, '.0f')}"
    if state == "from-start":
        return (f"random init is within the margin of {regime} already at the smallest size ({size:.0f} images): "
                f"the sizes do not bracket the crossover (95% interval {span})")
    return f"from about {size:.0f} training images random init is within the margin of {regime} (95% interval {span})"


def crossover_rows(runs: list[dict], *, margin: float, n_boot: int = 2000, level: float = 0.95,
                   seed: int = 0) -> list[dict]:
    """One row per dataset × model that qualifies (see the module docstring), with the columns of
    :data:`CROSSOVER_COLUMNS` and its curves (``curves``: regime → [(size, mean AUC, SD, seeds)])
    for the figure."""
    done = [r for r in runs if r["kind"] == "train" and r["status"] == "done" and r["summary"] is not None
            and r["test_auc"] is not None]
    rows = []
    for dataset in dict.fromkeys(r["dataset"] for r in done):
        for model in dict.fromkeys(r["model"] for r in done if r["dataset"] == dataset):
            curves = _curves([r for r in done if (r["dataset"], r["model"]) == (dataset, model)])
            base = curves.get(BASELINE, {})
            best, best_auc = None, -np.inf
            for init, curve in curves.items():
                if not _needs_source(init):
                    continue
                sizes = [n for n in curve if n in base and min(len(curve[n]), len(base[n])) >= MIN_SEEDS]
                if len(sizes) < 2:
                    continue
                mean = float(np.mean([np.mean(list(curve[n].values())) for n in sizes]))
                if mean > best_auc:
                    best, best_auc = init, mean
            if best is None:
                continue
            sizes = sorted(n for n in curves[best] if n in base and min(len(curves[best][n]), len(base[n])) >= MIN_SEEDS)
            est = estimate_crossover({n: base[n] for n in sizes}, {n: curves[best][n] for n in sizes}, margin=margin,
                                     n_boot=n_boot, level=level, seed=seed)
            high = None if not np.isfinite(est.high) else est.high
            rows.append({
                "dataset": dataset, "model": model, "regime": best, "state": est.state, "size": est.size,
                "size_low": est.low, "size_high": high, "sizes": " ".join(f"{n:.0f}" for n in est.sizes),
                "gaps": " ".join(f"{g * 100:+.2f}" for g in est.gaps), "margin": margin,
                "n_seeds": min(min(len(base[n]), len(curves[best][n])) for n in sizes),
                "statement": statement(est.state, est.size, est.low, high, best),
                "curves": {init: [(n, float(np.mean(list(c[n].values()))),
                                   float(np.std(list(c[n].values()), ddof=1)) if len(c[n]) > 1 else 0.0, len(c[n]))
                                  for n in sorted(c)]
                           for init, c in curves.items()},
            })
    return rows


def efficiency_section(rows: list[dict], figs: Path, csv: Path, *, margin: float) -> D.Section:
    """The 'Label efficiency' section: the crossover table and one figure per dataset × model."""
    from .plots import efficiency_plot
    from .sections import short, slug

    sec = D.Section("Label efficiency: when does random init catch up?")
    sec.blocks.append(D.Para(
        "Per dataset × model with at least two training sizes (each with ≥ "
        f"{MIN_SEEDS} seeds of random and of a transfer regime): the gap AUC(best transfer regime) − AUC(random) "
        "at each size (mean over seed pairs), and the crossover — the smallest size from which the gap stays within "
        f"the margin ({margin * 100:g} AUC points), interpolated in log size — with a 95% interval from a "
        "parametric bootstrap over seeds (each size's gap drawn as mean + SE × t, SE from the seed pairs). The "
        "interval covers training randomness; the test images' own sampling error is not in it. Fine-tuning "
        "runs only: an arm under another training scheme is another network."))
    cols = ["dataset", "model", "best transfer regime", "sizes (images)", "gap (AUC points)", "crossover (images)",
            "95% interval", "seeds", "reading"]
    table = []
    for r in rows:
        hi = "beyond" if r["size_high"] is None else num(r["size_high"], ".0f")
        table.append([short(r["dataset"]), r["model"], r["regime"], r["sizes"], r["gaps"],
                      "—" if r["size"] is None else (("≤ " if r["state"] == "from-start" else "") + f"{r['size']:.0f}"),
                      f"{num(r['size_low'], '.0f')}–{hi}", str(r["n_seeds"]), r["statement"]])
    sec.blocks.append(D.Table(cols, table, numeric=frozenset({"seeds"}), csv=csv))
    for r in rows:
        png = efficiency_plot(r["curves"], r["size"], r["size_low"], r["size_high"],
                              figs / f"{slug(r['dataset'] + r['model'])}-label-efficiency.png",
                              title=f"{short(r['dataset'])} · {r['model']}: AUC against training size")
        sec.blocks.append(D.Figure(png, f"{r['model']} on {short(r['dataset'])}: test AUC (mean over seeds, ± SD) "
                                        f"against training images per regime; {r['statement']}."))
    return sec
