"""Studies over a results store: the second half of Raghu et al., "Transfusion" (NeurIPS 2019).

Each study reads the finished training runs of a store (``OUT/results.sqlite`` with run folders
``OUT/<run_id>/``), writes ``OUT_DIR/<name>.csv`` and ``OUT_DIR/<name>.png`` and returns a
:class:`StudyOutput`. When the store lacks the runs a study needs, the output has ``absent``
set to a sentence saying what is missing and what was found (no files are written).

| name | what | paper |
| --- | --- | --- |
| ``transfer-vs-random`` | per-stage SVCCA (and CKA) of each trained regime vs trained random init, random-vs-random band | §4 |
| ``vs-init`` | per-stage SVCCA (and CKA) of each trained model vs its own initialisation | §5 |
| ``knn-probe`` | kNN-probe AUC on each stage's pooled features, trained and at init | (probing) |
| ``filters`` | conv1 filter grids before/after training; Gabor-likeness per regime | §5 |
| ``weight-scaling`` | per-layer weight mean/std at init and after training, distance from init | §6 |
| ``convergence`` | validation-AUC curves, steps to target, ranking | §6 |
| ``transfusion-curve`` | test AUC and steps to target against K pretrained stages | §6 |
| ``data-efficiency`` | test AUC against training-set size | Table 3 |

>>> from transfusion.analysis.studies import run_all
>>> outs = run_all("runs/quick/results.sqlite", "reports/quick/analysis")  # doctest: +SKIP
>>> [o.name for o in outs if o.absent]  # doctest: +SKIP
['data-efficiency']

Options (keyword-only, accepted by every study, :func:`run_study` and :func:`run_all`):
``probe`` (256) probe images from each test split, ``fit`` (256) kNN fit images from each train
split, ``pool`` (4) conv maps pooled to at most pool × pool datapoints per image,
``max_points`` (20,000) datapoints per similarity, ``device`` ("cpu"), ``batch_size`` (64);
``method`` ("svcca"; or cca, pwcca, cka) for the two similarity studies; ``k`` (20) and
``knn_init`` (False) for the kNN probe; ``regimes`` for filters (random, transfer, gabor) and
weight-scaling (random, transfer, meanvar); ``target_auc`` (None: each run's own) for
convergence. See ``docs/analysis.md`` for the probe set, the reduction of conv maps and how
too few datapoints are handled.
"""

from __future__ import annotations

from transfusion.core.lazy import lazy_names

#: Study name → title, in the order :func:`run_all` runs them.
TITLES: dict[str, str] = {
    "transfer-vs-random": "Transfer vs random: per-stage similarity after training",
    "vs-init": "Each model against its own initialisation, per stage",
    "knn-probe": "Layer-wise kNN probe per init regime",
    "filters": "First-conv filters and their Gabor-likeness",
    "weight-scaling": "Weight scaling at init and after training",
    "convergence": "Convergence: validation AUC and steps to target",
    "transfusion-curve": "Weight transfusion: AUC and convergence against K",
    "data-efficiency": "Data efficiency: AUC against training-set size",
}


def check_names(names: object) -> None:
    """``ValueError`` naming any of ``names`` that is not a study (a key of :data:`TITLES`)."""
    unknown = [n for n in names if n not in TITLES]  # type: ignore[attr-defined]
    if unknown:
        raise ValueError(f"unknown study name(s) {', '.join(map(repr, unknown))}; studies: {', '.join(TITLES)}")


# Everything else loads torch (and the studies' other dependencies) on first use, so that
# listing the studies — ``transfusion analyze --help`` — stays light (PEP 562).
_LAZY = {
    "STUDIES": ".registry", "run_all": ".registry", "run_study": ".registry",
    "CONTEXT_OPTIONS": ".context", "StudyAbsent": ".context", "StudyContext": ".context", "StudyOutput": ".context",
    "compare_checkpoints": ".compare",
}


__getattr__ = lazy_names(__name__, _LAZY)  # PEP 562: torch-backed names load on first use


__all__ = [
    "CONTEXT_OPTIONS",
    "STUDIES",
    "TITLES",
    "StudyAbsent",
    "check_names",
    "StudyContext",
    "StudyOutput",
    "compare_checkpoints",
    "run_all",
    "run_study",
]
