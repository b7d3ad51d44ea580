"""Label efficiency in the report: for a suite with several training sizes, per dataset × model,
when random init catches up with the model's best transfer regime — the crossover of
:mod:`transfusion.stats.crossover` — and AUC against training size per regime with it marked.

Two numbers, in training images, from the gap ``AUC(best transfer regime) − AUC(random)`` at
each size (mean over seed pairs, AUC points in the text; its uncertainty has the seed part and
the test-image part every seed shares, from aligned bootstrap replicates):

- **within the margin from** (the claim): the smallest size from which the gap's one-sided
  ``level`` upper bound stays below the margin at every larger size tried, interpolated in log
  size; ``≤`` the smallest size when it is below the margin everywhere, *not shown* when it is
  not below it at the largest;
- **point crossing**: where the point gap reaches the margin, with a ``level`` interval for where
  the true gap does; an end the bootstrap draws put outside the sizes tried is censored and shown
  as such (``≤ 210``, ``> 840 (beyond the sizes tried)``), never as a number.

A model qualifies with at least two training sizes where both random and a regime that needs
pretrained weights ran (fine-tuning: arms under other training schemes are other networks and
stay out), each such cell with at least :data:`~transfusion.stats.MIN_SEEDS` seeds.
The *best transfer regime* is the one with the highest AUC averaged over those sizes (one regime
for the whole curve, so the gap is a curve of one comparison). Sizes are the runs' actual numbers
of training images (a fraction or ``all`` resolved), averaged over the cell's seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from transfusion.core.text import num
from transfusion.harness.summary import BASELINE
from transfusion.stats import MIN_SEEDS, Arm, SeedEstimate
from transfusion.stats.crossover import (
    Crossover,
    estimate_crossover,
    gap_estimate,
    shared_test_covariance,
)
from transfusion.transfer import parse_regime, regime_of

from . import document as D

CROSSOVER_COLUMNS = ("dataset", "model", "regime", "demonstrated_state", "demonstrated", "bound_level", "state",
                     "size", "size_low", "size_high", "censored", "level", "sizes", "gaps", "gap_se", "upper",
                     "margin", "n_seeds", "test_error", "statement")

#: builds a cell's arm of the comparison engine from its runs (``report.data.cell_arm`` with a cache)
ArmBuilder = Callable[[list[dict]], Arm]


def _needs_source(init: str) -> bool:
    try:
        return parse_regime(regime_of(init)).needs_source
    except ValueError:
        return False


def _cells(runs: list[dict]) -> dict[str, dict[float, list[dict]]]:
    """regime → training images → the done fine-tuning runs of one dataset × model (an arm under
    another training scheme is another network: not on these curves)."""
    by_cell: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        if r.get("scheme", "finetune") != "finetune":
            continue
        by_cell.setdefault((r["init"], str(r["train_size"])), []).append(r)
    out: dict[str, dict[float, list[dict]]] = {}
    for (init, _), cell in by_cell.items():
        n = float(np.mean([r["summary"].n_train for r in cell]))
        out.setdefault(init, {})[n] = cell
    return out


def _values(cell: list[dict]) -> dict[int, float]:
    return {int(r["seed"]): float(r["test_auc"]) for r in cell}


def _usable(curve: dict[float, dict[int, float]], base: dict[float, dict[int, float]]) -> list[float]:
    """The sizes where a regime's curve and random's both have at least MIN_SEEDS seeds."""
    return sorted(n for n in curve if n in base and min(len(curve[n]), len(base[n])) >= MIN_SEEDS)


def _plain_arm(cell: list[dict]) -> Arm:
    """A cell's arm without bootstrap replicates (no builder given): the seed part only."""
    v = _values(cell)
    return Arm(tuple(sorted(v)), np.array([v[k] for k in sorted(v)]), None)


def point_text(state: str, size: float | None, sizes: tuple[float, ...]) -> str:
    """The point crossing as printed: a size, ``≤ smallest`` or ``> largest (beyond the sizes tried)``."""
    if state == "not-reached" or size is None:
        return f"> {sizes[-1]:.0f} (beyond the sizes tried)"
    return f"≤ {size:.0f}" if state == "from-start" else f"{size:.0f}"


def demonstrated_text(state: str, size: float | None, sizes: tuple[float, ...]) -> str:
    """The demonstrated crossover as printed: a size, ``≤ smallest`` or *not shown*."""
    if state == "not-shown" or size is None:
        return f"not shown (bound ≥ margin at {sizes[-1]:.0f})"
    return f"≤ {size:.0f}" if state == "from-start" else f"{size:.0f}"


