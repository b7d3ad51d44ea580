"""A suite's grid expanded into run specs: pretraining runs first (one per architecture that
needs weights, or one per architecture and seed with ``[source] seed = "per-seed"``), then the training runs, each normalised so its run id is stable."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from transfusion.data import canonical_spec, dataset_kind, parse_spec
from transfusion.models import check_input_size, model_config, num_stages
from transfusion.train.spec import RunSpec, normalise_spec
from transfusion.transfer import check_scheme, parse_regime, source_arch
from transfusion.transfer.regime import validate as validate_regime

from .suite import GRID_AXES, Suite


@dataclass
class Grid:
    """The expanded grid; ``depends[run_id]`` names the pretraining run a training run needs."""

    pretrain: list[RunSpec]
    runs: list[RunSpec]
    depends: dict[str, str]

    @property
    def all(self) -> list[RunSpec]:
        return self.pretrain + self.runs

    @property
    def ids(self) -> list[str]:
        return [s.run_id for s in self.all]


def _excluded(combo: dict, exclude: list[dict]) -> bool:
    return any(all(str(combo[k]) == str(v) for k, v in e.items()) for e in exclude)


def expand(suite: Suite) -> Grid:
    """The run grid of ``suite``. Raises ``ValueError`` for a combination that cannot run (a
    regime without a source, a resolution too small for a model, missing data)."""
    pretrain: dict[tuple[str, int], RunSpec] = {}
    runs: list[RunSpec] = []
    depends: dict[str, str] = {}
    seen: set[str] = set()
    for values in itertools.product(*(suite.grid[a] for a in GRID_AXES)):
        combo = dict(zip(GRID_AXES, values))
        if _excluded(combo, suite.exclude):
            continue
        try:  # K against the model's stage count, slim and gabor where they apply: before any work
            validate_regime(combo["model"], combo["init"])
        except ValueError as exc:
            raise ValueError(f"{suite.origin}: grid: model {combo['model']} with init {combo['init']}: {exc}; "
                             f"exclude the pair ({{ model = \"{combo['model']}\", init = \"{combo['init']}\" }}) "
                             "or change the grid") from None
        if combo["scheme"] != "finetune":
            try:  # the scheme against the regime and the model's stages
                check_scheme(combo["scheme"], combo["init"], num_stages(combo["model"]))
            except ValueError as exc:
                raise ValueError(
                    f"{suite.origin}: grid: init {combo['init']} with scheme {combo['scheme']} on {combo['model']}: "
                    f"{exc}; exclude the pair ({{ init = \"{combo['init']}\", scheme = \"{combo['scheme']}\" }}) "
                    "or change the grid") from None
        source, dep = _source_of(suite, combo, pretrain)
        try:
            data = canonical_spec(_with_resize(combo["dataset"], combo["resize"]), res=combo["res"] or suite.res)
        except ValueError as exc:
            raise ValueError(f"{suite.origin}: grid: {exc}") from None
        spec = normalise_spec(RunSpec(
            model=combo["model"], data=data, init=combo["init"],
            source=source, seed=combo["seed"], train_size=combo["train_size"], train=suite.train_for(combo["model"]),
            scheme=combo["scheme"]))
        if spec.res_px is not None:
            try:
                check_input_size(spec.model, spec.res_px)
            except ValueError as exc:
                raise ValueError(f"{suite.origin}: grid: {exc}") from None
        if spec.run_id in seen:
            continue
        seen.add(spec.run_id)
        runs.append(spec)
        if dep:
            depends[spec.run_id] = dep
    if not runs:
        raise ValueError(f"{suite.origin}: the grid is empty (every combination excluded)")
    for data in {s.data for s in (*runs, *pretrain.values())}:
        _check_data_path(data, suite.origin)
    return Grid(list(pretrain.values()), runs, depends)


def _with_resize(dataset: str, resize: str) -> str:
    """The dataset spec with the grid's resolution protocol added (``native`` adds nothing)."""
    if resize == "native":
        return dataset
    return dataset + ("&" if "?" in dataset else "?") + f"resize={resize}"


def _source_of(suite: Suite, combo: dict, pretrain: dict[tuple[str, int], RunSpec]) -> tuple[str | None, str | None]:
    """(source, pretraining run id it depends on) of one grid combination; adds the pretraining
    run of the architecture (and seed, see :meth:`Suite.pretrain_seed_for`) to ``pretrain`` when
    it needs one."""
    regime = parse_regime(combo["init"])
    if not regime.needs_source:
        return None, None
    arch = source_arch(combo["model"], regime)
    published = model_config(arch).imagenet_weights is not None
    if suite.source_weights and (suite.source_weights != "imagenet" or published or not suite.pretrain_data):
        return suite.source_weights, None
    if not suite.pretrain_data:
        raise ValueError(f"{suite.origin}: init {combo['init']} needs pretrained weights; add a [source] "
                         f"section (weights = \"imagenet\" or a pretraining dataset)")
    seed = suite.pretrain_seed_for(combo["seed"])
    if (arch, seed) not in pretrain:
        pretrain[arch, seed] = normalise_spec(RunSpec(
            model=arch, data=suite.pretrain_data, init="random", seed=seed,
            train=suite.pretrain_for(arch), kind="pretrain"))
    dep = pretrain[arch, seed].run_id
    return f"run:{dep}", dep


def _check_data_path(spec: str, origin: str) -> None:
    """A dataset on disk must be there before anything trains."""
    parsed = parse_spec(spec)
    if dataset_kind(parsed.kind).target == "path" and parsed.target and not Path(parsed.target).exists():
        raise FileNotFoundError(
            f"{origin}: dataset {parsed.kind}:{parsed.target} does not exist; put the data there or pass --data-root "
            f"(see docs/data.md for the expected layout)")
