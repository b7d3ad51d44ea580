"""``transfusion pretrain``: train any model from scratch on a source task and write a
checkpoint that later runs use with ``--source file:PATH``."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from transfusion.train.spec import RunSpec

from .common import emit_json
from .train import add_training_options, print_summary, train_config_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pretrain a model on a source task (e.g. synth-natural, an ImageNet folder)",
        description=(
            "Train MODEL from random init on a source dataset and write its best checkpoint to "
            "PATH — the offline stand-in for ImageNet weights, and the only source for the CBR "
            "family. Working files (curve, last checkpoint) go to PATH's folder under "
            "<stem>.run/. Example: transfusion pretrain cbr_small --data 'synth-natural?n=4000&res=64' "
            "--out cbr_small-natural.pt"
        ),
    )
    add_training_options(p)
    p.add_argument("--out", required=True, metavar="PATH", help="checkpoint file to write (.pt)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from transfusion.train import train_run
    from transfusion.transfer.checkpoint import best_path

    spec = RunSpec(model=args.model, data=args.data, init="random", seed=args.seed, train_size=args.train_size,
                   res=args.res, train=train_config_from_args(args), kind="pretrain")
    out = Path(args.out)
    if out.suffix not in (".pt", ".pth"):
        raise ValueError(f"--out should name a .pt checkpoint file, got {out}")
    work = out.with_name(out.stem + ".run")
    summary = train_run(spec, work, resume=not args.no_resume)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best_path(work), out)
    if args.json != "-":
        print_summary(summary, work)
        print(f"  checkpoint: {out}  (use --source file:{out})")
    emit_json({**summary.to_dict(), "checkpoint": str(out)}, args.json)
    return 0