def interval_text(low: float | None, high: float | None, censored: str, sizes: tuple[float, ...], *,
                  note: bool = True) -> str:
    """The true crossing's interval with censored ends as such: ``300 to > 840 (beyond the sizes
    tried)``, ``≤ 210 to 530``; an interval wholly outside the sizes is one censored end.
    ``note``: add "(beyond the sizes tried)" to a right-censored end."""
    beyond = f"> {sizes[-1]:.0f}" + (" (beyond the sizes tried)" if note else "")
    if censored == "right" and low is not None and low >= sizes[-1]:
        return beyond
    if censored == "left" and high is not None and high <= sizes[0]:
        return f"≤ {sizes[0]:.0f}"
    lo = f"≤ {sizes[0]:.0f}" if censored in ("left", "both") else num(low, ".0f")
    hi = beyond if censored in ("right", "both") else num(high, ".0f")
    return f"{lo} to {hi}"


def statement(est: Crossover, regime: str, test_note: str = "") -> str:
    """The crossover in words: the demonstrated claim first, then the point crossing."""
    bound = f"one-sided {est.level * 100:g}% upper bound"
    if est.demonstrated_state == "from":
        claim = (f"random init is within the margin of {regime} from {est.demonstrated:.0f} training images on "
                 f"(upper bound below the margin)")
    elif est.demonstrated_state == "from-start":
        claim = (f"random init is within the margin of {regime} from {est.sizes[0]:.0f} training images on "
                 f"(upper bound below the margin at every size tried: the crossover is at or below "
                 f"{est.sizes[0]:.0f})")
    else:
        claim = (f"random init is not shown to be within the margin of {regime} at any size tried (the gap's "
                 f"{bound} is {est.upper[-1] * 100:.1f} AUC points at {est.sizes[-1]:.0f} images, the margin "
                 f"{est.margin * 100:g})")
    span = (f"{est.level * 100:g}% interval for the true crossing: "
            f"{interval_text(est.low, est.high, est.censored, est.sizes, note=False)}")
    if est.censored in ("right", "both"):
        span += ", beyond the sizes tried" if est.high is None and est.low == est.sizes[-1] else \
            ", its upper end beyond the sizes tried"
    if est.state == "crosses":
        point = f"the point gap falls to the margin at about {est.size:.0f} images ({span})"
    elif est.state == "from-start":
        point = f"the point gap is below the margin already at {est.sizes[0]:.0f} images ({span})"
    else:
        point = f"the point gap is still above the margin at {est.sizes[-1]:.0f} images ({span})"
    text = f"{claim}; {point}"
    if not est.test_included:
        text += f"; seed part only — the test images' sampling error is not in these bounds ({test_note})"
    return text


