"""``transfusion plan SUITE_OR_STORE``: what a suite's families of comparisons can detect at its
seeds and test size, and how many seeds its margin needs — from a pilot store's measured noise or
from stated noise figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import UsageError, emit_json, plain, safe


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="detectable difference, reachable margin and seeds needed, per family of comparisons",
        description=(
            "Plan a suite before (or after) running it. For every family of regime − random comparisons "
            "(one dataset × train size) it prints, at the suite's seeds and test size: the minimum detectable "
            "difference (the smallest true gain declared 'better' with the wanted power), the smallest margin "
            "within which a true difference of 0 is declared equivalent with that power, and the seeds the "
            "suite's margin needs — judged exactly as the report judges (own seed variance, shared test "
            "error, Bonferroni over the family, TOST). The noise comes from a pilot store (a finished or partly "
            "finished run of the suite: SUITE_OR_STORE itself, --pilot, or runs/<suite>/ when it exists), "
            "else from the suite's [plan] table, else from --seed-sd and --test-se. Example: transfusion plan quick"
        ),
    )
    p.add_argument("target", metavar="SUITE_OR_STORE", help="a shipped suite name, a suite TOML file, or a results store")
    p.add_argument("--pilot", metavar="STORE", help="a results store whose measured noise to plan with")
    p.add_argument("--seeds", type=int, metavar="N", help="plan for N seeds (default: the suite's)")
    p.add_argument("--margin", type=float, metavar="X",
                   help="equivalence margin in AUC units, 0.02 = 2 AUC points (default: the suite's [report] margin)")
    p.add_argument("--power", type=float, metavar="P", help="wanted power (default: the suite's [plan] power, 0.8)")
    p.add_argument("--seed-sd", type=float, metavar="X",
                   help="SD of one seed pair's difference, AUC units (used without a pilot store)")
    p.add_argument("--test-se", type=float, metavar="X", default=None,
                   help="SD of the test error every seed shares, AUC units (default 0 with --seed-sd)")
    p.add_argument("--assume-diff", type=float, default=0.0, metavar="X",
                   help="true difference assumed when sizing for equivalence, AUC units (default 0)")
    p.add_argument("--json", metavar="PATH|-", help="also write the plan as JSON ('-' for stdout)")
    p.set_defaults(func=run)


def _families_of_suite(suite: Any) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(dataset, train size) → its comparisons (model, regime label) from the suite's grid axes."""
    import itertools

    from transfusion.data import canonical_spec
    from transfusion.harness.grid import _excluded, _with_resize
    from transfusion.harness.suite import GRID_AXES
    from transfusion.transfer import scheme_label

    cells: dict[tuple[str, str], dict[str, set[str]]] = {}
    for values in itertools.product(*(suite.grid[a] for a in GRID_AXES)):
        combo = dict(zip(GRID_AXES, values))
        if _excluded(combo, suite.exclude):
            continue
        data = canonical_spec(_with_resize(combo["dataset"], combo["resize"]), res=combo["res"] or suite.res)
        key = (data, str(combo["train_size"]))
        cells.setdefault(key, {}).setdefault(combo["model"], set()).add(scheme_label(combo["init"], combo["scheme"]))
    out = {}
    for key, models in cells.items():
        out[key] = [(m, r) for m, regimes in models.items() if "random" in regimes
                    for r in sorted(regimes - {"random"})]
    return out


def _store_or_none(text: str) -> Path | None:
    from transfusion.harness.store import store_file
    from transfusion.harness.suite import shipped_suites

    if Path(text).suffix == ".toml" or text in shipped_suites():
        return None
    try:
        return store_file(text)
    except FileNotFoundError:
        return None


