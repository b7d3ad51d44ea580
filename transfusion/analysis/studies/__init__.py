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

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import Tensor

from transfusion.analysis.studies import representations as _rep
from transfusion.analysis.studies import training as _train
from transfusion.analysis.studies import weights as _weights
from transfusion.analysis.studies.context import (
    CONTEXT_OPTIONS,
    StudyAbsent,
    StudyContext,
    StudyOutput,
    normalizer,
    split_pooled,
    stage_similarities,
)

__all__ = [
    "STUDIES",
    "TITLES",
    "StudyAbsent",
    "StudyContext",
    "StudyOutput",
    "compare_checkpoints",
    "run_all",
    "run_study",
]

StudyImpl = Callable[..., tuple[Path, Path, str]]

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
_IMPLS: dict[str, StudyImpl] = {
    "transfer-vs-random": _rep.transfer_vs_random,
    "vs-init": _rep.vs_init,
    "knn-probe": _rep.knn_probe,
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


def run_all(store_path: str | Path, out_dir: str | Path, **opts: Any) -> list[StudyOutput]:
    """Every study in :data:`STUDIES` order, sharing one :class:`StudyContext` (each checkpoint is
    forwarded once). Never raises for missing runs: such studies come back with ``absent``."""
    _check_options(opts)
    with StudyContext(store_path, **{k: v for k, v in opts.items() if k in CONTEXT_OPTIONS}) as ctx:
        return [study(store_path, out_dir, ctx=ctx, **opts) for study in STUDIES.values()]


# ------------------------------------------------------------------- two checkpoints


def compare_checkpoints(
    checkpoint_a: str | Path,
    checkpoint_b: str | Path,
    data: str,
    *,
    method: str = "svcca",
    probe: int | None = None,
    pool: int = 4,
    max_points: int = 20_000,
    device: str = "cpu",
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """Per-stage similarity of two transfusion checkpoints of the same architecture.

    Both models see the same probe set: ``probe`` images (default min(256, |test|)) of the
    test split of dataset ``data`` (a spec string), drawn with seed 0; each is normalised
    with its own checkpoint's mean/std. Rows as
    :func:`~transfusion.analysis.studies.context.stage_similarities` (which see for ``method``).
    Raises ``ValueError`` for checkpoints of different architectures (naming both), for a
    probe set too small for a stage's features (naming the stage), for a probe larger than
    the test split.
    """
    import torch

    from transfusion.analysis.activations import capture, probe_indices
    from transfusion.analysis.studies.context import PoolAndMean
    from transfusion.data import load_dataset
    from transfusion.transfer.checkpoint import load_checkpoint, model_from_checkpoint

    cks = {}
    for tag, path in (("a", checkpoint_a), ("b", checkpoint_b)):
        cks[tag] = load_checkpoint(Path(path))
    if cks["a"]["arch"] != cks["b"]["arch"]:
        raise ValueError(
            f"checkpoints of different architectures: {checkpoint_a} is {cks['a']['arch']}, "
            f"{checkpoint_b} is {cks['b']['arch']}; a per-stage comparison needs the same architecture"
        )
    if cks["a"]["in_chans"] != cks["b"]["in_chans"]:
        raise ValueError(f"{checkpoint_a} takes {cks['a']['in_chans']} input channels, {checkpoint_b} "
                         f"takes {cks['b']['in_chans']}")
    test = load_dataset(data)["test"]
    if test.images.shape[1] != cks["a"]["in_chans"]:
        raise ValueError(f"dataset {data} has {test.images.shape[1]}-channel images but the checkpoints take "
                         f"{cks['a']['in_chans']}")
    n = min(256, len(test)) if probe is None else probe
    images = test.subset(probe_indices(len(test), n, seed=0)).images
    pooled: list[dict[str, Tensor]] = []
    for ck in (cks["a"], cks["b"]):
        model = model_from_checkpoint(ck)
        with torch.no_grad():
            raw = capture(model, images, reducer=PoolAndMean(pool), transform=normalizer(ck["mean"], ck["std"]),
                          device=device, batch_size=batch_size)
        pooled.append({s: split_pooled(t)[0] for s, t in raw.items()})
    return stage_similarities(pooled[0], pooled[1], method=method, max_points=max_points, strict=True)