def crossover_rows(runs: list[dict], arm: ArmBuilder | None = None, *, margin: float, n_boot: int = 2000,
                   level: float = 0.95, seed: int = 0) -> list[dict]:
    """One row per dataset × model that qualifies (see the module docstring), with the columns of
    :data:`CROSSOVER_COLUMNS` and its curves (``curves``: regime → [(size, mean AUC, SD, seeds)])
    for the figure. ``arm``: a cell's runs → its arm with aligned test-image bootstrap replicates
    (``lambda rows: cell_arm(rows, cache)`` in :mod:`.data`); without it, or where a cell has no
    replicates, the gaps have their seed part only and the row says so (``test_error``).
    ``n_boot``: draws of the parametric bootstrap; ``level``: the one-sided level of the bound
    and the two-sided level of the true crossing's interval."""
    done = [r for r in runs if r["kind"] == "train" and r["status"] == "done" and r["summary"] is not None
            and r["test_auc"] is not None]
    make_arm = arm or _plain_arm
    rows = []
    for dataset in dict.fromkeys(r["dataset"] for r in done):
        for model in dict.fromkeys(r["model"] for r in done if r["dataset"] == dataset):
            cells = _cells([r for r in done if (r["dataset"], r["model"]) == (dataset, model)])
            curves = {init: {n: _values(c) for n, c in by_size.items()} for init, by_size in cells.items()}
            base = curves.get(BASELINE, {})

            best, best_auc = None, -np.inf
            for init in curves:
                if not _needs_source(init) or len(_usable(curves[init], base)) < 2:
                    continue
                mean = float(np.mean([np.mean(list(curves[init][n].values())) for n in _usable(curves[init], base)]))
                if mean > best_auc:
                    best, best_auc = init, mean
            if best is None:
                continue
            sizes = _usable(curves[best], base)
            gaps: dict[float, SeedEstimate] = {}
            reps: list[np.ndarray | None] = []
            notes: list[str] = []
            for n in sizes:
                gaps[n], rep, note = gap_estimate(make_arm(cells[best][n]), make_arm(cells[BASELINE][n]))
                reps.append(rep)
                if note:
                    notes.append(f"{n:.0f} images: {note}" if arm is not None else note)
            included = not notes
            test_note = "no test-image replicates given" if arm is None else "; ".join(notes)
            cov = shared_test_covariance([gaps[n] for n in sizes], reps) if included else None
            est = estimate_crossover(gaps, margin=margin, test_cov=cov, n_boot=n_boot, level=level, seed=seed,
                                     test_included=included)
            rows.append({
                "dataset": dataset, "model": model, "regime": best,
                "demonstrated_state": est.demonstrated_state, "demonstrated": est.demonstrated,
                "bound_level": est.bound_level, "state": est.state, "size": est.size, "size_low": est.low,
                "size_high": est.high, "censored": est.censored, "level": est.level,
                "sizes": " ".join(f"{n:.0f}" for n in est.sizes),
                "gaps": " ".join(f"{g * 100:+.2f}" for g in est.gaps),
                "gap_se": " ".join(f"{s * 100:.2f}" for s in est.se),
                "upper": " ".join(f"{u * 100:+.2f}" for u in est.upper), "margin": margin,
                "n_seeds": est.n_seeds,
                "test_error": "included" if included else f"not included (seed part only): {test_note}",
                "statement": statement(est, best, test_note),
                "_sizes": est.sizes,
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

    level = rows[0]["level"] if rows else 0.95
    pct = f"{level * 100:g}%"
    sec = D.Section("Label efficiency: when does random init catch up?")
    sec.blocks.append(D.Para(
        "Per dataset × model with at least two training sizes (each with ≥ "
        f"{MIN_SEEDS} seeds of random and of a transfer regime): the gap AUC(best transfer regime) − AUC(random) "
        "at each size in AUC points (mean over seed pairs; its standard error has the seed part, s²/n on n − 1 "
        "degrees of freedom, and the test-image sampling error every seed shares, from aligned bootstrap "
        f"replicates). *Within the margin from* ({margin * 100:g} AUC points) is what the data support: the smallest "
        f"training size from which the gap's one-sided {pct} upper bound (the upper end of the two-sided "
        f"{(2 * level - 1) * 100:g}% interval) stays below the margin at every larger size tried, interpolated in "
        "log size; it errs towards too many images. The *point crossing* is where the mean gap reaches the "
        f"margin, with a {pct} interval for where the true gap does (parametric bootstrap of the whole curve: "
        "seed part drawn from Student's t, test part normal and correlated between sizes as the replicates "
        "are). An interval end outside the sizes tried is censored: ≤ the smallest size, or > the largest "
        "(beyond the sizes tried). Fine-tuning runs only: an arm under another training scheme is another "
        "network."))
    cols = ["dataset", "model", "best transfer regime", "sizes (images)", "gap (AUC points)",
            f"upper bound ({pct} one-sided)", "within the margin from (images)", "point crossing (images)",
            f"{pct} interval, true crossing (images)", "seeds", "reading"]
    table = []
    for r in rows:
        sizes = r["_sizes"]
        table.append([short(r["dataset"]), r["model"], r["regime"], r["sizes"], r["gaps"], r["upper"],
                      demonstrated_text(r["demonstrated_state"], r["demonstrated"], sizes),
                      point_text(r["state"], r["size"], sizes),
                      interval_text(r["size_low"], r["size_high"], r["censored"], sizes), str(r["n_seeds"]),
                      r["statement"]])
    sec.blocks.append(D.Table(cols, table, numeric=frozenset({"seeds"}), csv=csv))
    for r in rows:
        png = efficiency_plot(r["curves"], r["size"] if r["state"] == "crosses" else None, r["size_low"],
                              r["size_high"], figs / f"{slug(r['dataset'] + r['model'])}-label-efficiency.png",
                              title=f"{short(r['dataset'])} · {r['model']}: AUC against training size",
                              censored=r["censored"], demonstrated=r["demonstrated"],
                              demonstrated_state=r["demonstrated_state"], level=level, sizes=r["_sizes"])
        sec.blocks.append(D.Figure(png, f"{r['model']} on {short(r['dataset'])}: test AUC (mean over seeds, ± SD) "
                                        f"against training images per regime; {r['statement']}."))
    return sec
