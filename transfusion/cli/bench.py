"""``transfusion bench``: run a suite's grid into a results store, then summarise and report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import UsageError, plain, safe


def add_parser(sub: argparse._SubParsersAction) -> None:
    from transfusion.harness.suite import shipped_suites

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
    p.add_argument("--workers", type=int, metavar="N",
                   help="local worker processes (default: the suite's [run] workers, else 1)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads per worker (default: the suite's [run] threads, else cores // workers)")
    p.add_argument("--device", default="auto",
                   help="training device: cpu, cuda, cuda:N or auto (default auto: cuda when available, else cpu)")
    p.add_argument("--ray-address", metavar="ADDR", help="Ray cluster address (default: start a local instance)")
    p.add_argument("--data-root", metavar="PATH", help="fills {data_root} in the suite's dataset strings")
    p.add_argument("--rerun-failed", action="store_true", help="run failed runs again")
    p.add_argument("--force", action="store_true", help="run every run again, done ones included")
    p.add_argument("--dry-run", action="store_true", help="list the grid and exit")
    p.set_defaults(func=run)


def print_summary(rows: list[dict], console: Any) -> None:
    """The summary table (see :mod:`transfusion.harness.summary`) on the terminal."""
    from rich.table import Table

    from transfusion.core.text import num

    table = Table(title="test AUC over seeds (SD, min–max) beside cost", show_lines=False)
    for col in ("dataset", "model", "init", "seeds", "AUC", "SD", "min–max", "AUPRC", "params (M)", "GMACs",
                "torch ms", "ONNX ms", "train s"):
        table.add_column(col, justify="left" if col in ("dataset", "model", "init") else "right")
    for r in rows:
        spread = "—" if r["auc_min"] is None else f"{num(r['auc_min'])}–{num(r['auc_max'])}"
        table.add_row(
            plain(r["dataset"].split("?")[0]), plain(r["model"]), plain(r["init"]), str(r["n_seeds"]), num(r["auc_mean"]),
            num(r["auc_std"]), spread, num(r["auprc_mean"]), num(r["params"], ".2f", scale=1e6),
            num(r["macs"], ".3f", scale=1e9), num(r["torch_ms"], ".2f"), num(r["onnx_ms"], ".2f"),
            num(r["train_seconds"], ".0f"))
    console.print(table)


class _Progress:
    """Live progress of a bench: one line per finished run above a bar whose ETA (rich's) counts
    only the runs still to do in this session."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("runs ·"), TimeElapsedColumn(), TextColumn("· ETA"),
                                 TimeRemainingColumn(), console=console, transient=True)
        self.task = None

    def __enter__(self) -> _Progress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, kind: str, row: dict) -> None:
        out = self.progress.console
        if kind == "plan":
            self.task = self.progress.add_task("to do", total=row["todo"])
        elif kind == "start":
            s = row["spec"]
            arm = s["init"] + (f" · {s['scheme']}" if s.get("scheme", "finetune") != "finetune" else "")
            self.progress.update(self.task, description=f"{s['model']} · {arm} · seed {s['seed']}")
        elif kind == "end":
            self.progress.advance(self.task)
            s, auc = row["spec"], row.get("test_auc")
            arm = s["init"] + (f" · {s['scheme']}" if s.get("scheme", "finetune") != "finetune" else "")
            size = f" · {s['train_size']} images" if str(s.get("train_size", "all")) != "all" else ""
            what = f"{s.get('kind', 'train')} {s['model']} · {arm} · {s['data'].split('?')[0]}{size} · seed {s['seed']}"
            res = f"AUC {auc:.3f}" if row["status"] == "done" and auc is not None else \
                f"[red]failed: {safe(row.get('error'))}[/red]"
            out.print(f"  {safe(what)}: {res}")
        elif kind == "robustness":
            self.progress.update(self.task, description=f"robustness {safe(row['model'])} · {safe(row['init'])} · "
                                                        f"{row['corruption']} s{row['severity']}")
        elif kind == "cost":
            from transfusion.core.text import num

            int8 = f", int8 {num(row.get('int8_onnx_ms'), '.2f')} ms" if row.get("int8_onnx_ms") is not None else ""
            flag = f" [yellow](flagged: {safe(row['latency_flag'])})[/yellow]" if row.get("latency_flag") else ""
            out.print(f"[dim]cost {row['model']} @ {row['res']} px: {row.get('macs') or 0:.3g} MACs, "
                      f"torch {num(row.get('torch_ms'), '.2f')} ms, ONNX {num(row.get('onnx_ms'), '.2f')} ms"
                      f"{int8}[/dim]{flag}")
        elif kind == "int8":
            from transfusion.core.text import num

            what = f"int8 {safe(row['model'])} · {safe(row['init'])}"
            out.print(f"[dim]  {what}: " + (f"[red]{safe(row['error'])}[/red]" if row.get("error") else
                      f"AUC {num(row['test_auc'])} (fp32 {num(row['fp32_auc'])}), "
                      f"{'passes' if row['passed'] else 'fails'} at ±{row['margin'] * 100:g} points") + "[/dim]")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from transfusion.harness.grid import expand
    from transfusion.harness.suite import SuiteError, load_suite

    console = Console(width=None if sys.stdout.isatty() else 150)
    for flag in ("workers", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    try:
        suite = load_suite(args.suite, data_root=args.data_root)
        grid = expand(suite)
    except SuiteError as exc:
        raise UsageError(str(exc)) from None
    if suite.report.studies is not None:
        from transfusion.analysis.studies import check_names

        try:
            check_names(suite.report.studies)
        except ValueError as exc:
            raise UsageError(f"{suite.origin}: report.studies: {exc}") from None
    workers = args.workers or suite.run.workers
    threads = args.threads or (suite.run.threads if args.workers is None else None)
    out = Path(args.out or Path("runs") / suite.name)
    if args.device not in ("cpu", "auto") and args.device.split(":")[0] != "cuda":  # the name, even for a dry run
        raise UsageError(f"unknown device {args.device!r}; use 'cpu', 'cuda' (or 'cuda:N') or 'auto'")
    if args.dry_run:
        _print_grid(console, suite.name, grid, out)
        _print_weights(console, grid, out, rerun_failed=args.rerun_failed, force=args.force)
        return 0
    from transfusion.core.runtime import check_device, resolve_device

    device = resolve_device(args.device)
    if device != "cpu":
        check_device(device)
    report_dir = Path(args.report_dir or Path("reports") / suite.name)
    if not args.no_report:  # a folder the report may not write into: say so before any training
        from transfusion.report.build import check_report_folder

        check_report_folder(report_dir)
    from transfusion.harness.runner import run_suite

    console.print(f"[bold]suite {safe(suite.name)}[/bold]: {len(grid.pretrain)} pretraining + {len(grid.runs)} "
                  f"training runs → {safe(out)}/results.sqlite")
    with _Progress(console) as progress:
        result = run_suite(suite, out, executor=args.executor, workers=workers, threads=threads,
                           device=device, rerun_failed=args.rerun_failed, force=args.force,
                           ray_address=args.ray_address, grid=grid, on_event=progress)
    print_summary(result.summary, console)
    c = result.counts
    console.print(f"{c['done']} done, {c['failed']} failed in {result.seconds / 60:.1f} min; "
                  f"summary: {safe(out / 'summary.csv')}")
    phases = dict(result.phases)
    if not args.no_report:
        import time

        from transfusion.report.build import build_report

        t0 = time.time()
        paths = build_report(result.store_path, report_dir, suite_name=suite.name, reuse=True)
        phases["report"] = time.time() - t0
        console.print(f"report: {safe(paths['md'])}" + (" (up to date)" if "reused" in paths else ""))
    now = ", ".join(f"{k} {phases[k]:.0f}" for k in ("runs", "costs", "int8", "robustness", "summary", "report") if k in phases)
    console.print(f"time (s) — this command: {now}; the suite's runs in the store: pretraining "
                  f"{phases['pretraining']:.0f}, training {phases['training']:.0f} (outside the training loop: "
                  f"data, model build, test scoring {phases['outside_loop']:.0f})", highlight=False)
    if c["failed"]:
        from transfusion.harness.store import Store

        with Store(result.store_path) as store:
            failed = store.runs(status="failed", run_ids=result.grid.ids)
        for r in failed[:10]:
            print(f"failed {r['run_id']} {r['spec']['model']} {r['spec']['init']}: {r['error']}", file=sys.stderr)
        return 1
    return 0


def _print_weights(console: Any, grid: Any, out: Path, *, rerun_failed: bool, force: bool) -> None:
    """The weight files the unfinished runs need and whether each is there; raises when one is
    missing and cannot be downloaded (the same check bench makes before any work)."""
    from transfusion.harness.runner import todo_specs
    from transfusion.harness.weights import check_weights, weight_files

    todo = todo_specs(grid, out, rerun_failed=rerun_failed, force=force)
    for f in weight_files(todo):
        if f.present:
            state = "present"
        else:
            from transfusion.transfer.sources import downloads_allowed

            fetched = f.source == "imagenet" and f.arch and downloads_allowed()
            state = "missing (downloaded before the runs start)" if fetched else "MISSING"
        console.print(f"  weights  {safe(f.source):10s} {f.arch or '-':14s} {safe(f.path)}  {state}, {f.runs} run(s)",
                      highlight=False)
    check_weights(todo)


def _print_grid(console: Any, name: str, grid: Any, out: Path) -> None:
    console.print(f"suite {safe(name)}: {len(grid.pretrain)} pretraining + {len(grid.runs)} training runs "
                  f"→ {safe(out)}", highlight=False)
    for s in grid.pretrain:
        console.print(f"  pretrain {s.run_id}  {s.model:14s} seed={s.seed} {safe(s.data)}", highlight=False)
    for s in grid.runs:
        scheme = "" if s.scheme == "finetune" else f"scheme={s.scheme} "
        console.print(f"  train    {s.run_id}  {s.model:14s} {s.init:14s} {scheme}seed={s.seed} size={s.train_size} "
                      f"{safe(s.data)}", highlight=False)
