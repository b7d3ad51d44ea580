"""``transfusion bench``: run a suite's grid into a results store, then summarise and report."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from .suite import SuiteError, expand, load_suite, shipped_suites


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run a benchmark suite (default: the quick suite) and write its report",
        description=(
            "Run every run of a suite's grid that is not done yet — pretraining first, then "
            "training, then cost profiles (params, MACs, PyTorch and ONNX Runtime latency) — into "
            "OUT/results.sqlite with per-run folders OUT/<run id>/, print a summary table "
            "(OUT/summary.csv) and write the report. Interrupted? Run the same command again: "
            "finished runs are skipped and a run killed half-way resumes from its last checkpoint."
        ),
        epilog=f"shipped suites: {', '.join(shipped_suites())}",
    )
    p.add_argument("suite", nargs="?", default="quick", help="a shipped suite name or a TOML file (default quick)")
    p.add_argument("--out", metavar="DIR", help="output folder for the store and runs (default runs/<suite>)")
    p.add_argument("--report-dir", metavar="DIR", help="report folder (default reports/<suite>)")
    p.add_argument("--no-report", action="store_true", help="skip writing the report")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local processes (default) or Ray tasks")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="local worker processes (default 1)")
    p.add_argument("--threads", type=int, metavar="N", help="threads per worker (default: cores // workers)")
    p.add_argument("--device", default="cpu", help="training device: cpu or cuda (default cpu)")
    p.add_argument("--ray-address", metavar="ADDR", help="Ray cluster address (default: start a local instance)")
    p.add_argument("--data-root", metavar="PATH", help="fills {data_root} in the suite's dataset strings")
    p.add_argument("--rerun-failed", action="store_true", help="run failed runs again")
    p.add_argument("--force", action="store_true", help="run every run again, done ones included")
    p.add_argument("--dry-run", action="store_true", help="list the grid and exit")
    p.set_defaults(func=run)


def _fmt(v, spec: str = ".3f") -> str:
    if v is None:
        return "—"
    return format(v, spec)


def print_summary(rows: list[dict], console) -> None:
    from rich.table import Table

    table = Table(title="AUC (mean ± std over seeds) beside cost", show_lines=False)
    for col in ("dataset", "model", "init", "n", "AUC", "AUPRC", "acc", "params (M)", "GMACs", "torch ms",
                "ONNX ms", "train s"):
        table.add_column(col, justify="left" if col in ("dataset", "model", "init") else "right")
    for r in rows:
        auc = "—" if r["auc_mean"] is None else f"{r['auc_mean']:.3f} ± {r['auc_std']:.3f}"
        table.add_row(
            r["dataset"].split("?")[0], r["model"], r["init"], str(r["n_seeds"]), auc, _fmt(r["auprc_mean"]),
            _fmt(r["acc_mean"]), _fmt(r["params"] and r["params"] / 1e6, ".2f"),
            _fmt(r["macs"] and r["macs"] / 1e9, ".3f"), _fmt(r["torch_ms"], ".2f"), _fmt(r["onnx_ms"], ".2f"),
            _fmt(r["train_seconds"], ".0f"),
        )
    console.print(table)


def write_csv(rows: list[dict], path: Path) -> None:
    if not rows:
        return
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .runner import run_suite

    console = Console(width=None if sys.stdout.isatty() else 150)
    try:
        suite = load_suite(args.suite, data_root=args.data_root)
        grid = expand(suite)
    except SuiteError as exc:
        raise ValueError(str(exc)) from None
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: CUDA is not available on this machine; use --device cpu")
    out = Path(args.out or Path("runs") / suite.name)
    if args.dry_run:
        console.print(f"suite {suite.name}: {len(grid.pretrain)} pretraining + {len(grid.runs)} training runs "
                      f"→ {out}")
        for s in grid.pretrain:
            console.print(f"  pretrain {s.run_id}  {s.model:14s} {s.data}")
        for s in grid.runs:
            console.print(f"  train    {s.run_id}  {s.model:14s} {s.init:14s} seed={s.seed} size={s.train_size} "
                          f"{s.data}")
        return 0

    total = len(grid.all)
    state = {"finished": 0, "done": 0, "failed": 0, "t0": time.time(), "last": ""}

    def on_event(kind: str, row: dict) -> None:
        if kind == "start":
            s = row["spec"]
            console.print(f"[dim]▶ {s.get('kind', 'train')} {s['model']} · {s['init']} · "
                          f"{s['data'].split('?')[0]} · seed {s['seed']}[/dim]")
        elif kind == "end":
            state["finished"] += 1
            state["done" if row["status"] == "done" else "failed"] += 1
            elapsed = time.time() - state["t0"]
            left = total - state["finished"]
            eta = elapsed / state["finished"] * left
            auc = row.get("test_auc")
            res = f"AUC {auc:.3f}" if row["status"] == "done" and auc is not None else \
                f"[red]failed: {row.get('error')}[/red]"
            console.print(f"  {res}  [{state['done']} done, {state['failed']} failed, {left} to go this session, "
                          f"ETA {eta / 60:.1f} min]")
        elif kind == "counts":
            console.print(f"  {row['done']} done, {row['failed']} failed, {row['running']} running, "
                          f"{row['pending']} pending")
        elif kind == "cost":
            console.print(f"[dim]cost {row['model']} @ {row['res']} px: {row.get('macs') or 0:.3g} MACs, "
                          f"torch {row.get('torch_ms')} ms, onnx {row.get('onnx_ms')} ms[/dim]")

    console.print(f"[bold]suite {suite.name}[/bold]: {len(grid.pretrain)} pretraining + {len(grid.runs)} training "
                  f"runs → {out}/results.sqlite")
    result = run_suite(suite, out, executor=args.executor, workers=args.workers, threads=args.threads,
                       device=args.device, rerun_failed=args.rerun_failed, force=args.force,
                       ray_address=args.ray_address, on_event=on_event)
    print_summary(result.summary, console)
    write_csv(result.summary, out / "summary.csv")
    c = result.counts
    console.print(f"{c['done']} done, {c['failed']} failed in {result.seconds / 60:.1f} min; "
                  f"summary: {out / 'summary.csv'}")
    if not args.no_report:
        report_dir = Path(args.report_dir or Path("reports") / suite.name)
        try:
            from transfusion.analysis.report import build_report
        except ImportError:
            build_report = None
        if build_report is not None:
            paths = build_report(result.store_path, report_dir, suite_name=suite.name)
            console.print(f"report: {paths['md']}")
    if c["failed"]:
        failed = [r for r in _failed_runs(result.store_path, [s.run_id for s in grid.all])]
        for r in failed[:10]:
            print(f"failed {r['run_id']} {r['spec']['model']} {r['spec']['init']}: {r['error']}", file=sys.stderr)
        return 1
    return 0


def _failed_runs(store_path: Path, ids: list[str]) -> list[dict]:
    from .store import Store

    with Store(store_path) as store:
        return store.runs(status="failed", run_ids=ids)
