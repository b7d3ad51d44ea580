"""Suites: a TOML file describing a grid of runs, validated before anything runs.

```toml
name = "quick"
description = "..."
[grid]                      # the product of these axes is the run grid
dataset = ["synth-retina?n=2000&res=64"]
model = ["cbr_small", "resnet50"]
init = ["random", "transfer", "meanvar", "transfusion:2"]
seed = [0]
train_size = ["all"]        # or counts (5000) or fractions (0.1)
exclude = [{ model = "resnet50", init = "gabor" }]   # optional: drop matching combinations
[train]                     # TrainConfig options, plus res (px) for every dataset
epochs = 3
[train.per_model.resnet50]  # optional: options that differ for one model of the grid
epochs = 6
[source]                    # weights = "imagenet" | "file:PATH", and/or a pretraining stage
dataset = "synth-natural?n=3000&res=64"   # (with weights = "imagenet": only for architectures
                                          #  without published ImageNet weights, e.g. CBRs)
[source.train]              # TrainConfig options of the pretraining runs
epochs = 3                  # ([source.train.per_model.NAME] as for [train])
[cost]                      # cost profiling of every model × resolution in the grid
onnx = true
batch = 32
device = "cpu"
[report]
margin = 0.005              # equivalence margin, AUC units (0.005 = 0.5 AUC points)
delta = 0.01                # "cheapest model within delta AUC of the best"
probe = 256                 # images in the studies' probe set (fewer: faster studies)
```

Dataset strings may hold ``{data_root}`` (filled from ``--data-root`` or the
``TRANSFUSION_DATA_ROOT`` environment variable) and ``${VAR}`` environment references.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import sys
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from transfusion.models import list_models
from transfusion.transfer import parse_regime, source_arch

from .spec import RunSpec, TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GRID_AXES = ("dataset", "model", "init", "seed", "train_size")
_TOP_KEYS = {"name", "description", "grid", "train", "source", "cost", "report"}
_GRID_KEYS = set(GRID_AXES) | {"exclude"}
_OPTION_KEYS = {f.name for f in fields(TrainConfig)}
_TRAIN_KEYS = _OPTION_KEYS | {"res", "per_model"}
_SOURCE_KEYS = {"weights", "dataset", "train", "seed"}
_COST_KEYS = {"onnx", "batch", "device", "repeats", "enabled"}
_REPORT_KEYS = {"margin", "delta", "paper", "probe"}


class SuiteError(ValueError):
    """A suite file is invalid: says which file, which key and why."""


@dataclass(frozen=True)
class CostOptions:
    """How cost profiles are measured: ONNX on/off, throughput batch, device, timing repeats."""

    enabled: bool = True
    onnx: bool = True
    batch: int = 32
    device: str = "cpu"
    repeats: int = 20


@dataclass
class Suite:
    """A validated suite. ``source_weights`` or ``pretrain_data`` says where pretrained weights
    come from; ``pretrain`` holds the pretraining runs' options."""

    name: str
    description: str
    grid: dict[str, list]
    exclude: list[dict]
    train: TrainConfig
    res: int | None
    source_weights: str | None
    pretrain_data: str | None
    pretrain: TrainConfig
    pretrain_seed: int
    cost: CostOptions
    report: dict[str, Any]
    text: str
    origin: str
    extra: dict = field(default_factory=dict)
    train_per_model: dict[str, TrainConfig] = field(default_factory=dict)
    pretrain_per_model: dict[str, TrainConfig] = field(default_factory=dict)

    def train_for(self, model: str) -> TrainConfig:
        """Trainer options of ``model``'s training runs: [train] with its per_model table on top."""
        return self.train_per_model.get(model, self.train)

    def pretrain_for(self, model: str) -> TrainConfig:
        """Trainer options of ``model``'s pretraining run: [source.train] with its per_model table."""
        return self.pretrain_per_model.get(model, self.pretrain)

    @property
    def digest(self) -> str:
        """SHA-256 of the suite's TOML text (first 16 hex digits)."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def shipped_suites() -> list[str]:
    """Names of the suites that ship with transfusion."""
    folder = resources.files("transfusion.bench") / "suites"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _fail(origin: str, key: str, reason: str) -> SuiteError:
    return SuiteError(f"{origin}: {key}: {reason}")


def _check_keys(origin: str, where: str, table: dict, allowed: set[str]) -> None:
    for k in table:
        if k not in allowed:
            raise _fail(origin, f"{where}{k}", f"unknown key; allowed here: {', '.join(sorted(allowed))}")


def _expand_env(text: str, data_root: str | None, origin: str, key: str) -> str:
    if "{data_root}" in text:
        root = data_root or os.environ.get("TRANSFUSION_DATA_ROOT")
        if not root:
            raise _fail(origin, key, f"{text!r} needs a data folder: pass --data-root PATH or set TRANSFUSION_DATA_ROOT")
        text = text.replace("{data_root}", root.rstrip("/"))

    def env(m: re.Match) -> str:
        var = m.group(1)
        if var not in os.environ:
            raise _fail(origin, key, f"{text!r} refers to ${{{var}}}, which is not set; export {var}=/path/to/data")
        return os.environ[var]

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", env, text)


def load_suite(name_or_path: str, *, data_root: str | None = None) -> Suite:
    """Load a shipped suite by name or a TOML file by path, and validate it."""
    path = Path(name_or_path)
    if name_or_path in shipped_suites():
        res_file = resources.files("transfusion.bench") / "suites" / f"{name_or_path}.toml"
        text, origin = res_file.read_text(), f"suite '{name_or_path}'"
    elif path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise SuiteError(f"suite file {path} does not exist")
        text, origin = path.read_text(), str(path)
    else:
        raise SuiteError(f"unknown suite {name_or_path!r}: not a shipped suite ({', '.join(shipped_suites())}) "
                         f"nor a .toml file")
    return parse_suite(text, origin=origin, data_root=data_root)


def _list(origin: str, key: str, value: Any) -> list:
    if not isinstance(value, list):
        value = [value]
    if not value:
        raise _fail(origin, key, "is empty; the grid would have no runs")
    return value


def _train_config(origin: str, where: str, table: dict, base: dict | None = None, *,
                  allowed: set[str] = _OPTION_KEYS) -> TrainConfig:
    _check_keys(origin, where, table, allowed)
    own = _options(table)
    opts = {**(base or {}), **own}
    for length, other in (("epochs", "steps"), ("steps", "epochs")):
        if length in own and other not in own:  # a table's own training length replaces the inherited one
            opts.pop(other, None)
    try:
        return TrainConfig.from_dict(opts)
    except (TypeError, ValueError) as exc:
        raise _fail(origin, where.rstrip("."), str(exc)) from None


def _options(table: dict) -> dict:
    """A [train]-like table's trainer options (without ``res`` and the ``per_model`` tables)."""
    return {k: v for k, v in table.items() if k not in ("res", "per_model")}


