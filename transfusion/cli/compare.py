"""``transfusion compare REF NEW``: does a rerun reproduce a reference — cell by cell, verdict by
verdict, recommendation by recommendation?"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import emit_json, plain, safe


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare a rerun with a reference: every cell, verdict and recommendation",
        description=(
            "Compare NEW against REF — each a results store (OUT/results.sqlite or its folder) or a report "
            "folder (reports/<suite>, read from its tables/*.csv). Prints every cell present in both (AUC "
            "mean and seed spread on each side, the difference, and whether NEW lies inside REF's "
            "rerun envelope), every regime-vs-random verdict that changed — counted when the two estimates "
            "differ beyond rerun noise (a two-sample t test on the seed SDs, Bonferroni over the verdicts "
            "compared), listed as a move within noise otherwise (typically a borderline ≈ verdict) — and every "
            "recommendation or Pareto front that changed. Exit 0; with --strict, 1 when a counted verdict change "
            "or a recommendation change is found. Use it to check that a rerun on another machine reproduces a "
            "published report: transfusion compare reports/reference/quick runs/quick --strict"
        ),
    )
    p.add_argument("ref", metavar="REF", help="reference: results store, run folder or report folder")
    p.add_argument("new", metavar="NEW", help="rerun: results store, run folder or report folder")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when a verdict changed beyond rerun noise or a recommendation changed")
    p.add_argument("--all", action="store_true", help="list every cell, not only those outside the envelope")
    p.add_argument("--json", metavar="PATH|-", help="also write the comparison as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def _print(result: Any, show_all: bool, console: Any) -> None:
    from rich.table import Table

    from transfusion.core.text import interval, num, points

    console.print(f"REF {safe(result.ref)}\nNEW {safe(result.new)}", highlight=False)
    cells = result.cells if show_all else result.outside
    table = Table(title=f"cells: {len(result.cells) - len(result.outside)} of {len(result.cells)} inside REF's "
                        "95% rerun envelope" + ("" if show_all else " (listed: those outside)"))
    for col in ("dataset", "model", "regime", "REF AUC (SD, n)", "NEW AUC (SD, n)", "NEW − REF", "envelope", "inside"):
        table.add_column(col, justify="left" if col in ("dataset", "model", "regime") else "right")
    for c in cells:
        table.add_row(plain(c["dataset"].split("?")[0]), plain(c["model"]), plain(c["init"]),
                      f"{num(c['ref_auc'])} ({num(c['ref_sd'])}, {c['ref_n']})",
                      f"{num(c['new_auc'])} ({num(c['new_sd'])}, {c['new_n']})", points(c["diff"]),
                      interval(c["envelope_low"], c["envelope_high"]) + (" *" if c["envelope_note"] else ""),
                      "yes" if c["inside"] else "[red]no[/red]")
    if cells:
        console.print(table)
    else:
        console.print(f"cells: {len(result.cells)} of {len(result.cells)} inside REF's 95% rerun envelope",
                      highlight=False)
    if any(c["envelope_note"] for c in cells):
        console.print("* one seed on both sides: the envelope covers the test sample only")
    changes, moves = result.verdict_changes, result.verdict_moves
    console.print(f"verdicts: {len(result.verdicts) - len(changes) - len(moves)} of {len(result.verdicts)} unchanged, "
                  f"{len(moves)} moved within rerun noise (not counted), {len(changes)} changed beyond it")

    def verdict_line(v: dict, what: str) -> str:
        ref = v["ref_verdict"] + (" ≈" if v["ref_borderline"] else "")
        new = v["new_verdict"] + (" ≈" if v["new_borderline"] else "")
        return (f"  {what} {safe(v['dataset'].split('?')[0])} · {safe(v['model'])} · {safe(v['regime'])} − random: "
                f"{safe(ref)} ({points(v['ref_diff'])}) → {safe(new)} ({points(v['new_diff'])})")

    for v in moves:
        console.print(verdict_line(v, "[yellow]moved within noise[/yellow]"), highlight=False)
    for v in changes:
        console.print(verdict_line(v, "[red]changed[/red]"), highlight=False)
    recs = result.recommendation_changes
    console.print(f"recommendations and Pareto fronts: {len(result.recommendations) - len(recs)} of "
                  f"{len(result.recommendations)} unchanged")
    for r in recs:
        console.print(f"  [red]changed[/red] {safe(r['dataset'].split('?')[0])} by {r['cost_measure']}: recommended "
                      f"{safe(r['ref_recommended'])} → {safe(r['new_recommended'])}; "
                      f"front {safe('[' + str(r['ref_front']) + ']')} → {safe('[' + str(r['new_front']) + ']')}",
                      highlight=False)
    for what, keys in (("only in REF", result.only_ref), ("only in NEW", result.only_new)):
        if keys:
            console.print(f"{len(keys)} cell(s) {what}: " + safe("; ".join(" · ".join(k[2:]) for k in keys[:8])))


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from transfusion.report.compare import compare

    result = compare(args.ref, args.new)
    if args.json != "-":
        _print(result, args.all, Console(width=None if sys.stdout.isatty() else 160))
    emit_json({"ref": result.ref, "new": result.new, "changed": result.changed, "cells": result.cells,
               "verdicts": result.verdicts, "recommendations": result.recommendations,
               "only_ref": result.only_ref, "only_new": result.only_new}, args.json)
    return 1 if args.strict and result.changed else 0
