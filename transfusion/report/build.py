"""Writing the accuracy-versus-cost report of a results store.

``build_report(store_path, out_dir)`` writes ``report.md``, a self-contained ``report.html``
(figures embedded as base64 PNG), ``figures/*.png`` and ``tables/*.csv``; the rows come from
:func:`.data.report_data`, the sections from :mod:`.sections` and :mod:`.appendix`.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from transfusion.core.files import write_csv, write_text
from transfusion.core.machine import library_versions, machine_info
from transfusion.harness.store import Store, store_file
from transfusion.harness.summary import SUMMARY_COLUMNS

from . import appendix as A
from . import document as D
from . import sections as S
from .clinical import CALIBRATION_COLUMNS, OPERATING_COLUMNS, clinical_section
from .data import PAIRED_COLUMNS, PARETO_COLUMNS, SEED_COLUMNS, ReportData, report_data
from .efficiency import CROSSOVER_COLUMNS, efficiency_section
from .robustness import CURVE_COLUMNS, ROBUST_COLUMNS, ROBUST_PAIRED_COLUMNS, robustness_section


def environment() -> dict[str, Any]:
    """This machine and the library versions (for the report's environment section)."""
    import sys

    return {"machine": machine_info(), "versions": library_versions(), "python": sys.version.split()[0],
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _run_studies(store_path: Path, out_dir: Path, probe: int | None = None,
                 only: tuple[str, ...] | None = None) -> tuple[list[Any], str | None]:
    try:
        from transfusion.analysis.studies import run_all
    except ImportError as exc:
        return [], f"the analysis studies module (transfusion.analysis.studies) is not available: {exc}"
    opts = {"probe": int(probe), "fit": int(probe)} if probe else {}
    try:
        return list(run_all(store_path, out_dir, only=only, **opts)), None
    except Exception as exc:  # shown in the report, never silenced
        return [], f"the analysis studies failed: {type(exc).__name__}: {exc}"


_MANIFEST = ".transfusion-report"  # {"stamp": what the report was computed from, "files": what it wrote}
_LEGACY_STAMP = ".store-fingerprint"  # written by reports before the manifest


def _stamp(store_path: str | Path, **options: Any) -> str:
    """What a report is a function of: the store's contents, the options and this version."""
    from transfusion import __version__

    with Store(store_file(store_path)) as store:
        fingerprint = store.fingerprint()
    return json.dumps({"store": fingerprint, "version": __version__, **options}, sort_keys=True, default=str)


def build_report(
    store_path: str | Path,
    out_dir: str | Path,
    *,
    suite_name: str | None = None,
    margin: float | None = None,
    delta: float | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    studies: bool = True,
    reuse: bool = False,
) -> dict[str, Path]:
    """Write the report of ``store_path`` (a store file or its folder) into ``out_dir``.

    Returns paths: ``md``, ``html``, ``figures`` and ``tables`` (folders). ``margin`` (the
    equivalence margin) and ``delta`` (the recommendation's tolerance) are in AUC units and
    default to the suite's ``[report]`` table; ``studies=False`` skips the analysis studies.
    ``reuse=True`` returns the existing report untouched when it was written from the same store
    contents with the same options (``transfusion bench`` on a finished suite).

    ``out_dir`` must be new, empty, or a report folder this package wrote: the files an earlier
    report wrote (listed in its ``.transfusion-report`` manifest) are removed first, so none of
    its stale figures survive, and nothing else is touched. A folder holding other files raises
    :class:`ReportOutputError` before anything is written.
    """
    out = Path(out_dir)
    earlier, earlier_stamp = _owned_files(out)
    figs, tabs = out / "figures", out / "tables"
    paths = {"md": out / "report.md", "html": out / "report.html", "figures": figs, "tables": tabs}
    stamp = _stamp(store_path, suite_name=suite_name, margin=margin, delta=delta, n_boot=n_boot, level=level,
                   studies=studies)
    if reuse and earlier_stamp == stamp and all(p.exists() for p in paths.values()):
        return paths | {"reused": out / _MANIFEST}
    data = report_data(store_path, suite_name=suite_name, margin=margin, delta=delta, n_boot=n_boot, level=level)
    for rel in earlier:  # the earlier report's own files: stale figures must not survive
        (out / rel).unlink(missing_ok=True)
    present = _file_states(out)  # what is left is the user's: the report claims only what it writes
    for d in (figs, tabs):
        d.mkdir(parents=True, exist_ok=True)
    study_out, study_err = (_run_studies(data.store_path, out / "studies", data.suite.report.probe,
                                         data.suite.report.studies) if studies
                            else ([], "skipped (studies=False)"))
    env = environment()
    doc = _document(data, out, figs, tabs, study_out, study_err, env)
    md = out / "report.md"
    html_path = out / "report.html"
    write_text(md, D.render_markdown(doc, out))
    write_text(html_path, D.render_html(doc, out))
    written = sorted(rel for rel, state in _file_states(out).items()
                     if rel != _MANIFEST and present.get(rel) != state)
    write_text(out / _MANIFEST, json.dumps({"stamp": stamp, "files": written}, indent=1) + "\n")
    return paths


class ReportOutputError(ValueError):
    """The report's output folder holds files this package did not write."""


def _file_states(out: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``out`` (relative path) with its modification time (ns) and size."""
    return {str(f.relative_to(out)): (f.stat().st_mtime_ns, f.stat().st_size)
            for f in out.rglob("*") if f.is_file()} if out.is_dir() else {}


def check_report_folder(out_dir: str | Path) -> None:
    """Raise :class:`ReportOutputError` unless ``out_dir`` may receive a report (new, empty, or
    an earlier report's folder) — for commands that check before hours of work."""
    _owned_files(Path(out_dir))


def _owned_files(out: Path) -> tuple[list[str], str | None]:
    """The files (relative to ``out``) an earlier report wrote into ``out`` and the stamp it was
    computed from: its manifest's, or for a report of a version before manifests (it has the
    ``.store-fingerprint`` file) its report.md/html and the PNG/CSV files of its figures, tables
    and studies folders (no stamp). Raises :class:`ReportOutputError` when ``out`` holds anything
    else and is not such a folder."""
    if not out.exists():
        return [], None
    if not out.is_dir():
        raise ReportOutputError(f"report folder {out} is a file; choose a folder (new, empty, or an earlier report)")
    manifest = out / _MANIFEST
    if manifest.is_file():
        try:
            doc = json.loads(manifest.read_text())
            files, stamp = doc["files"], doc.get("stamp")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ReportOutputError(f"{manifest} is not a transfusion report manifest; remove it or choose another "
                                    "folder") from None
        safe = [f for f in files if isinstance(f, str) and ".." not in Path(f).parts and not Path(f).is_absolute()]
        return safe, stamp if isinstance(stamp, str) else None
    if (out / _LEGACY_STAMP).is_file():
        return [str(f.relative_to(out)) for f in (out / "report.md", out / "report.html", out / _LEGACY_STAMP,
                                                   *(p for d in ("figures", "tables", "studies")
                                                     for pat in ("*.png", "*.csv") for p in (out / d).glob(pat)))
                if f.is_file()], None
    foreign = next((f for f in sorted(out.rglob("*")) if f.is_file()), None)
    if foreign is not None:
        raise ReportOutputError(f"report folder {out} already holds files a report did not write (e.g. "
                                f"{foreign.relative_to(out)}); choose a new or empty folder — a report replaces "
                                "only its own files")
    return [], None


def _document(data: ReportData, out: Path, figs: Path, tabs: Path, study_out: list, study_err: str | None,
              env: dict) -> D.Doc:
    s = data.suite
    title = f"transfusion report: {s.name or 'results store'}"
    sub = (f"{s.description} — " if s.description else "") + f"store {data.store_path}; generated {env['date']}"
    doc = D.Doc(title, subtitle=sub)
    summary_csv = write_csv(tabs / "summary.csv", SUMMARY_COLUMNS, data.summary)
    paired_csv = write_csv(tabs / "paired.csv", PAIRED_COLUMNS, data.paired)
    write_csv(tabs / "paired_seeds.csv", SEED_COLUMNS, data.paired_seeds)
    pareto_csv = write_csv(tabs / "pareto.csv", PARETO_COLUMNS, data.pareto)

    calibration_csv = write_csv(tabs / "calibration.csv", CALIBRATION_COLUMNS, data.clinical.calibration)
    operating_csv = write_csv(tabs / "operating_points.csv", OPERATING_COLUMNS, data.clinical.operating)
    rob = data.robustness
    robust_csvs = {} if not rob.cells else {
        "cells_csv": write_csv(tabs / "robustness.csv", ROBUST_COLUMNS, rob.cells),
        "curves_csv": write_csv(tabs / "robustness_curves.csv", CURVE_COLUMNS, rob.curves),
        "paired_csv": write_csv(tabs / "robustness_paired.csv", ROBUST_PAIRED_COLUMNS, rob.paired)}

    doc.sections.append(S.glance(data))
    for data_key in data.datasets:
        doc.sections += S.dataset_sections(data, data_key, figs, summary_csv, paired_csv, pareto_csv)
        title = f"{S.dataset_label(data_key[0], [d for d, _ in data.datasets])} (train size {data_key[1]})"
        doc.sections.append(clinical_section(data.clinical, data_key, title,
                                             figs / f"{S.slug(data_key[0] + data_key[1])}-reliability.png",
                                             margin=data.margin, calibration_csv=calibration_csv,
                                             operating_csv=operating_csv))
        robust = robust_csvs and robustness_section(
            rob, data_key, title, figs / f"{S.slug(data_key[0] + data_key[1])}-robustness.png", margin=data.margin,
            n_boot=data.n_boot, **robust_csvs)
        if robust:
            doc.sections.append(robust)
    if data.crossover:
        csv = write_csv(tabs / "crossover.csv", CROSSOVER_COLUMNS, data.crossover)
        doc.sections.append(efficiency_section(data.crossover, figs, csv, margin=data.margin))
    doc.sections.append(A.sources_section(data, tabs))
    doc.sections.append(A.paper_section(data, tabs))
    doc.sections += A.studies_sections(study_out, study_err)
    doc.sections.append(A.exports_section(data, tabs))
    doc.sections.append(A.failed_section(data, tabs))
    doc.sections.append(A.environment_section(data, tabs, env))
    doc.sections.append(S.method_section(data))
    return doc