def _per_model(origin: str, where: str, table: dict, models: list[str], what: str) -> dict[str, TrainConfig]:
    """``[<where>.per_model.NAME]`` tables: the base table's options with NAME's on top; NAME
    must be one of ``models`` (``what`` names that set in the error)."""
    per = table.get("per_model", {})
    if not isinstance(per, dict) or not all(isinstance(v, dict) for v in per.values()):
        raise _fail(origin, f"{where}per_model", "must hold one table per model, e.g. [train.per_model.resnet50]")
    base = _options(table)
    out = {}
    for model, opts in per.items():
        if model not in models:
            raise _fail(origin, f"{where}per_model.{model}",
                        f"{model!r} is not {what} ({', '.join(models)})")
        out[model] = _train_config(origin, f"{where}per_model.{model}.", opts, base)
    return out


def parse_suite(text: str, *, origin: str = "<suite>", data_root: str | None = None) -> Suite:
    """Parse and validate suite TOML text; raises :class:`SuiteError` naming file, key, reason."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{origin}: not valid TOML: {exc}") from None
    _check_keys(origin, "", doc, _TOP_KEYS)
    name = doc.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise _fail(origin, "name", f"must be a short name of letters, digits, '-', '_' (got {name!r})")
    grid_t = doc.get("grid")
    if not isinstance(grid_t, dict):
        raise _fail(origin, "grid", "missing [grid] table")
    _check_keys(origin, "grid.", grid_t, _GRID_KEYS)
    grid: dict[str, list] = {}
    defaults = {"seed": [0], "train_size": ["all"], "init": ["random"]}
    for axis in GRID_AXES:
        if axis not in grid_t and axis not in defaults:
            raise _fail(origin, f"grid.{axis}", "missing; the grid needs dataset and model lists")
        grid[axis] = _list(origin, f"grid.{axis}", grid_t.get(axis, defaults.get(axis)))
    known = set(list_models())
    for m in grid["model"]:
        if m not in known:
            raise _fail(origin, "grid.model", f"unknown model {m!r}; known: {', '.join(sorted(known))}")
    for r in grid["init"]:
        try:
            parse_regime(r)
        except ValueError as exc:
            raise _fail(origin, "grid.init", str(exc)) from None
    for s in grid["seed"]:
        if isinstance(s, bool) or not isinstance(s, int):
            raise _fail(origin, "grid.seed", f"seeds are integers, got {s!r}")
    from .trainer import parse_train_size

    try:
        grid["train_size"] = [parse_train_size(t) for t in grid["train_size"]]
    except ValueError as exc:
        raise _fail(origin, "grid.train_size", str(exc)) from None
    grid["dataset"] = [_expand_env(str(d), data_root, origin, "grid.dataset") for d in grid["dataset"]]
    exclude = grid_t.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(e, dict) for e in exclude):
        raise _fail(origin, "grid.exclude", "must be a list of tables such as { model = \"resnet50\", init = \"gabor\" }")
    for e in exclude:
        _check_keys(origin, "grid.exclude.", e, set(GRID_AXES))

    train_t = doc.get("train", {})
    train = _train_config(origin, "train.", train_t, allowed=_TRAIN_KEYS)
    train_per_model = _per_model(origin, "train.", train_t, grid["model"], "a model of this grid")
    res = train_t.get("res")
    if res is not None and (isinstance(res, bool) or not isinstance(res, int) or res < 1):
        raise _fail(origin, "train.res", f"must be a positive integer (px), got {res!r}")
    exclude = [_match_exclude(origin, grid, e, res) for e in exclude]

    source_t = doc.get("source", {})
    _check_keys(origin, "source.", source_t, _SOURCE_KEYS)
    weights, pre_data = source_t.get("weights"), source_t.get("dataset")
    if weights and weights != "imagenet" and not str(weights).startswith("file:"):
        raise _fail(origin, "source.weights", f"must be 'imagenet' or 'file:PATH', got {weights!r}")
    if weights:
        weights = _expand_env(str(weights), data_root, origin, "source.weights")
    if pre_data:
        pre_data = _expand_env(str(pre_data), data_root, origin, "source.dataset")
    pretrain = _train_config(origin, "source.train.", source_t.get("train", {}), allowed=_OPTION_KEYS | {"per_model"})
    pretrain_per_model = _per_model(origin, "source.train.", source_t.get("train", {}), sorted(known),
                                    "a known model")

    cost_t = doc.get("cost", {})
    _check_keys(origin, "cost.", cost_t, _COST_KEYS)
    try:
        cost = CostOptions(**cost_t)
    except TypeError as exc:
        raise _fail(origin, "cost", str(exc)) from None
    if cost.device not in ("cpu", "cuda"):
        raise _fail(origin, "cost.device", f"must be cpu or cuda, got {cost.device!r}")
    report_t = doc.get("report", {})
    _check_keys(origin, "report.", report_t, _REPORT_KEYS)
    report = {"margin": 0.005, "delta": 0.01, "paper": None, **report_t}
    for key in ("margin", "delta"):
        if not isinstance(report[key], (int, float)) or not 0 <= report[key] < 1:
            raise _fail(origin, f"report.{key}", f"must be a number in [0, 1) in AUC units, got {report[key]!r}")
    probe = report.get("probe")
    if probe is not None and (isinstance(probe, bool) or not isinstance(probe, int) or probe < 16):
        raise _fail(origin, "report.probe", f"probe-set size for the studies must be an integer >= 16, got {probe!r}")

    return Suite(
        name=name, description=str(doc.get("description", "")), grid=grid, exclude=exclude, train=train,
        res=res, source_weights=weights, pretrain_data=pre_data, pretrain=pretrain,
        pretrain_seed=int(source_t.get("seed", 0)), cost=cost, report=report, text=text, origin=origin,
        train_per_model=train_per_model, pretrain_per_model=pretrain_per_model,
    )


def _match_exclude(origin: str, grid: dict[str, list], entry: dict, res: int | None) -> dict:
    """``entry`` with each value replaced by the grid value it names (datasets compared in canonical
    form, so option order and defaults do not matter); a value no grid axis holds is an error,
    since the entry would silently exclude nothing."""
    from transfusion.data import canonical_spec

    from .trainer import parse_train_size

    def canon(axis: str, value: Any) -> str:
        try:
            if axis == "dataset":
                return canonical_spec(str(value), res=res)
            if axis == "train_size":
                return str(parse_train_size(value))
        except ValueError:
            pass
        return str(value)

    out = {}
    for axis, value in entry.items():
        match = next((g for g in grid[axis] if canon(axis, g) == canon(axis, value)), None)
        if match is None:
            raise _fail(origin, "grid.exclude", f"{axis} = {value!r} is not in the grid's {axis} list "
                                                f"({', '.join(map(str, grid[axis]))}); the entry would exclude nothing")
        out[axis] = match
    return out


@dataclass
class Grid:
    """The expanded grid: pretraining runs first (one per architecture that needs weights),
    then training runs; ``depends[run_id]`` names the pretraining run a training run needs."""

    pretrain: list[RunSpec]
    runs: list[RunSpec]
    depends: dict[str, str]

    @property
    def all(self) -> list[RunSpec]:
        return self.pretrain + self.runs


def _excluded(combo: dict, exclude: list[dict]) -> bool:
    return any(all(str(combo[k]) == str(v) for k, v in e.items()) for e in exclude)


def expand(suite: Suite) -> Grid:
    """The run grid of ``suite`` with normalised specs (so ids are stable). Raises
    ``ValueError`` for a combination that cannot run (a regime without a source, a
    resolution too small for a model, missing data)."""
    from transfusion.data import canonical_spec
    from transfusion.models import check_input_size, model_config

    from .trainer import normalise_spec

    pretrain: dict[str, RunSpec] = {}
    runs: list[RunSpec] = []
    depends: dict[str, str] = {}
    seen: set[str] = set()
    for values in itertools.product(*(suite.grid[a] for a in GRID_AXES)):
        combo = dict(zip(GRID_AXES, values))
        if _excluded(combo, suite.exclude):
            continue
        regime = parse_regime(combo["init"])
        source = None
        dep = None
        if regime.needs_source:
            arch = source_arch(combo["model"], regime)
            published = model_config(arch).imagenet_weights is not None
            if suite.source_weights and (suite.source_weights != "imagenet" or published or not suite.pretrain_data):
                source = suite.source_weights
            elif suite.pretrain_data:
                if arch not in pretrain:
                    pretrain[arch] = normalise_spec(RunSpec(
                        model=arch, data=suite.pretrain_data, init="random", seed=suite.pretrain_seed,
                        train=suite.pretrain_for(arch), kind="pretrain"))
                dep = pretrain[arch].run_id
                source = f"run:{dep}"
            else:
                raise ValueError(f"{suite.origin}: init {combo['init']} needs pretrained weights; add a [source] "
                                 f"section (weights = \"imagenet\" or a pretraining dataset)")
        spec = normalise_spec(RunSpec(
            model=combo["model"], data=canonical_spec(combo["dataset"], res=suite.res), init=combo["init"],
            source=source, seed=combo["seed"], train_size=combo["train_size"], train=suite.train_for(combo["model"])))
        res = int(re.search(r"(?:[?&])res=(\d+)", spec.data).group(1)) if "res=" in spec.data else None
        if res is not None:
            check_input_size(spec.model, res)
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


def _check_data_path(spec: str, origin: str) -> None:
    """A dataset on disk must be there before anything trains."""
    from transfusion.data._registry import dataset_kind
    from transfusion.data._spec import split_spec

    name, target, _ = split_spec(spec)
    kind = dataset_kind(name)
    if kind.target == "path" and target and not Path(target).exists():
        raise FileNotFoundError(
            f"{origin}: dataset {name}:{target} does not exist; put the data there or pass --data-root "
            f"(see docs/data.md for the expected layout)")
