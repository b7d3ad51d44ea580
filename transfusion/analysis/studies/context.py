"""What every study shares: its result record, the "store lacks the runs" signal, and the
:class:`StudyContext` — an open results store plus caches of datasets, probe sets, models'
probe activations and principal directions, so that within one
:func:`~transfusion.analysis.studies.run_all` call each checkpoint is forwarded once.

Probe set: a fixed subset of each dataset's *test* split — ``probe`` images (default 256)
drawn by :func:`~transfusion.analysis.activations.probe_indices` with seed 0, the same images
for every model and checkpoint. Activations are recorded as
:func:`~transfusion.analysis.stage_similarity.pooled_activations` describes, in fp32 with
channels-last layout (:class:`~transfusion.core.runtime.Runtime`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from transfusion.analysis.activations import capture, normalizer, probe_indices
from transfusion.analysis.stage_similarity import Activations, pooled_activations
from transfusion.analysis.studies.labels import found_text
from transfusion.core.runtime import Runtime
from transfusion.data import ArraySplit, Dataset, load_dataset
from transfusion.harness.execute import resolve_source
from transfusion.harness.store import Store
from transfusion.train.setup import build_initial_model
from transfusion.train.spec import RunSpec
from transfusion.transfer import IMAGENET_MEAN, IMAGENET_STD, SourceWeights
from transfusion.transfer.checkpoint import best_path, load_checkpoint, model_from_checkpoint

__all__ = ["CONTEXT_OPTIONS", "StudyAbsent", "StudyContext", "StudyOutput"]

#: Options of :class:`StudyContext` that studies and ``run_all`` accept.
CONTEXT_OPTIONS = ("probe", "fit", "pool", "max_points", "device", "batch_size")


@dataclass(frozen=True)
class StudyOutput:
    """The result of one study.

    ``csv``/``png``: the table and figure written (``None`` when absent); ``absent``: why the
    store lacks what the study needs, else ``None``; ``summary``: one or two sentences computed
    from the numbers.
    """

    name: str
    title: str
    csv: Path | None
    png: Path | None
    absent: str | None
    summary: str


class StudyAbsent(Exception):
    """The store lacks the runs a study needs; the message says what is missing and what was found."""


class StudyContext:
    """An open results store with caches shared by the studies.

    ``probe``: probe images per dataset (from the test split; fewer if the split is smaller);
    ``fit``: training images the kNN probe is fitted on (a fixed subset of the train split,
    default 256); ``pool``: conv maps are pooled to at most pool × pool positions;
    ``max_points``: at most this many datapoints per similarity; ``device``/``batch_size``: for
    forward passes (fp32, channels-last: ``runtime``). Use as a context manager, or call
    :meth:`close`. Raises ``FileNotFoundError`` without a store, ``ValueError`` for an option
    below 1 or an unusable device.
    """

    def __init__(self, store_path: str | Path, *, probe: int = 256, fit: int = 256, pool: int = 4,
                 max_points: int = 20_000, device: str = "cpu", batch_size: int = 64) -> None:
        self.store_path = Path(store_path)
        if not self.store_path.is_file():
            raise FileNotFoundError(f"no results store at {self.store_path} (run `transfusion bench` first)")
        for name, v in (("probe", probe), ("fit", fit), ("pool", pool), ("max_points", max_points),
                        ("batch_size", batch_size)):
            if int(v) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {v}")
        self.probe_size, self.fit_size, self.pool = int(probe), int(fit), int(pool)
        self.max_points, self.batch_size = int(max_points), int(batch_size)
        #: forward passes in fp32 (the reference numerics) with channels-last layout (faster on CPU)
        self.runtime = Runtime.resolve(device, amp=False, channels_last=True)
        self.store = Store(self.store_path)
        all_train = self.store.runs(kind="train")
        #: finished training runs (dicts as :meth:`Store.runs` gives them)
        self.runs: list[dict] = [r for r in all_train if r["status"] == "done"]
        self.not_done = len(all_train) - len(self.runs)
        self._datasets: dict[str, Dataset] = {}
        self._acts: dict[tuple[str, str], Activations] = {}
        self._fit_feats: dict[tuple[str, str], dict[str, Tensor]] = {}
        self._sources: dict[str, SourceWeights | None] = {}
        #: principal directions of activations, shared by the similarity studies
        #: (the ``cache`` of :func:`~transfusion.analysis.stage_similarity.stage_similarities`)
        self.pca_cache: dict = {}

    @property
    def device(self) -> str:
        """The device forward passes run on (``runtime.device``)."""
        return self.runtime.device

    def close(self) -> None:
        """Close the store (the caches stay usable)."""
        self.store.close()

    def __enter__(self) -> StudyContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def found(self, runs: list[dict] | None = None) -> str:
        """:func:`~transfusion.analysis.studies.labels.found_text` of the store's finished training runs."""
        return found_text(self.runs if runs is None else runs, not_done=self.not_done)

    # ---------------------------------------------------------------- data

    def dataset(self, spec: str) -> Dataset:
        """The dataset of a spec string, loaded once."""
        if spec not in self._datasets:
            self._datasets[spec] = load_dataset(spec)
        return self._datasets[spec]

    def probe(self, spec: str) -> ArraySplit:
        """The probe set of a dataset: min(probe, |test|) test images chosen with seed 0."""
        test = self.dataset(spec)["test"]
        return test.subset(probe_indices(len(test), min(self.probe_size, len(test)), seed=0))

    def fit_set(self, spec: str) -> ArraySplit:
        """The kNN fit set: min(fit, |train|) training images chosen with seed 0."""
        train = self.dataset(spec)["train"]
        return train.subset(probe_indices(len(train), min(self.fit_size, len(train)), seed=0))

    # ---------------------------------------------------------------- models

    def run_dir(self, run: dict) -> Path:
        """The run's folder: ``<store folder>/<run_id>`` if present, else the recorded ``out_dir``."""
        here = self.store_path.parent / run["run_id"]
        if here.is_dir() or not run.get("out_dir"):
            return here
        return Path(run["out_dir"])

    def model(self, run: dict, which: str) -> tuple[nn.Module, tuple[float, ...], tuple[float, ...]]:
        """(model in eval mode, input mean, input std) of a run: ``which`` = ``"trained"``
        (its ``best.pt``, the checkpoint its test metrics come from) or ``"init"`` (rebuilt as it
        was before its first step with :func:`~transfusion.train.setup.build_initial_model`)."""
        if which == "trained":
            ck = load_checkpoint(best_path(self.run_dir(run)))
            return model_from_checkpoint(ck), tuple(ck["mean"]), tuple(ck["std"])
        if which != "init":
            raise ValueError(f"which must be 'trained' or 'init', got {which!r}")
        spec = RunSpec.from_dict(run["spec"])
        source = self._source(run, spec)
        with torch.random.fork_rng(devices=[]):  # build_initial_model seeds the global generator
            model, _, _ = build_initial_model(spec, self.dataset(spec.data), source)
        summary = run.get("summary")
        mean = tuple((summary.mean if summary else ()) or (source.mean if source else IMAGENET_MEAN))
        std = tuple((summary.std if summary else ()) or (source.std if source else IMAGENET_STD))
        return model.eval(), mean, std

    def _source(self, run: dict, spec: RunSpec) -> SourceWeights | None:
        """The pretraining run's weights a ``run:ID`` source names (loaded once), else ``None``."""
        if not (spec.source and spec.source.startswith("run:")):
            return None
        if spec.source not in self._sources:
            root = self.store_path.parent
            if not (root / spec.source[4:]).is_dir() and run.get("out_dir"):
                root = Path(run["out_dir"]).parent
            self._sources[spec.source] = resolve_source(spec, root)
        return self._sources[spec.source]

    def activations(self, run: dict, which: str) -> Activations:
        """Probe activations of a run's checkpoint (cached: each checkpoint is forwarded once)."""
        key = (run["run_id"], which)
        if key not in self._acts:
            model, mean, std = self.model(run, which)
            self._acts[key] = pooled_activations(model, self.probe(run["dataset"]).images, mean, std,
                                                 pool=self.pool, runtime=self.runtime, batch_size=self.batch_size)
        return self._acts[key]

    def fit_features(self, run: dict, which: str) -> dict[str, Tensor]:
        """Globally pooled stage features (n_fit, C) of the kNN fit set (cached)."""
        key = (run["run_id"], which)
        if key not in self._fit_feats:
            model, mean, std = self.model(run, which)
            self._fit_feats[key] = capture(self.runtime.model(model), self.fit_set(run["dataset"]).images,
                                           reducer="mean", transform=normalizer(mean, std, self.runtime),
                                           device=self.runtime.device, batch_size=self.batch_size)
        return self._fit_feats[key]