def _plan_rows(args: argparse.Namespace) -> tuple[dict, list[dict]]:
    from transfusion.harness.suite import SuiteError, load_suite
    from transfusion.report.data import pilot_comparisons

    store = _store_or_none(args.target)
    suite = None
    if store is None:
        try:
            suite = load_suite(args.target)
        except SuiteError as exc:
            raise UsageError(f"{exc}; or give a results store") from None
    pilot = _store_or_none(args.pilot) if args.pilot else store
    if args.pilot and pilot is None:
        raise UsageError(f"--pilot {args.pilot}: no results store there (OUT/results.sqlite or its folder)")
    if pilot is None and suite is not None and args.seed_sd is None:
        pilot = _store_or_none(str(Path("runs") / suite.name))
    measured = pilot_comparisons(pilot) if pilot is not None else []
    if pilot is not None and not measured:
        raise UsageError(f"the pilot store {pilot} holds no regime − random comparison with a finished run on both "
                         "sides; run the suite further, or give --seed-sd and --test-se")
    info: dict[str, Any] = {"pilot": str(pilot) if pilot else None, "suite": suite.name if suite else None}
    if suite is None:  # a store alone: its own families, seeds and margin
        from transfusion.harness.store import Store
        from transfusion.report.data import suite_info

        with Store(store) as s:
            opts = suite_info(s).report
        info["suite"] = "(the store's)"
        margin, power = opts.margin, args.power or 0.8
        families: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for r in measured:
            families.setdefault((r["dataset"], r["train_size"]), []).append((r["model"], r["regime"]))
        seeds = {(r["dataset"], r["train_size"], r["model"], r["regime"]): r["n_seeds"] or 0 for r in measured}
        default_seeds = max(seeds.values(), default=0)
    else:
        margin, power = suite.report.margin, args.power or suite.plan.power
        families = _families_of_suite(suite)
        seeds, default_seeds = {}, len(suite.grid["seed"])
    margin = args.margin if args.margin is not None else margin
    info.update(margin=margin, power=power)
    by_key = {(r["dataset"], r["train_size"], r["model"], r["regime"]): r for r in measured}
    rows = []
    for (data, size), comparisons in families.items():
        k = len(comparisons)
        for model, regime in comparisons:
            n = args.seeds or seeds.get((data, size, model, regime)) or default_seeds
            rows.append(_row(data, size, model, regime, k, n, margin, power, args, suite,
                             by_key.get((data, size, model, regime)), measured))
    return info, rows


def _noise(args: argparse.Namespace, suite: Any, model: str, pilot: dict | None,
           measured: list[dict]) -> tuple[float, float, str, int]:
    """(seed_sd, test_se, where from, pilot seeds) of one comparison."""
    if args.seed_sd is not None:
        return args.seed_sd, args.test_se or 0.0, "stated (--seed-sd)", 0
    if pilot is not None and pilot.get("diff_sd") is not None:
        return pilot["diff_sd"], pilot.get("se_shared") or 0.0, "pilot", pilot["n_seeds"]
    same_model = [r for r in measured if r["model"] == model and r.get("diff_sd") is not None]
    if same_model:  # not in the pilot: the noisiest comparison of the same model stands in
        worst = max(same_model, key=lambda r: r["diff_sd"])
        return worst["diff_sd"], worst.get("se_shared") or 0.0, f"pilot ({model}'s noisiest)", worst["n_seeds"]
    stated = suite.plan.noise_of(model) if suite is not None else None
    if stated is not None:
        return stated[0], stated[1], "suite [plan]", 0
    raise UsageError(f"no noise figures for {model}: run a pilot of the suite (transfusion bench), give "
                     "--pilot STORE, add a [plan] table (seed_sd, test_se) to the suite, or pass --seed-sd and "
                     "--test-se (AUC units)")


