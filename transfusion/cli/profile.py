"""``transfusion profile``: the cost profile (parameters, MACs, latency) of models in the zoo."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from transfusion.cost import DEFAULT_REPEATS
from transfusion.models import check_input_size, is_timm_name, list_models, model_config

from .common import UsageError

HELP = "cost profile of models: parameters, MACs, FLOPs, PyTorch / ONNX Runtime / GPU latency"

DESCRIPTION = """\
Profile the cost of models at a given input size and write one row per model.

Counts are for one image (batch 1), in eval mode:
  macs         multiply-accumulates counted by fvcore (FlopCountAnalysis): one multiply-add
               counts once. Conv and linear layers count their MACs; BatchNorm (eval mode)
               counts 2 per activation element, adaptive average pooling 1 per element. Ops
               fvcore cannot count (max-pool, residual add, ...) count 0 and are listed in
               the 'unsupported_ops' column.
  flops_torch  torch.utils.flop_counter.FlopCounterMode: 2 FLOPs per multiply-add of conv /
               matmul ops, an independent check (about 2 x macs for conv nets).
Timings (median of repeated runs after warm-up, milliseconds; p95 = their 95th percentile):
  torch_ms     batch-1 latency in PyTorch on --device; torch_img_s: throughput at --batch
               (as many batches as fit in 3 s after a warm-up one, at least one).
  onnx_ms      batch-1 latency in ONNX Runtime of the torch.onnx (dynamo) export, with the
               max abs / scale-relative error against PyTorch.
  int8_onnx_ms (--int8) the same for its static int8 QDQ variant (per-channel weights).
Trust: without --threads, the CPU timings use torch's thread count lowered to the cores that
other processes leave free (sampled before timing); 'other load' is the cores other processes
kept busy while the latencies were timed. A latency taken under load (0.5 cores or more) or
with an unsteady tail (p95 over 1.5x the median) is measured again, and flagged if the doubt
remains. stderr shows the seconds each stage of the profile took.
  gpu_ms       (--device cuda) batch-1 latency from CUDA events, fp32; gpu_amp_ms: bf16
               autocast.
