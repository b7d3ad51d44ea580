"""``transfusion analyze``: representation and weight studies over a results store, and a
per-stage similarity of two checkpoints.

    transfusion analyze list
    transfusion analyze similarity A.pt B.pt --data SPEC [--method svcca|pwcca|cca|cka] [--probe N] [--json PATH|-]
    transfusion analyze STUDY --store OUT/results.sqlite [--out DIR]
    transfusion analyze all --store OUT/results.sqlite [--out DIR]

Exit codes: 0 done; 2 bad input, or (one study) a store without the runs it needs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import UsageError, emit_json, store_path

_METHODS = ("svcca", "pwcca", "cca", "cka")


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, metavar="PATH",
                   help="results store: OUT/results.sqlite, or the folder OUT holding it")
    p.add_argument("--out", metavar="DIR", help="where CSVs and PNGs go (default: <store folder>/analysis)")
    p.add_argument("--probe", type=int, default=256, metavar="N",
                   help="probe images from each test split (default 256; fewer if the split is smaller)")
    p.add_argument("--fit", type=int, default=256, metavar="N", help="kNN-probe fit images per train split (default 256)")
    p.add_argument("--knn-init", action="store_true", help="kNN-probe each run's initialisation too")
    p.add_argument("--method", choices=_METHODS, default="svcca", help="similarity measure (default svcca; CKA is always a column)")
    p.add_argument("--device", default="cpu", help="device for forward passes: cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from transfusion.analysis.studies import TITLES

    p = sub.add_parser(
        "analyze",
        help="studies over a results store (similarity per stage, filters, convergence, ...)",
        description=(
            "Representation and weight studies of Raghu et al. (2019) over the runs of a results "
            "store — each writes a CSV and a PNG — or the per-stage similarity of two checkpoints."
        ),
    )
    which = p.add_subparsers(dest="study", metavar="STUDY")
    which.add_parser("list", help="list the studies").set_defaults(func=run_list)
    s = which.add_parser("similarity", help="per-stage similarity of two checkpoints on one probe set",
                         description="Per-stage similarity of two checkpoints of the same architecture on the same "
                                     "probe images (a fixed subset of the test split of --data).")
    s.add_argument("checkpoint_a", metavar="CHECKPOINT_A")
    s.add_argument("checkpoint_b", metavar="CHECKPOINT_B")
    s.add_argument("--data", required=True, metavar="SPEC", help="dataset spec whose test split is the probe set")
    s.add_argument("--method", choices=_METHODS, default="svcca", help="default svcca")
    s.add_argument("--probe", type=int, metavar="N", help="probe images (default min(256, test split))")
    s.add_argument("--pool", type=int, default=4, metavar="S", help="pool conv maps to at most S×S positions (default 4)")
    s.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    s.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's)")
    s.add_argument("--json", metavar="PATH|-", help="also write the table as JSON ('-' for stdout)")
    s.set_defaults(func=run_similarity)
    a = which.add_parser("all", help="run every study (those the store lacks runs for are listed as absent)")
    _store_options(a)
    a.set_defaults(func=run_all_cmd)
    for name, title in TITLES.items():
        sp = which.add_parser(name, help=title)
        _store_options(sp)
        sp.set_defaults(func=run_one_cmd, study_name=name)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _threads(args: argparse.Namespace) -> None:
    from transfusion.core.runtime import Runtime

    Runtime(threads=getattr(args, "threads", None)).apply()


def _opts(args: argparse.Namespace) -> dict:
    return {"probe": args.probe, "fit": args.fit, "method": args.method, "device": args.device,
            "knn_init": args.knn_init}


def _print(out, stream=None) -> None:
    if out.absent:
        print(f"{out.name}: absent — {out.absent}", file=stream)
        return
    print(f"{out.name}: {out.title}\n  {out.summary}\n  {out.csv}\n  {out.png}", file=stream)


def run_list(args: argparse.Namespace) -> int:
    from transfusion.analysis.studies import STUDIES, TITLES

    for name in STUDIES:
        print(f"{name:20s} {TITLES[name]}")
    print(f"{'similarity':20s} per-stage similarity of two checkpoints (analyze similarity A B --data SPEC)")
    return 0


def run_one_cmd(args: argparse.Namespace) -> int:
    from transfusion.analysis.studies import run_study

    _threads(args)
    store = store_path(args.store)
    out = run_study(args.study_name, store, Path(args.out) if args.out else store.parent / "analysis", **_opts(args))
    if out.absent:
        print(f"transfusion analyze: {out.absent}", file=sys.stderr)
        return 2
    _print(out)
    return 0


def run_all_cmd(args: argparse.Namespace) -> int:
    from transfusion.analysis.studies import run_all

    _threads(args)
    store = store_path(args.store)
    for out in run_all(store, Path(args.out) if args.out else store.parent / "analysis", **_opts(args)):
        _print(out)
    return 0


def run_similarity(args: argparse.Namespace) -> int:
    from transfusion.analysis.studies import compare_checkpoints
    _threads(args)
    for path in (args.checkpoint_a, args.checkpoint_b):
        if not Path(path).is_file():
            raise UsageError(f"checkpoint {path} does not exist")
    rows = compare_checkpoints(args.checkpoint_a, args.checkpoint_b, args.data, method=args.method,
                               probe=args.probe, pool=args.pool, device=args.device)
    if args.json != "-":
        name = args.method.upper()
        print(f"{'stage':10s} {name:>8s} {'CKA':>6s} {'datapoints':>10s} {'features':>10s} {'dims':>9s}")
        for r in rows:
            dims = f"{r['dims_a']}/{r['dims_b']}" if r["dims_a"] is not None else "all"
            print(f"{r['stage']:10s} {r['similarity']:8.4f} {r['cka']:6.3f} {r['n_datapoints']:10d} "
                  f"{r['features_a']:>4d}/{r['features_b']:<5d} {dims:>9s}")
    emit_json({"checkpoint_a": str(args.checkpoint_a), "checkpoint_b": str(args.checkpoint_b), "data": args.data,
               "method": args.method, "stages": rows}, args.json)
    return 0
