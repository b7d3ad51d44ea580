"""Everything a run needs before its first step: the data (subsampled), the model built under
the run's seed and initialised by its regime, and the input normalisation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from transfusion.data import ArraySplit, Dataset, load_dataset, subsample
from transfusion.models import check_input_size, create_model, stages
from transfusion.transfer import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SourceWeights,
    apply_init,
    apply_scheme,
    check_scheme,
    load_source,
    source_arch,
    validate,
)

from .spec import RunSpec, parse_train_size


@dataclass
class Prepared:
    """A run before its first step."""

    spec: RunSpec
    dataset: Dataset
    train: ArraySplit
    model: nn.Module
    init_report: dict
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source_origin: str | None


def build_initial_model(spec: RunSpec, dataset: Dataset, source: SourceWeights | None = None) -> tuple[nn.Module, dict, SourceWeights | None]:
    """The model exactly as it is before the first training step (default init under the run's
    seed, then the regime). Used by the trainer and by studies comparing a model with its own
    initialisation. Returns (model, init report, the source weights used or ``None``)."""
    task = dataset.task
    check_input_size(spec.model, dataset.res, dataset.in_chans)
    torch.manual_seed(spec.seed)
    model = create_model(spec.model, num_classes=task.num_outputs, in_chans=dataset.in_chans)
    regime = validate(spec.model, spec.init, len(stages(model)))
    if regime.needs_source and source is None:
        if not spec.source:
            raise ValueError(f"init {regime} needs --source (imagenet, file:PATH)")
        source = load_source(spec.source, source_arch(spec.model, regime))  # no torch RNG consumed
    report = apply_init(model, regime, source=source.state_dict if regime.needs_source else None, seed=spec.seed)
    return model, report.to_dict(), source if regime.needs_source else None


def prepare(spec: RunSpec, *, dataset: Dataset | None = None, source: SourceWeights | None = None,
            cache_dir: str | Path | None = None) -> Prepared:
    """Load data, subsample the training split, build and initialise the model, and make the
    network the run's scheme trains (no training)."""
    if dataset is None:
        dataset = load_dataset(spec.data, cache_dir=cache_dir)
    train = dataset["train"]
    size = parse_train_size(spec.train_size)
    if size != "all":
        train = subsample(train, size, seed=spec.seed)
    model, report, source = build_initial_model(spec, dataset, source)
    if spec.scheme != "finetune":
        check_scheme(spec.scheme, spec.init, len(stages(model)))
        torch.manual_seed(spec.seed * 1_000_003 + 0x5C4E)  # the new head: a function of the seed
        model = apply_scheme(model, spec.scheme, dataset.task.num_outputs)
        report["scheme"] = spec.scheme
    mean = tuple(source.mean) if source is not None else IMAGENET_MEAN
    std = tuple(source.std) if source is not None else IMAGENET_STD
    return Prepared(spec, dataset, train, model, report, mean, std, source.origin if source else None)