Columns not measured are null in JSON and empty in CSV.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``profile`` subcommand to the ``transfusion`` parser."""
    p = subparsers.add_parser(
        "profile",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="model names ('all' = the whole zoo; timm:NAME = any timm model, with the timm extra)")
    p.add_argument("--res", type=int, default=None, metavar="PX",
                   help="input side in px (default: each model's design size, 224; Inception-v3 299)")
    p.add_argument("--batch", type=int, default=32, metavar="N",
                   help="batch size of the throughput measurement (default 32)")
    p.add_argument("--num-classes", type=int, default=2, metavar="C",
                   help="outputs of the head (default 2)")
    p.add_argument("--in-chans", type=int, default=3, metavar="C",
                   help="input channels (default 3)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                   help="where PyTorch and ONNX Runtime run (default auto: cuda when available, else cpu)")
    p.add_argument("--no-onnx", dest="onnx", action="store_false",
                   help="skip ONNX export and ONNX Runtime timing")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="intra-op threads for torch and ONNX Runtime (default: torch's default, lowered to the cores "
                        "other processes leave free)")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, metavar="N",
                   help=f"timed runs per latency after warm-up (default {DEFAULT_REPEATS})")
    p.add_argument("--int8", action="store_true",
                   help="also time each model's static int8 ONNX variant (int8 ms, file sizes; latency only — "
                        "for the AUC of a trained model's int8 variant use 'transfusion export RUN --quantize static')")
    p.add_argument("--stages", action="store_true",
                   help="instead of timing: parameters and MACs of each stage of the stage view (the units "
                        "transfusion:K and freeze:K act on), from fvcore's per-module counts")
    p.add_argument("--json", default=None, metavar="PATH|-",
                   help="write the rows as JSON to PATH ('-' = stdout; the table then goes to stderr)")
    p.add_argument("--csv", default=None, metavar="PATH", help="write the rows as CSV to PATH")
    p.set_defaults(func=run)
    return p


def resolve_models(names: list[str]) -> list[str]:
    """Expand ``all`` to the zoo and check every name; raises ``UsageError`` listing the known
    names for an unknown one. Duplicates are dropped, order kept."""
    known = list_models()
    out: list[str] = []
    for name in names:
        expanded = known if name == "all" else [name]
        for item in expanded:
            if is_timm_name(item):
                try:
                    model_config(item)  # timm missing, or a name timm does not know: its own message
                except (ValueError, ImportError) as exc:
                    raise UsageError(str(exc)) from None
            elif item not in known:
                raise UsageError(f"unknown model {item!r}; known models: {', '.join(known)} (or 'all', or "
                                 "timm:NAME for any timm model)")
            if item not in out:
                out.append(item)
    return out


def _check_args(args: argparse.Namespace, names: list[str]) -> None:
    if args.int8 and not args.onnx:
        raise UsageError("--int8 times an ONNX variant: drop --no-onnx")
    for flag in ("res", "batch", "num_classes", "in_chans", "threads", "repeats"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    from transfusion.core.runtime import check_device, resolve_device

    args.device = resolve_device(args.device)
    if args.device == "cuda":
        try:
            check_device(args.device)
        except ValueError as exc:
            raise UsageError(f"--device cuda: {exc}") from None
    for name in names:  # before any compute
        res = args.res if args.res is not None else model_config(name).default_res_px
        try:
            check_input_size(name, res, args.in_chans)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc


def _fmt(value: Any, scale: float = 1.0, digits: int = 1, *, sci: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if sci:
        return f"{value:.1e}"
    return f"{value / scale:.{digits}f}"


def _unsupported(r: dict[str, Any]) -> str:
    return ", ".join(f"{op.removeprefix('aten::')}×{n}" for op, n in (r.get("unsupported_ops") or {}).items())


#: (header, justify, cell) of each column of the profile table
_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("model", "left", lambda r: r["model"]),
    ("res px", "right", lambda r: _fmt(r["res"], digits=0)),
    ("params M", "right", lambda r: _fmt(r["params"], 1e6, 2)),
    ("GMACs", "right", lambda r: _fmt(r["macs"], 1e9, 2)),
    ("GFLOPs torch", "right", lambda r: _fmt(r["flops_torch"], 1e9, 2)),
    ("torch ms", "right", lambda r: _fmt(r["torch_ms"])),
    ("p95", "right", lambda r: _fmt(r.get("torch_p95_ms"))),
    ("img/s", "right", lambda r: _fmt(r["torch_img_s"])),
    ("onnx ms", "right", lambda r: _fmt(r["onnx_ms"])),
    ("p95", "right", lambda r: _fmt(r.get("onnx_p95_ms"))),
    ("int8 ms", "right", lambda r: _fmt(r.get("int8_onnx_ms"))),
    ("onnx rel err", "right", lambda r: _fmt(r["onnx_max_rel_err"], sci=True)),
    ("gpu ms", "right", lambda r: _fmt(r["gpu_ms"], digits=2)),
    ("gpu amp ms", "right", lambda r: _fmt(r["gpu_amp_ms"], digits=2)),
    ("threads", "right", lambda r: _fmt(r.get("threads"), digits=0)),
    ("other load", "right", lambda r: _fmt(r.get("load"), digits=1)),
    ("not counted", "left", _unsupported),
    ("latency flag / error", "left", lambda r: "; ".join(x for x in (r.get("latency_flag"), r["error"]) if x)),
)


def render_table(rows: list[dict[str, Any]], *, title: str | None = None):
    """A ``rich`` table of profile rows (parameters in M, MACs in G, times in ms); a column no row
    has a value in (GPU columns on a CPU machine, int8 without ``--int8``, no flag) is left out."""
    from rich.table import Table

    cells = [[cell(r) for _, _, cell in _COLUMNS] for r in rows]
    keep = [i for i, (header, _, _) in enumerate(_COLUMNS)
            if header in ("model", "res px") or any(c[i] not in ("—", "") for c in cells)]
    table = Table(title=title)
    for i in keep:
        table.add_column(_COLUMNS[i][0], justify=_COLUMNS[i][1])
    for c in cells:
        table.add_row(*(c[i] for i in keep))
    return table


def _stage_rows(names: list[str], args: argparse.Namespace, console: Any) -> list[dict[str, Any]]:
    """Per-stage parameters and MACs of each model, one table per model; returns the rows."""
    import torch
    from rich.table import Table

    from transfusion.cost.counts import stage_costs
    from transfusion.models import create_model

    rows = []
    for name in names:
        res = args.res if args.res is not None else model_config(name).default_res_px
        model = create_model(name, num_classes=args.num_classes, in_chans=args.in_chans)
        per = stage_costs(model, torch.zeros(1, args.in_chans, res, res))
        total_p, total_m = sum(r["params"] for r in per), sum(r["macs"] for r in per)
        table = Table(title=f"{name} @ {res} px: {total_p / 1e6:.2f} M parameters, {total_m / 1e9:.3f} GMACs per image")
        for col in ("stage", "params M", "share", "GMACs", "share"):
            table.add_column(col, justify="left" if col == "stage" else "right")
        for r in per:
            table.add_row(r["stage"], f"{r['params'] / 1e6:.3f}", f"{100 * r['params'] / max(total_p, 1):.1f}%",
                          f"{r['macs'] / 1e9:.4f}", f"{100 * r['macs'] / max(total_m, 1):.1f}%")
            rows.append({"model": name, "res": res, **r})
        console.print(table)
    return rows


def run(args: argparse.Namespace) -> int:
    """Profile the requested models; exit 0, or 1 if some row has an error."""
    names = resolve_models(args.models)
    _check_args(args, names)
    from rich.console import Console

    from transfusion.cost.profile import profile_models

    to_stdout = args.json != "-"
    out = sys.stdout if to_stdout else sys.stderr
    # not a terminal (a pipe, a log file): wide enough that the table's rows stay on one line
    console = Console(file=out, width=None if out.isatty() else 200)
    status = Console(file=sys.stderr)
    if args.stages:
        rows = _stage_rows(names, args, console)
        _write(rows, args)
        return 0

    def progress(row: dict[str, Any]) -> None:
        state = "failed" if row["error"] else "done"
        split = row.get("stage_seconds") or {}
        took = f" in {sum(split.values()):.1f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in split.items()) + ")" \
            if split else ""
        status.print(f"[dim]profile {row['model']} @ {row['res']} px: {state}{took}[/dim]", highlight=False)

    rows = profile_models(
        names,
        res=args.res,
        batch=args.batch,
        num_classes=args.num_classes,
        in_chans=args.in_chans,
        device=args.device,
        onnx=args.onnx,
        int8=args.int8,
        repeats=args.repeats,
        threads=args.threads,
        on_row=progress,
    )
    device = rows[0]["device"] if rows else args.device
    console.print(render_table(rows, title=f"cost profile — {device}, throughput at batch {args.batch}"))
    _write(rows, args)
    return 1 if any(r["error"] for r in rows) else 0


def _write(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The rows as JSON (``--json``) and CSV (``--csv``)."""
    if args.json is not None:
        text = json.dumps(rows, indent=2)
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            from transfusion.core.files import write_text

            write_text(args.json, text + "\n")
    if args.csv is not None:
        if args.stages:
            from transfusion.core.files import write_csv

            write_csv(args.csv, ("model", "res", "stage", "params", "macs"), rows)
        else:
            from transfusion.cost.profile import rows_to_frame

            Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
            rows_to_frame(rows).to_csv(args.csv, index=False)
