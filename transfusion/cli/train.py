"""``transfusion train`` and the training options shared with ``pretrain``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transfusion.train.spec import OPTIMIZERS, SCHEDULES, SELECTIONS, RunSpec, TrainConfig
from transfusion.transfer import REGIME_FORMS

from .common import UsageError, emit_json

if TYPE_CHECKING:  # pragma: no cover
    from transfusion.train.summary import RunSummary


def add_training_options(p: argparse.ArgumentParser) -> None:
    """Options every training command shares (data, length, optimisation, runtime)."""
    p.add_argument("model", help="model name (see `transfusion profile all` or transfusion.models.list_models())")
    p.add_argument("--data", required=True, metavar="SPEC",
                   help="dataset spec, e.g. 'synth-retina?n=2000&res=64', 'chexpert:/data/CheXpert-v1.0-small'")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, help="training length in epochs (default 5)")
    length.add_argument("--steps", type=int, help="training length in optimizer steps")
    p.add_argument("--res", type=int, metavar="PX", help="input side in px (default: the data spec's res)")
    p.add_argument("--batch", type=int, default=32, metavar="N", help="batch size (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="default adamw")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="decoupled weight decay (default 1e-4)")
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine", help="after a linear warm-up (default cosine)")
    p.add_argument("--warmup", type=float, default=0.05, help="warm-up as a fraction of all steps (default 0.05)")
    p.add_argument("--no-augment", action="store_true", help="turn off flip/shift augmentation")
    p.add_argument("--eval-every", type=int, metavar="STEPS", help="validation interval (default: each epoch)")
    p.add_argument("--select", choices=SELECTIONS, default="best",
                   help="test with the best-by-validation weights or the last ones (default best)")
    p.add_argument("--train-size", default="all", help="'all', a count (5000) or a fraction (0.1) of the training split")
    p.add_argument("--seed", type=int, default=0, help="seed for init, data order and augmentation (default 0)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default auto: cuda when available)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: on for CUDA, off on CPU)")
    p.add_argument("--no-resume", action="store_true", help="start over even if DIR holds a checkpoint of this run")
    p.add_argument("--json", metavar="PATH|-", help="also write the summary as JSON ('-' for stdout)")


def train_config_from_args(args: argparse.Namespace, **extra) -> TrainConfig:
    from transfusion.core.runtime import resolve_device

    return TrainConfig(
        epochs=args.epochs, steps=args.steps, batch_size=args.batch, optimizer=args.optimizer, lr=args.lr,
        weight_decay=args.weight_decay, schedule=args.schedule, warmup=args.warmup,
        augment=not args.no_augment, eval_every=args.eval_every, select=args.select, device=resolve_device(args.device), threads=args.threads,
        amp=args.amp, **extra,
    )


def print_summary(s: RunSummary, out_dir: Path, file: Any = None) -> None:
    """A finished run in five lines (to ``file``, default the current stdout)."""
    file = file or sys.stdout
    from transfusion.core.text import interval, num

    ci = f" (95% CI {interval(*s.test_auc_ci)})" if s.test_auc_ci else ""
    lines = [
        f"{s.model} · {s.init} · {s.data} · seed {s.seed}",
        f"  test AUC {num(s.test_auc, '.4f')}{ci}  AUPRC {num(s.test_auprc, '.4f')}  acc {num(s.test_acc, '.4f')}",
        f"  {s.steps} steps ({s.epochs:.2f} epochs, batch {s.batch_size}, {s.n_train} train images)"
        f" in {s.train_seconds:.1f} s train time; {num(s.train_img_s, '.1f')} img/s",
        f"  best val AUC {num(s.val_auc_best, '.4f')} at step {s.best_step}; steps to target: {s.steps_to_target}",
        f"  written to {out_dir}",
    ]
    print("\n".join(lines), file=file)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one model under one init regime",
        description=(
            "Train MODEL on a dataset under an init regime and score it on the test split "
            "(AUC with a bootstrap 95%% interval, AUPRC, accuracy). Writes DIR/curve.csv, "
            "best.pt, last.pt, predictions.npz and summary.json; re-running with the same "
            "options resumes from DIR/last.pt."
        ),
    )
    add_training_options(p)
    p.add_argument("--init", default="random", metavar="REGIME",
                   help=f"init regime: {', '.join(REGIME_FORMS)} (default random)")
    p.add_argument("--source", metavar="SRC", help="pretrained weights: imagenet or file:PATH (a `pretrain` checkpoint)")
    p.add_argument("--scheme", default="finetune", metavar="SCHEME",
                   help="how much of the network trains: finetune (default; every stage), linear (frozen body, "
                        "a linear head on pooled features), knn (no training: k nearest training images vote), "
                        "lp-ft (linear probe, then fine-tune everything), truncate:K (stages 1..K and a new head)")
    p.add_argument("--lp-fraction", type=float, default=0.5, metavar="F",
                   help="lp-ft: share of the steps spent linear-probing (default 0.5)")
    p.add_argument("--knn-k", type=int, default=11, metavar="K", help="knn: neighbours that vote (default 11)")
    p.add_argument("--target-auc", type=float, metavar="X", help="validation AUC target for steps-to-target")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/train/<run id>)")
    p.add_argument("--force", action="store_true",
                   help="train into --out even when it holds another run's files (they are overwritten)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from transfusion.train import TrainingDiverged, normalise_spec, train_run
    from transfusion.transfer.regime import parse_regime

    if args.source and not parse_regime(args.init).needs_source:
        raise UsageError(f"init {args.init} takes no pretrained weights, so --source {args.source} would be ignored; "
                         "drop --source, or choose a regime that uses it (transfer, meanvar, transfusion:K, ...)")

    from transfusion.models import is_model, num_stages
    from transfusion.transfer import check_scheme, parse_scheme

    try:
        parse_scheme(args.scheme)
        if args.scheme != "finetune" and is_model(args.model):  # an unknown model is reported on its own
            check_scheme(args.scheme, args.init, num_stages(args.model))
    except ValueError as exc:
        raise UsageError(f"--scheme {args.scheme} with --init {args.init}: {exc}") from None
    spec = RunSpec(
        model=args.model, data=args.data, init=args.init, source=args.source, seed=args.seed,
        train_size=args.train_size, res=args.res, scheme=args.scheme,
        train=train_config_from_args(args, target_auc=args.target_auc, lp_fraction=args.lp_fraction,
                                     knn_k=args.knn_k),
    )
    spec = normalise_spec(spec)
    out = Path(args.out or Path("runs") / "train" / spec.run_id)
    try:
        summary = train_run(spec, out, resume=not args.no_resume, overwrite=args.force)
    except TrainingDiverged as exc:
        emit_json({**spec.to_dict(), "run_id": spec.run_id, "status": "failed", "error": str(exc)}, args.json)
        print(f"transfusion train: run failed: {exc}", file=sys.stderr)
        return 1
    if args.json != "-":
        print_summary(summary, out)
    emit_json(summary.to_dict(), args.json)
    return 0
