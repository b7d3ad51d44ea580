"""The study registry: each study's implementation wrapped as ``function(store_path, out_dir,
**opts) -> StudyOutput``, option checking, and :func:`run_study` / :func:`run_all`. Import
them from :mod:`transfusion.analysis.studies`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transfusion.analysis.studies import TITLES, check_names
from transfusion.analysis.studies import knn as _knn
from transfusion.analysis.studies import representations as _rep
from transfusion.analysis.studies import training as _train
from transfusion.analysis.studies import weights as _weights
from transfusion.analysis.studies.context import (
    CONTEXT_OPTIONS,
    StudyAbsent,
    StudyContext,
    StudyOutput,
)

__all__ = ["STUDIES", "run_all", "run_study"]

StudyImpl = Callable[..., tuple[Path, Path, str]]

_IMPLS: dict[str, StudyImpl] = {
    "transfer-vs-random": _rep.transfer_vs_random,
    "vs-init": _rep.vs_init,
    "knn-probe": _knn.knn_probe,
    "filters": _weights.filters,
    "weight-scaling": _weights.weight_scaling,
    "convergence": _train.convergence,
    "transfusion-curve": _train.transfusion_curve,
    "data-efficiency": _train.data_efficiency,
}


def _study_options(impl: StudyImpl) -> set[str]:
    return {p.name for p in inspect.signature(impl).parameters.values() if p.kind is p.KEYWORD_ONLY}


_ALL_OPTIONS = set(CONTEXT_OPTIONS).union(*(_study_options(f) for f in _IMPLS.values()))


def _check_options(opts: dict[str, Any]) -> None:
    unknown = sorted(set(opts) - _ALL_OPTIONS - {"ctx"})
    if unknown:
        raise ValueError(f"unknown study option(s) {unknown}; known: {sorted(_ALL_OPTIONS)}")


def _make_study(name: str) -> Callable[..., StudyOutput]:
    impl = _IMPLS[name]
    own = _study_options(impl)

    @functools.wraps(impl)
    def study(store_path: str | Path, out_dir: str | Path, *, ctx: StudyContext | None = None,
              **opts: Any) -> StudyOutput:
        _check_options(opts)
        out = Path(out_dir)
        mine = ctx is None
        if mine:
            ctx = StudyContext(store_path, **{k: v for k, v in opts.items() if k in CONTEXT_OPTIONS})
        try:
            out.mkdir(parents=True, exist_ok=True)
            csv, png, summary = impl(ctx, out, **{k: v for k, v in opts.items() if k in own})
            return StudyOutput(name, TITLES[name], csv, png, None, summary)
        except StudyAbsent as exc:
            return StudyOutput(name, TITLES[name], None, None, str(exc), f"Not computed: {exc}")
        finally:
            if mine:
                ctx.close()

    study.__name__ = name.replace("-", "_")
    study.__doc__ = f"{TITLES[name]}.\n\n{impl.__doc__ or ''}"
    return study


#: Study name → ``function(store_path, out_dir, **opts) -> StudyOutput``.
STUDIES: dict[str, Callable[..., StudyOutput]] = {name: _make_study(name) for name in _IMPLS}


def run_study(name: str, store_path: str | Path, out_dir: str | Path, **opts: Any) -> StudyOutput:
    """Run the study ``name`` (a key of :data:`STUDIES`) over the store at ``store_path``.

    Writes ``out_dir/<name>.csv`` and ``.png``; a store without the needed runs gives an
    output with ``absent`` set. Raises ``ValueError`` for an unknown study or option and
    ``FileNotFoundError`` when there is no store at ``store_path``.
    """
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; studies: {', '.join(STUDIES)}")
    return STUDIES[name](store_path, out_dir, **opts)


def run_all(store_path: str | Path, out_dir: str | Path, *, only: Sequence[str] | None = None,
            **opts: Any) -> list[StudyOutput]:
    """Every study in :data:`STUDIES` order (or those named in ``only``; the others come back
    absent, saying so), sharing one :class:`StudyContext` (each checkpoint is forwarded once).
    Never raises for missing runs: such studies come back with ``absent``."""
    _check_options(opts)
    if only is not None:
        check_names(only)
    out = []
    with StudyContext(store_path, **{k: v for k, v in opts.items() if k in CONTEXT_OPTIONS}) as ctx:
        for name, study in STUDIES.items():
            if only is None or name in only:
                out.append(study(store_path, out_dir, ctx=ctx, **opts))
            else:
                out.append(StudyOutput(name, TITLES[name], None, None, "not run: the suite's [report] studies leaves "
                                       "it out", "Not run."))
    return out

