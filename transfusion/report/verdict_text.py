"""How every verdict table of a report prints the comparison engine's rows
(:mod:`transfusion.stats.comparisons`): the intervals with their levels, the verdict label, and
the paragraph that says how they were read."""

from __future__ import annotations

from transfusion.core.text import MISSING, points
from transfusion.stats import ALPHA, BORDERLINE, MIN_SEEDS, UNJUDGED


def _pct(level: float | None) -> str:
    return "" if not level else f" {level * 100:.4g}%"


def interval_text(low: float | None, high: float | None, level: float | None) -> str:
    """``[-0.40, +1.20] 99%`` in AUC points, or an em dash."""
    if low is None or high is None:
        return MISSING
    return f"[{points(low)}, {points(high)}]{_pct(level)}"


def verdict_cells(r: dict) -> list[str]:
    """[difference, superiority interval, equivalence interval, verdict label] of an engine row."""
    eq = MISSING if r.get("verdict") == UNJUDGED else interval_text(r.get("eq_low"), r.get("eq_high"), r.get("eq_level"))
    label = r.get("label") or r.get("verdict") or MISSING
    if r.get("verdict") == UNJUDGED:
        label = f"unjudged: {r.get('reason')}"
    return [points(r.get("diff")), interval_text(r.get("ci_low"), r.get("ci_high"), r.get("level")), eq, label]


def method_text(k: int, margin: float, n_boot: int, *, units: str = "AUC points") -> str:
    """The paragraph under a verdict table: how its intervals and verdicts were read."""
    sup, eq = (1 - ALPHA / max(k, 1)) * 100, (1 - 2 * ALPHA / max(k, 1)) * 100
    return (
        f"Interval: mean ± half-width over the seed pairs, half-width = √(z²·c̄ + t²·s²/n) — s the seed-to-seed SD of "
        f"the differences (its own, n − 1 degrees of freedom: nothing is pooled between comparisons), c̄ the test "
        f"variance every seed shares (between-seed covariance of {n_boot} aligned bootstrap resamples of the test "
        f"images). The {k} judged comparison(s) of this dataset form one family, judged together at 95% "
        f"(Bonferroni): better / worse when the {sup:.4g}% interval excludes 0; within ±{margin * 100:g} {units} when "
        f"the {eq:.4g}% interval lies inside the margin (two one-sided tests) — a significant difference inside the "
        f"margin reads 'better (within ±{margin * 100:g})', never a bare 'equivalent'; inconclusive otherwise; "
        f"unjudged below {MIN_SEEDS} seed pairs. ≈ borderline: a faithful rerun (new seeds, the same test images) "
        f"reaches another verdict with probability ≥ {BORDERLINE:.0%} — transfusion compare does not count such "
        "a move unless the estimates themselves differ beyond rerun noise.")


def verdict_counts(judged: list[dict], margin: float) -> str:
    """``5 comparison(s) judged (2 better, 1 of them within ±2; 3 equivalent); 2 borderline (≈)``."""
    from transfusion.stats import VERDICTS

    parts = []
    for v in VERDICTS:
        rows = [r for r in judged if r["verdict"] == v]
        if not rows:
            continue
        within = sum(bool(r.get("within_margin")) for r in rows) if v in ("better", "worse") else 0
        parts.append(f"{len(rows)} {v}" + (f", {within} of them within ±{margin * 100:g}" if within else ""))
    border = sum(bool(r.get("borderline")) for r in judged)
    return (f"{len(judged)} comparison(s) judged ({'; '.join(parts) or 'none'})"
            + (f"; {border} borderline (≈)" if border else ""))
