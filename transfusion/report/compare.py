"""Comparing two results — a reference and a rerun — cell by cell and verdict by verdict.

``compare(ref, new)`` takes two results stores (or run folders) or two report folders (with
``tables/summary.csv``, ``tables/paired.csv`` and ``tables/pareto.csv``) and returns:

* **cells** present in both (dataset × train size × model × regime): each side's AUC mean and
  seed spread, the difference (new − ref, AUC units), and whether the new mean lies inside the
  reference's *rerun envelope*: ``ref mean ± t · s_p · sqrt(1/n_ref + 1/n_new)`` — where a faithful
  rerun's seed mean of the same cell on the same test images falls (95%): ``s_p`` the seed SD
  pooled over both sides (a faithful rerun has the same training noise), ``t`` on
  ``n_ref + n_new − 2`` degrees of freedom. The test error both runs share (the same test images)
  cancels and is left out; a seed's own test noise is inside ``s``. With one seed on both sides
  the envelope is the test sample's (``2·SE_test²``, wider than needed) and says so.
* **verdict changes**: every regime-vs-random comparison whose verdict (with its "within ±m") differs.
  A change is *counted* only when the two estimates differ beyond rerun noise
  (:func:`transfusion.stats.moved_beyond_noise`: a two-sample t test on the pooled seed SD of the
  differences, Bonferroni over the comparisons present on both sides); the others — typically a
  borderline (≈) verdict whose interval edge sat within rerun noise of a threshold — are listed as
  moves within noise;
* **recommendation changes**: per dataset, train size and cost measure, the recommended model ·
  regime, and the Pareto front's members, where they differ. A member marked ``borderline`` on
  either side (its place turns on a gap within noise of δ) is listed, with ``≈``, but a change in
  its membership alone is not a change: noise of that size moves it. Likewise a recommendation
  that moved to a row the other side lists as its ``alternative`` (a pick within the noise of the
  AUC gaps) is not a change.

Only counted verdict changes and recommendations decide ``changed``: a cell outside its envelope is
reported (about one in twenty is expected by chance) but is not a change of conclusion.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transfusion.stats import VERDICTS, moved_beyond_noise, verdict_label
from transfusion.stats.seeds import quantile

CELL = ("dataset", "train_size", "model", "init")
COMPARISON = ("dataset", "train_size", "model", "regime")
RECOMMENDATION = ("dataset", "train_size", "cost_measure")
CELL_COLUMNS = ("dataset", "train_size", "model", "init", "ref_auc", "ref_sd", "ref_min", "ref_max", "ref_n",
                "new_auc", "new_sd", "new_min", "new_max", "new_n", "diff", "envelope_low", "envelope_high",
                "inside", "envelope_note")
VERDICT_COLUMNS = ("dataset", "train_size", "model", "regime", "ref_verdict", "new_verdict", "ref_diff", "new_diff",
                   "ref_borderline", "new_borderline", "beyond_noise", "changed", "counted")
RECOMMENDATION_COLUMNS = ("dataset", "train_size", "cost_measure", "ref_recommended", "new_recommended",
                          "alternatives", "ref_front", "new_front", "borderline", "changed")


@dataclass
class Rows:
    """One side of a comparison: summary, paired and Pareto rows (report columns), and where they
    came from."""

    origin: str
    summary: list[dict]
    paired: list[dict]
    pareto: list[dict]


@dataclass
class Comparison:
    """What :func:`compare` found; ``changed`` is True when a verdict or a recommendation changed."""

    ref: str
    new: str
    cells: list[dict] = field(default_factory=list)
    verdicts: list[dict] = field(default_factory=list)
    recommendations: list[dict] = field(default_factory=list)
    only_ref: list[tuple] = field(default_factory=list)
    only_new: list[tuple] = field(default_factory=list)

    @property
    def verdict_changes(self) -> list[dict]:
        """Verdicts that changed beyond rerun noise: these count."""
        return [r for r in self.verdicts if r["counted"]]

    @property
    def verdict_moves(self) -> list[dict]:
        """Verdicts that changed within rerun noise: listed, not counted."""
        return [r for r in self.verdicts if r["changed"] and not r["counted"]]

    @property
    def recommendation_changes(self) -> list[dict]:
        return [r for r in self.recommendations if r["changed"]]

    @property
    def outside(self) -> list[dict]:
        return [r for r in self.cells if r["inside"] is False]

    @property
    def changed(self) -> bool:
        return bool(self.verdict_changes or self.recommendation_changes)


def _number(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_rows(path: str | Path) -> Rows:
    """The rows of a report folder (its ``tables/*.csv``), or computed from a results store / run
    folder with :func:`~transfusion.report.data.report_data`."""
    p = Path(path)
    tables = p / "tables"
    if (tables / "summary.csv").is_file():
        missing = [n for n in ("paired.csv", "pareto.csv") if not (tables / n).is_file()]
        if missing:
            raise FileNotFoundError(f"report folder {p} lacks tables/{', tables/'.join(missing)}; regenerate it with "
                                    "`transfusion report STORE --out DIR`")
        return Rows(str(p), _read_csv(tables / "summary.csv"), _read_csv(tables / "paired.csv"),
                    _read_csv(tables / "pareto.csv"))
    from .data import report_data

    try:
        data = report_data(p)
    except FileNotFoundError:
        raise FileNotFoundError(f"{p} is neither a report folder (with tables/summary.csv) nor a results store "
                                f"(a .sqlite file or a run folder holding results.sqlite)") from None
    return Rows(str(p), data.summary, data.paired, data.pareto)


def _key(row: dict, names: tuple[str, ...]) -> tuple:
    return tuple(str(row.get(n)) for n in names)


def envelope(mean: float, sd_ref: float | None, n_ref: int, sd_new: float | None, n_new: int,
             se_test: float | None) -> tuple[float, float, str]:
    """(low, high, note): where a faithful rerun's ``n_new``-seed mean of a cell falls (95%) on
    the same test images, given the reference's (module docstring)."""
    parts = [((n - 1) * s * s, n - 1) for s, n in ((sd_ref, n_ref), (sd_new, n_new)) if s is not None and n >= 2]
    if parts:
        dof = sum(d for _, d in parts)
        var = sum(q for q, _ in parts) / dof * (1.0 / max(n_ref, 1) + 1.0 / max(n_new, 1))
        note = ""
    else:
        var, dof, note = 2.0 * (se_test or 0.0) ** 2, math.inf, "one seed on both sides: test sample only"
    half = quantile(0.95, dof) * math.sqrt(var)
    return mean - half, mean + half, note


def _cells(ref: Rows, new: Rows) -> tuple[list[dict], list[tuple], list[tuple]]:
    a = {_key(r, CELL): r for r in ref.summary if _number(r.get("auc_mean")) is not None}
    b = {_key(r, CELL): r for r in new.summary if _number(r.get("auc_mean")) is not None}
    rows = []
    for key in [k for k in a if k in b]:
        r, s = a[key], b[key]
        ref_mean, new_mean = _number(r["auc_mean"]), _number(s["auc_mean"])
        n_ref, n_new = int(_number(r.get("n_seeds")) or 1), int(_number(s.get("n_seeds")) or 1)
        lo, hi, note = envelope(ref_mean, _number(r.get("auc_std")), n_ref, _number(s.get("auc_std")), n_new,
                                _number(r.get("auc_se_test")))
        rows.append(dict(zip(CELL, key)) | {
            "ref_auc": ref_mean, "ref_sd": _number(r.get("auc_std")), "ref_min": _number(r.get("auc_min")),
            "ref_max": _number(r.get("auc_max")), "ref_n": n_ref, "new_auc": new_mean,
            "new_sd": _number(s.get("auc_std")), "new_min": _number(s.get("auc_min")),
            "new_max": _number(s.get("auc_max")), "new_n": n_new, "diff": new_mean - ref_mean,
            "envelope_low": lo, "envelope_high": hi, "inside": lo <= new_mean <= hi, "envelope_note": note})
    return rows, [k for k in a if k not in b], [k for k in b if k not in a]


def _shown(r: dict) -> str:
    """A paired row's verdict with its "within ±m" (as the report labels it, without ≈)."""
    v = str(r.get("verdict") or "")
    margin = _number(r.get("margin"))
    return verdict_label(v, _truthy(r.get("within_margin")), margin or 0.0) if margin is not None else v


def _verdicts(ref: Rows, new: Rows) -> list[dict]:
    a = {_key(r, COMPARISON): r for r in ref.paired}
    b = {_key(r, COMPARISON): r for r in new.paired}
    keys = [k for k in a if k in b]
    judged = [k for k in keys if a[k].get("verdict") in VERDICTS and b[k].get("verdict") in VERDICTS]
    rows = []
    for key in keys:
        x, y = a[key], b[key]
        changed = _shown(x) != _shown(y)
        beyond = None
        if key in judged:
            beyond = moved_beyond_noise((_number(x.get("diff")), _number(x.get("diff_sd")), int(_number(x.get("n_seeds")) or 0)),
                                        (_number(y.get("diff")), _number(y.get("diff_sd")), int(_number(y.get("n_seeds")) or 0)),
                                        n_compared=len(judged))
        # a verdict on one side only (unjudged or n/a on the other) is a change no noise explains
        counted = changed and (beyond is not False)
        rows.append(dict(zip(COMPARISON, key)) | {
            "ref_verdict": _shown(x), "new_verdict": _shown(y), "ref_diff": _number(x.get("diff")),
            "new_diff": _number(y.get("diff")), "ref_borderline": _truthy(x.get("borderline")),
            "new_borderline": _truthy(y.get("borderline")), "beyond_noise": beyond, "changed": changed,
            "counted": counted})
    return rows


def _truthy(v: Any) -> bool:
    return v is True or str(v).lower() == "true"


def _recommendations(ref: Rows, new: Rows) -> list[dict]:
    def by_measure(rows: list[dict]) -> dict[tuple, dict]:
        out: dict[tuple, dict] = {}
        for r in rows:
            entry = out.setdefault(_key(r, RECOMMENDATION),
                                   {"recommended": None, "front": set(), "borderline": set(), "alternatives": set()})
            label = f"{r['model']} · {r['init']}"
            if _truthy(r.get("recommended")):
                entry["recommended"] = label
            if _truthy(r.get("on_front")):
                entry["front"].add(label)
            if _truthy(r.get("borderline")):
                entry["borderline"].add(label)
            if _truthy(r.get("alternative")):
                entry["alternatives"].add(label)
        return out

    def shown(front: set, borderline: set) -> str:
        return "; ".join(f"{m} ≈" if m in borderline else m for m in sorted(front))

    a, b = by_measure(ref.pareto), by_measure(new.pareto)
    rows = []
    for key in [k for k in a if k in b]:
        loose = a[key]["borderline"] | b[key]["borderline"]
        fa, fb = a[key]["front"] - loose, b[key]["front"] - loose
        ra, rb = a[key]["recommended"], b[key]["recommended"]
        rec_changed = ra != rb and rb not in a[key]["alternatives"] and ra not in b[key]["alternatives"]
        rows.append(dict(zip(RECOMMENDATION, key)) | {
            "ref_recommended": a[key]["recommended"], "new_recommended": b[key]["recommended"],
            "ref_front": shown(a[key]["front"], loose), "new_front": shown(b[key]["front"], loose),
            "borderline": "; ".join(sorted(loose)),
            "alternatives": "; ".join(sorted(a[key]["alternatives"] | b[key]["alternatives"])),
            "changed": rec_changed or fa != fb})
    return rows


def compare(ref: str | Path, new: str | Path) -> Comparison:
    """Compare ``new`` against ``ref`` (report folders or results stores); see the module docstring."""
    a, b = load_rows(ref), load_rows(new)
    cells, only_ref, only_new = _cells(a, b)
    return Comparison(a.origin, b.origin, cells, _verdicts(a, b), _recommendations(a, b), only_ref, only_new)
