"""``transfusion report``: the accuracy-versus-cost report of a results store."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import store_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write the accuracy-vs-cost report (Markdown + HTML, figures, CSV) of a results store",
        description=(
            "Read a results store (OUT/results.sqlite or its folder OUT) and write report.md, a "
            "self-contained report.html, figures/*.png and tables/*.csv: per dataset, AUC over seeds "
            "beside params, MACs and latency; every regime minus random over its seed pairs, with an "
            "interval covering training and test-sample variance and a verdict (none below 3 seeds); AUC against each cost with the Pareto front and the "
            "cheapest model within delta of the best; analysis figures; the paper comparison; "
            "exported models; failed runs; the environment. See docs/report.md."
        ),
    )
    p.add_argument("store", metavar="STORE_OR_DIR", help="a results store file or the folder holding results.sqlite")
    p.add_argument("--out", metavar="DIR", help="report folder (default reports/<suite name>)")
    p.add_argument("--suite", metavar="NAME", help="which suite of the store (default: the latest registered)")
    p.add_argument("--margin", type=float, metavar="X",
                   help="equivalence margin in AUC units, 0.005 = 0.5 AUC points (default: the suite's [report])")
    p.add_argument("--delta", type=float, metavar="X",
                   help="recommend the cheapest model within X AUC of the best, AUC units (default: the suite's)")
    p.add_argument("--n-boot", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--no-studies", action="store_true", help="skip the representation/weight studies")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from transfusion.harness.store import Store
    from transfusion.report.build import build_report
    from transfusion.report.data import suite_info

    store = store_path(args.store)
    out = args.out
    if out is None:
        with Store(store) as s:
            name = suite_info(s, args.suite).name
        out = Path("reports") / (name or store.parent.name)
    paths = build_report(store, out, suite_name=args.suite, margin=args.margin, delta=args.delta,
                         n_boot=args.n_boot, studies=not args.no_studies)
    print(f"report: {paths['md']}")
    print(f"html:   {paths['html']}")
    print(f"tables: {paths['tables']}/  figures: {paths['figures']}/")
    return 0