def _row(data: str, size: str, model: str, regime: str, k: int, n: int, margin: float, power: float,
         args: argparse.Namespace, suite: Any, pilot: dict | None, measured: list[dict]) -> dict:
    from transfusion.stats.planning import (
        Noise,
        detectable_difference,
        reachable_margin,
        sd_upper_bound,
        seeds_for_margin,
    )

    sd, se, origin, n_pilot = _noise(args, suite, model, pilot, measured)
    noise = Noise(sd, se)
    row = {"dataset": data, "train_size": size, "model": model, "regime": regime, "family_size": k, "seeds": n,
           "noise_from": origin, "seed_sd": sd, "test_se": se, "margin": margin, "power": power,
           "detectable": None, "reachable_margin": None,
           "seeds_for_margin": seeds_for_margin(margin, noise, k, power=power, d=args.assume_diff) if margin > 0
           else None, "seeds_for_margin_sd_bound": None}
    if n >= 2:
        row.update(detectable=detectable_difference(noise, n, k, power=power),
                   reachable_margin=reachable_margin(noise, n, k, power=power, d=args.assume_diff))
    if n_pilot >= 2 and margin > 0:
        bound = Noise(min(sd_upper_bound(sd, n_pilot), 0.999), se)
        row["seeds_for_margin_sd_bound"] = seeds_for_margin(margin, bound, k, power=power, d=args.assume_diff)
    return row


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from transfusion.core.text import num
    from transfusion.stats.planning import MAX_SEEDS

    if args.seeds is not None and args.seeds < 2:
        raise UsageError(f"--seeds must be >= 2 (one seed measures no training variance), got {args.seeds}")
    if args.margin is not None and not 0 < args.margin < 1:
        raise UsageError(f"--margin is in AUC units (0.02 = 2 AUC points) and must be in (0, 1), got {args.margin}")
    if args.power is not None and not 0 < args.power < 1:
        raise UsageError(f"--power is a probability in (0, 1), e.g. 0.8; got {args.power}")
    info, rows = _plan_rows(args)
    console = Console(width=None if sys.stdout.isatty() else 160)
    if args.json != "-":
        def pts(v: float | None) -> str:
            return num(v, ".2f", scale=0.01)

        console.print(f"plan for {safe(info['suite'])}: margin ±{info['margin'] * 100:g} AUC points, power "
                      f"{info['power']:.0%}, noise from {safe(info['pilot'] or 'stated figures')}", highlight=False)
        for key in dict.fromkeys((r["dataset"], r["train_size"]) for r in rows):
            fam = [r for r in rows if (r["dataset"], r["train_size"]) == key]
            table = Table(title=f"{safe(key[0].split('?')[0])} · train size {safe(key[1])}: {fam[0]['family_size']} "
                                "comparison(s) judged together")
            for col in ("model", "regime", "seeds", "seed SD", "shared test SE", "detects ≥", "equivalent within",
                        f"seeds for ±{info['margin'] * 100:g}", "… SD at its 80% bound", "noise from"):
                table.add_column(col, justify="left" if col in ("model", "regime", "noise from") else "right")

            def need(v: int | None) -> str:
                return f"> {MAX_SEEDS}" if v is None else str(v)

            for r in fam:
                table.add_row(plain(r["model"]), plain(r["regime"]), str(r["seeds"]), pts(r["seed_sd"]),
                              pts(r["test_se"]), pts(r["detectable"]), pts(r["reachable_margin"]),
                              need(r["seeds_for_margin"]),
                              "—" if r["seeds_for_margin_sd_bound"] is None and r["noise_from"] != "pilot"
                              else need(r["seeds_for_margin_sd_bound"]), plain(r["noise_from"]))
            console.print(table)
        console.print("AUC points. detects ≥: the smallest true gain declared 'better' with the wanted power at these "
                      "seeds; equivalent within: the smallest margin a true difference of "
                      f"{args.assume_diff * 100:g} points is declared within; seeds for ±m: the fewest seeds for that "
                      "at the suite's margin (> the search limit: the shared test error alone is too large — add test "
                      "images). A pilot's seed SD rests on few seeds; the 80% bound column plans for it being larger.",
                      highlight=False)
    emit_json({**info, "rows": rows}, args.json)
    return 0



