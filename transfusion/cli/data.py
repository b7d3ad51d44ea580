"""``transfusion data``: write synthetic datasets to disk and check any dataset spec.

    transfusion data synth {retina,cxr,natural} --n N --res PX --seed S --out DIR [--option k=v]
    transfusion data check SPEC [--res PX] [--json PATH|-]
    transfusion data kinds
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers) -> None:
    """Add the ``data`` command and its sub-commands."""
    parser = subparsers.add_parser(
        "data",
        help="generate synthetic datasets, check dataset specs",
        description="Generate synthetic datasets as image folders and check dataset specs "
        "(KIND[:PATH][?key=value&...]; see docs/data.md).",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    synth = sub.add_parser("synth", help="write a synthetic task as PNG files + labels.csv")
    synth.add_argument("task", choices=("retina", "cxr", "natural"))
    synth.add_argument("--n", type=int, default=2000, help="number of images (default 2000)")
    synth.add_argument("--res", type=int, default=64, help="image side in px (default 64)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument(
        "--option", "-o", action="append", default=[], metavar="KEY=VALUE",
        help="extra generator option, e.g. -o difficulty=0.7 -o uncertain=0.1 (repeatable)",
    )
    synth.add_argument("--cache-dir", default=None, help="cache folder (default $TRANSFUSION_CACHE)")
    synth.set_defaults(func=_synth)

    check = sub.add_parser("check", help="load a dataset spec and report counts and problems")
    check.add_argument("spec", help="dataset spec, e.g. 'synth-cxr?n=500' or chexpert:/data/CheXpert-v1.0-small")
    check.add_argument("--res", type=int, default=None, help="override the spec's resolution")
    check.add_argument("--json", default=None, metavar="PATH|-", help="also write the report as JSON ('-' = stdout only)")
    check.add_argument("--cache-dir", default=None)
    check.set_defaults(func=_check)

    kinds = sub.add_parser("kinds", help="list dataset kinds and their options")
    kinds.set_defaults(func=_kinds)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _synth(args: argparse.Namespace) -> int:
    from transfusion.data import load_dataset
    from transfusion.data._export import write_image_folder

    for item in args.option:
        if "=" not in item:
            raise ValueError(f"--option expects KEY=VALUE, got {item!r}")
    query = "&".join([f"n={args.n}", f"res={args.res}", f"seed={args.seed}", *args.option])
    spec = f"synth-{args.task}?{query}"
    dataset = load_dataset(spec, cache_dir=args.cache_dir)
    out = Path(args.out)
    labels = write_image_folder(dataset, out)
    total = sum(len(s) for s in dataset.splits.values())
    print(f"wrote {total} images and {labels} ({spec})")
    print(f"load it back with: folder:{out.resolve()}?res={dataset.res}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from transfusion.data import load_dataset
    from transfusion.data._export import check_report

    dataset = load_dataset(args.spec, res=args.res, cache_dir=args.cache_dir)
    report = check_report(dataset)
    text = json.dumps(report, indent=1)
    if args.json == "-":
        print(text)
        return 0
    if args.json:
        Path(args.json).write_text(text + "\n")
    _print_report(dataset, report)
    return 0


def _print_report(dataset, report: dict) -> None:
    task = report["task"]
    print(f"dataset  {dataset.info.get('spec', dataset.name)}")
    print(f"task     {task['kind']}: {', '.join(task['labels'])}")
    if dataset.task.positive_rule:
        print(f"rule     {dataset.task.positive_rule}")
    for name, split in report["splits"].items():
        shape = tuple(dataset.splits[name].images.shape[1:])
        print(f"{name:<6} n={split['n']:<7} image {shape[0]}x{shape[1]}x{shape[2]} (C x H x W)")
        for label in task["labels"]:
            masked = split["masked"].get(label, 0)
            extra = f"  masked {masked}" if masked else ""
            print(f"         {label:<28} positives {split['positives'][label]}{extra}")
    problems = report["problems"]
    print(f"problems {len(problems)}" + "".join(f"\n  - {p}" for p in problems))


def _kinds(args: argparse.Namespace) -> int:
    from transfusion.data import dataset_kind, list_dataset_kinds

    for name in list_dataset_kinds():
        kind = dataset_kind(name)
        print(f"{name:<14} {kind.summary}")
        print(f"{'':<14} e.g. {kind.example}")
        for key, opt in sorted(kind.options.items()):
            choices = f" [{'|'.join(opt.choices)}]" if opt.choices else ""
            print(f"{'':<16}{key}={opt.default if opt.default is not None else ''}{choices}  {opt.help}")
    sys.stdout.flush()
    return 0
