"""Suites: a TOML file describing a grid of runs, validated before anything runs.

```toml
name = "quick"
description = "..."
[grid]                      # the product of these axes is the run grid
dataset = ["synth-retina?n=2000&res=64"]
model = ["cbr_small", "resnet50"]   # built-in names, or any timm model as "timm:NAME"
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
seed = 0                    # the pretraining seed, or "per-seed": one pretraining run per training seed
[source.train]              # TrainConfig options of the pretraining runs
epochs = 3                  # ([source.train.per_model.NAME] as for [train])
[cost]                      # cost profiling of every model × resolution in the grid
onnx = true
batch = 32
device = "cpu"
[report]
margin = 0.005              # equivalence margin, AUC units (0.005 = 0.5 AUC points), fixed before the data
margin_reason = "..."       # why this margin: the report prints it beside every verdict
delta = 0.01                # "cheapest model within delta AUC of the best"
probe = 256                 # images in the studies' probe set (fewer: faster studies)
studies = ["convergence", "vs-init"]   # optional: run only these analysis studies (default: all)
sensitivity = 0.9           # operating points: thresholds chosen on validation for this sensitivity
specificity = 0.9           #   ... and for this specificity
threshold_confidence = 0.95 #   ... met on validation with this one-sided confidence (Clopper–Pearson)
calibration_bins = 15       # equal-mass bins of the expected calibration error

[plan]                      # optional: the noise `transfusion plan` assumes without a pilot store
seed_sd = 0.006             # SD of one seed pair's regime − random AUC difference (AUC units)
test_se = 0.002             # SD of the test error every seed shares (AUC units)
power = 0.8                 # wanted probability of detecting / showing equivalence
[plan.per_model.resnet18]   # optional: a model whose noise differs
seed_sd = 0.01

[robustness]                # optional: score each finished run's test split again, corrupted
corruptions = ["gaussian_noise", "defocus_blur", "jpeg", "contrast"]   # default: all eight
severities = [1, 3, 5]      # of 1..5 (MedMNIST-C's parameters); default: all five
modality = "auto"           # fundus | xray | auto (from the dataset)
```

Dataset strings may hold ``{data_root}`` (filled from ``--data-root`` or the
``TRANSFUSION_DATA_ROOT`` environment variable) and ``${VAR}`` environment references.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from transfusion.models import is_timm_name, list_models, model_config
from transfusion.train.spec import TrainConfig, parse_train_size
from transfusion.transfer import parse_regime, parse_scheme

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover: Python 3.10 (the declared floor) reads TOML with tomli, a dependency there
    import tomli as tomllib

GRID_AXES = ("dataset", "model", "init", "scheme", "seed", "train_size", "res", "resize")
_TOP_KEYS = {"name", "description", "grid", "train", "source", "cost", "report", "run", "robustness", "plan"}
_GRID_KEYS = set(GRID_AXES) | {"exclude"}
_OPTION_KEYS = {f.name for f in fields(TrainConfig)}
_TRAIN_KEYS = _OPTION_KEYS | {"res", "per_model"}
_SOURCE_KEYS = {"weights", "dataset", "train", "seed"}
_GRID_DEFAULTS = {"seed": [0], "train_size": ["all"], "init": ["random"], "scheme": ["finetune"], "res": [None],
                  "resize": ["native"]}


class SuiteError(ValueError):
    """A suite file is invalid: says which file, which key and why."""


@dataclass(frozen=True)
class CostOptions:
    """How cost profiles are measured: ONNX on/off, throughput batch, device, timing repeats —
    and with ``int8``, an int8 variant of every model (static QDQ, activations calibrated on
    ``calib`` training images): its ONNX Runtime latency in the cost profile, and each trained
    run's int8 test AUC checked against its fp32 export (see :mod:`.int8`)."""

    enabled: bool = True
    onnx: bool = True
    batch: int = 32
    device: str = "cpu"
    repeats: int = 20
    int8: bool = False
    calib: int = 256


@dataclass(frozen=True)
class RobustnessOptions:
    """The ``[robustness]`` table: each finished run's test split is scored again under every
    ``corruptions`` × ``severities`` (no retraining). ``modality`` picks MedMNIST-C's severity
    table (``fundus``, ``xray``, or ``auto``: from the dataset); ``seed`` seeds the noise.
    Absent table: ``enabled`` is False."""

    enabled: bool = False
    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    modality: str = "auto"
    seed: int = 0


@dataclass(frozen=True)
class RunOptions:
    """How the suite runs on one machine unless the command line says otherwise: ``workers``
    local worker processes with ``threads`` intra-op threads each (default: cores // workers).
    Changes speed, not results' meaning (run ids do not depend on it)."""

    workers: int = 1
    threads: int | None = None


@dataclass(frozen=True)
class ReportOptions:
    """The ``[report]`` table: equivalence ``margin`` and recommendation ``delta`` (AUC units,
    0.005 = 0.5 AUC points), the ``paper`` table to compare with, the studies' ``probe`` size,
    the operating points' target ``sensitivity`` and ``specificity`` (chosen on validation so that
    the target holds with one-sided ``threshold_confidence``) and the calibration error's number
    of equal-mass ``calibration_bins``. ``margin_reason``: why the margin is what it is — a margin
    is fixed before the data, from what difference would change a decision, not from the
    suite's own precision. ``studies``: the analysis studies to run (``None``: all)."""

    margin: float = 0.005
    margin_reason: str = ""
    delta: float = 0.01
    paper: str | None = None
    probe: int | None = None
    sensitivity: float = 0.9
    specificity: float = 0.9
    calibration_bins: int = 15
    threshold_confidence: float = 0.95
    studies: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PlanOptions:
    """The ``[plan]`` table: the noise ``transfusion plan`` assumes when no pilot store is given —
    ``seed_sd`` of one seed pair's regime − random difference and ``test_se`` of the test error
    every seed shares (AUC units), per model where ``per_model`` says otherwise — and the
    ``power`` wanted."""

    seed_sd: float | None = None
    test_se: float | None = None
    power: float = 0.8
    per_model: dict[str, tuple[float, float]] = field(default_factory=dict)

    def noise_of(self, model: str) -> tuple[float, float] | None:
        """(seed_sd, test_se) for ``model``, or ``None`` when the table states none."""
        if model in self.per_model:
            return self.per_model[model]
        return None if self.seed_sd is None else (self.seed_sd, self.test_se or 0.0)


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
    pretrain_seed: int | None  # None: "per-seed", one pretraining run per training seed
    cost: CostOptions
    report: ReportOptions
    text: str
    origin: str
    run: RunOptions = field(default_factory=RunOptions)
    robustness: RobustnessOptions = field(default_factory=RobustnessOptions)
    train_per_model: dict[str, TrainConfig] = field(default_factory=dict)
    pretrain_per_model: dict[str, TrainConfig] = field(default_factory=dict)
    plan: PlanOptions = field(default_factory=PlanOptions)

    def train_for(self, model: str) -> TrainConfig:
        """Trainer options of ``model``'s training runs: [train] with its per_model table on top."""
        return self.train_per_model.get(model, self.train)

    def pretrain_for(self, model: str) -> TrainConfig:
        """Trainer options of ``model``'s pretraining run: [source.train] with its per_model table."""
        return self.pretrain_per_model.get(model, self.pretrain)

    def pretrain_seed_for(self, seed: int) -> int:
        """The seed of the pretraining run that a training run of ``seed`` takes its weights from:
        [source] seed, or ``seed`` itself with ``seed = "per-seed"``."""
        return seed if self.pretrain_seed is None else self.pretrain_seed

    @property
    def digest(self) -> str:
        """SHA-256 of the suite's TOML text (first 16 hex digits)."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]


def shipped_suites() -> list[str]:
    """Names of the suites that ship with transfusion."""
    folder = resources.files("transfusion.harness") / "suites"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_suite(name_or_path: str, *, data_root: str | None = None) -> Suite:
    """Load a shipped suite by name or a TOML file by path, and validate it."""
    path = Path(name_or_path)
    if name_or_path in shipped_suites():
        res_file = resources.files("transfusion.harness") / "suites" / f"{name_or_path}.toml"
        text, origin = res_file.read_text(), f"suite '{name_or_path}'"
    elif path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise SuiteError(f"suite file {path} does not exist")
        text, origin = path.read_text(), str(path)
    else:
        raise SuiteError(f"unknown suite {name_or_path!r}: not a shipped suite ({', '.join(shipped_suites())}) "
                         f"nor a .toml file")
    return parse_suite(text, origin=origin, data_root=data_root)


def parse_suite(text: str, *, origin: str = "<suite>", data_root: str | None = None) -> Suite:
    """Parse and validate suite TOML text; raises :class:`SuiteError` naming file, key, reason."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{origin}: not valid TOML: {exc}") from None
    p = _Parser(origin, data_root)
    p.keys("", doc, _TOP_KEYS)
    name = doc.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name or ""):
        raise p.fail("name", f"must be a short name of letters, digits, '-', '_' (got {name!r})")
    grid, exclude = p.grid(doc.get("grid"))
    train_t = doc.get("train", {})
    train = p.train_config("train.", train_t, allowed=_TRAIN_KEYS)
    train_per_model = p.per_model("train.", train_t, grid["model"], "a model of this grid")
    res = train_t.get("res")
    if res is not None and (isinstance(res, bool) or not isinstance(res, int) or res < 1):
        raise p.fail("train.res", f"must be a positive integer (px), got {res!r}")
    if res is not None and grid["res"] != [None]:
        raise p.fail("grid.res", "is given and so is [train] res; keep one (the grid's makes res an axis)")
    exclude = [p.match_exclude(grid, e, res) for e in exclude]
    weights, pre_data, pretrain, pretrain_per_model, pre_seed = p.source(doc.get("source", {}), grid["model"])
    return Suite(
        name=name, description=str(doc.get("description", "")), grid=grid, exclude=exclude, train=train,
        res=res, source_weights=weights, pretrain_data=pre_data, pretrain=pretrain, pretrain_seed=pre_seed,
        cost=p.cost(doc.get("cost", {})), report=p.report(doc.get("report", {})), text=text, origin=origin,
        run=p.run(doc.get("run", {})), robustness=p.robustness(doc.get("robustness")),
        train_per_model=train_per_model, pretrain_per_model=pretrain_per_model,
        plan=p.plan(doc.get("plan", {}), grid["model"]),
    )


class _Parser:
    """The checks of :func:`parse_suite`, one method per table; every error names the file
    (``origin``), the key and the reason."""

    def __init__(self, origin: str, data_root: str | None) -> None:
        self.origin, self.data_root = origin, data_root

    def fail(self, key: str, reason: str) -> SuiteError:
        return SuiteError(f"{self.origin}: {key}: {reason}")

    def keys(self, where: str, table: dict, allowed: set[str]) -> None:
        for k in table:
            if k not in allowed:
                raise self.fail(f"{where}{k}", f"unknown key; allowed here: {', '.join(sorted(allowed))}")

    def expand_env(self, text: str, key: str) -> str:
        """``{data_root}`` and ``${VAR}`` filled in."""
        if "{data_root}" in text:
            root = self.data_root or os.environ.get("TRANSFUSION_DATA_ROOT")
            if not root:
                raise self.fail(key, f"{text!r} needs a data folder: pass --data-root PATH or set "
                                     "TRANSFUSION_DATA_ROOT")
            text = text.replace("{data_root}", root.rstrip("/"))

        def env(m: re.Match) -> str:
            var = m.group(1)
            if var not in os.environ:
                raise self.fail(key, f"{text!r} refers to ${{{var}}}, which is not set; export {var}=/path/to/data")
            return os.environ[var]

        return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", env, text)

    def grid(self, grid_t: Any) -> tuple[dict[str, list], list[dict]]:
        if not isinstance(grid_t, dict):
            raise self.fail("grid", "missing [grid] table")
        self.keys("grid.", grid_t, _GRID_KEYS)
        grid: dict[str, list] = {}
        for axis in GRID_AXES:
            if axis not in grid_t and axis not in _GRID_DEFAULTS:
                raise self.fail(f"grid.{axis}", "missing; the grid needs dataset and model lists")
            value = grid_t.get(axis, _GRID_DEFAULTS.get(axis))
            grid[axis] = value if isinstance(value, list) else [value]
            if not grid[axis]:
                raise self.fail(f"grid.{axis}", "is empty; the grid would have no runs")
        known = set(list_models())
        for m in grid["model"]:
            if is_timm_name(m):
                try:  # timm installed and knowing the name
                    model_config(m)
                except ValueError as exc:
                    raise self.fail("grid.model", str(exc)) from None
            elif m not in known:
                raise self.fail("grid.model", f"unknown model {m!r}; known: {', '.join(sorted(known))} "
                                              "(or any timm model as timm:NAME)")
        for r in grid["init"]:
            try:
                parse_regime(r)
            except ValueError as exc:
                raise self.fail("grid.init", str(exc)) from None
        for sc in grid["scheme"]:
            try:
                parse_scheme(sc)
            except ValueError as exc:
                raise self.fail("grid.scheme", str(exc)) from None
        for s in grid["seed"]:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise self.fail("grid.seed", f"seeds are whole numbers >= 0, got {s!r}")
        try:
            grid["train_size"] = [parse_train_size(t) for t in grid["train_size"]]
        except ValueError as exc:
            raise self.fail("grid.train_size", str(exc)) from None
        grid["dataset"] = [self.expand_env(str(d), "grid.dataset") for d in grid["dataset"]]
        for r in grid["res"]:
            if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 4):
                raise self.fail("grid.res", f"resolutions are whole numbers of px >= 4, got {r!r}")
        from transfusion.data._registry import parse_resize

        for r in grid["resize"]:
            try:
                parse_resize(r, None, f"grid.resize {r!r}")
            except ValueError as exc:
                raise self.fail("grid.resize", str(exc)) from None
        exclude = grid_t.get("exclude", [])
        if not isinstance(exclude, list) or not all(isinstance(e, dict) for e in exclude):
            raise self.fail("grid.exclude", "must be a list of tables such as { model = \"resnet50\", init = \"gabor\" }")
        for e in exclude:
            self.keys("grid.exclude.", e, set(GRID_AXES))
        return grid, exclude

    def match_exclude(self, grid: dict[str, list], entry: dict, res: int | None) -> dict:
        """``entry`` with each value replaced by the grid value it names (datasets compared in
        canonical form, so option order and defaults do not matter); a value no grid axis holds
        is an error, since the entry would silently exclude nothing."""
        from transfusion.data import canonical_spec

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
                raise self.fail("grid.exclude", f"{axis} = {value!r} is not in the grid's {axis} list "
                                                f"({', '.join(map(str, grid[axis]))}); the entry would exclude nothing")
            out[axis] = match
        return out

    def train_config(self, where: str, table: dict, base: dict | None = None, *,
                     allowed: set[str] = _OPTION_KEYS) -> TrainConfig:
        self.keys(where, table, allowed)
        own = _options(table)
        opts = {**(base or {}), **own}
        for length, other in (("epochs", "steps"), ("steps", "epochs")):
            if length in own and other not in own:  # a table's own training length replaces the inherited one
                opts.pop(other, None)
        try:
            return TrainConfig.from_dict(opts)
        except (TypeError, ValueError) as exc:
            raise self.fail(where.rstrip("."), str(exc)) from None

    def per_model(self, where: str, table: dict, models: list[str], what: str) -> dict[str, TrainConfig]:
        """``[<where>.per_model.NAME]`` tables: the base table's options with NAME's on top; NAME
        must be one of ``models`` (``what`` names that set in the error)."""
        per = table.get("per_model", {})
        if not isinstance(per, dict) or not all(isinstance(v, dict) for v in per.values()):
            raise self.fail(f"{where}per_model", "must hold one table per model, e.g. [train.per_model.resnet50]")
        base = _options(table)
        out = {}
        for model, opts in per.items():
            if model not in models:
                raise self.fail(f"{where}per_model.{model}", f"{model!r} is not {what} ({', '.join(models)})")
            out[model] = self.train_config(f"{where}per_model.{model}.", opts, base)
        return out

    def source(self, source_t: dict, grid_models: Sequence[str] = ()) -> tuple[str | None, str | None, TrainConfig,
                                                                             dict[str, TrainConfig], int | None]:
        """(weights, pretraining dataset, pretraining options, per-model options, seed — None for
        "per-seed"); per-model tables may name any built-in model and the grid's ``timm:`` models."""
        self.keys("source.", source_t, _SOURCE_KEYS)
        weights, pre_data = source_t.get("weights"), source_t.get("dataset")
        if weights and weights != "imagenet" and not str(weights).startswith("file:"):
            raise self.fail("source.weights", f"must be 'imagenet' or 'file:PATH', got {weights!r}")
        if weights:
            weights = self.expand_env(str(weights), "source.weights")
        if pre_data:
            pre_data = self.expand_env(str(pre_data), "source.dataset")
        train_t = source_t.get("train", {})
        pretrain = self.train_config("source.train.", train_t, allowed=_OPTION_KEYS | {"per_model"})
        models = list_models() + [m for m in grid_models if is_timm_name(m)]
        per_model = self.per_model("source.train.", train_t, models, "a known model")
        seed = source_t.get("seed", 0)
        if seed == "per-seed":
            return weights, pre_data, pretrain, per_model, None
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise self.fail("source.seed", f"must be an integer or \"per-seed\" (a pretraining run per "
                                           f"training seed), got {seed!r}")
        return weights, pre_data, pretrain, per_model, seed

    def cost(self, cost_t: dict) -> CostOptions:
        self.keys("cost.", cost_t, {f.name for f in fields(CostOptions)})
        cost = CostOptions(**cost_t)
        if cost.device not in ("cpu", "cuda"):
            raise self.fail("cost.device", f"must be cpu or cuda, got {cost.device!r}")
        for key in ("enabled", "onnx", "int8"):
            if not isinstance(getattr(cost, key), bool):
                raise self.fail(f"cost.{key}", f"must be true or false, got {getattr(cost, key)!r}")
        for key in ("batch", "repeats", "calib"):
            v = getattr(cost, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise self.fail(f"cost.{key}", f"must be a whole number >= 1, got {v!r}")
        if cost.int8 and not cost.onnx:
            raise self.fail("cost.int8", "int8 variants are ONNX models: set onnx = true, or drop int8")
        return cost

    def run(self, run_t: dict) -> RunOptions:
        self.keys("run.", run_t, {f.name for f in fields(RunOptions)})
        for key in ("workers", "threads"):
            v = run_t.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise self.fail(f"run.{key}", f"must be a whole number >= 1, got {v!r}")
        return RunOptions(**run_t)

    def robustness(self, table: dict | None) -> RobustnessOptions:
        from transfusion.data.corruptions import CORRUPTIONS, MODALITIES

        if table is None:
            return RobustnessOptions()
        self.keys("robustness.", table, {"corruptions", "severities", "modality", "seed"})
        names = table.get("corruptions", list(CORRUPTIONS))
        if not isinstance(names, list) or not names or any(n not in CORRUPTIONS for n in names):
            raise self.fail("robustness.corruptions", f"must be a non-empty list of {', '.join(CORRUPTIONS)}; "
                                                      f"got {names!r}")
        sev = table.get("severities", [1, 2, 3, 4, 5])
        if not isinstance(sev, list) or not sev or any(isinstance(v, bool) or v not in (1, 2, 3, 4, 5) for v in sev):
            raise self.fail("robustness.severities", f"must be a non-empty list of 1..5, got {sev!r}")
        modality = table.get("modality", "auto")
        if modality not in (*MODALITIES, "auto"):
            raise self.fail("robustness.modality", f"must be one of {', '.join(MODALITIES)} or auto, got {modality!r}")
        seed = table.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise self.fail("robustness.seed", f"must be a whole number >= 0, got {seed!r}")
        return RobustnessOptions(True, tuple(dict.fromkeys(names)), tuple(sorted(set(sev))), modality, seed)

    def _sd(self, key: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise self.fail(key, f"must be an SD in AUC units (1 AUC point = 0.01), a number in [0, 1); got {v!r}")
        return float(v)

    def plan(self, table: dict, models: list[str]) -> PlanOptions:
        self.keys("plan.", table, {"seed_sd", "test_se", "power", "per_model"})
        seed_sd = None if "seed_sd" not in table else self._sd("plan.seed_sd", table["seed_sd"])
        test_se = self._sd("plan.test_se", table.get("test_se", 0.0))
        power = table.get("power", 0.8)
        if isinstance(power, bool) or not isinstance(power, (int, float)) or not 0 < power < 1:
            raise self.fail("plan.power", f"must be a probability in (0, 1), e.g. 0.8; got {power!r}")
        per: dict[str, tuple[float, float]] = {}
        for model, sub in table.get("per_model", {}).items():
            where = f"plan.per_model.{model}"
            if model not in models:
                raise self.fail(where, f"{model!r} is not a model of this grid ({', '.join(models)})")
            if not isinstance(sub, dict):
                raise self.fail(where, "must be a table with seed_sd and/or test_se")
            self.keys(where + ".", sub, {"seed_sd", "test_se"})
            sd = sub.get("seed_sd", seed_sd)
            if sd is None:
                raise self.fail(where + ".seed_sd", "is needed (no [plan] seed_sd to fall back on)")
            per[model] = (self._sd(where + ".seed_sd", sd), self._sd(where + ".test_se", sub.get("test_se", test_se)))
        return PlanOptions(seed_sd, test_se, float(power), per)

    def report(self, report_t: dict) -> ReportOptions:
        self.keys("report.", report_t, {f.name for f in fields(ReportOptions)})
        studies = report_t.get("studies")
        if studies is not None:
            if not isinstance(studies, list) or not all(isinstance(n, str) for n in studies):
                raise self.fail("report.studies", f"must be a list of study names (e.g. [\"convergence\"]), got "
                                                  f"{studies!r}")
            report_t = {**report_t, "studies": tuple(studies)}
        opts = ReportOptions(**report_t)
        for key in ("margin", "delta"):
            v = getattr(opts, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise self.fail(f"report.{key}", f"must be a number in [0, 1) in AUC units, got {v!r}")
        for key in ("sensitivity", "specificity"):
            v = getattr(opts, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
                raise self.fail(f"report.{key}", f"target {key} of the operating points must be a number in (0, 1), "
                                                 f"got {v!r}")
        conf = opts.threshold_confidence
        if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.5 <= conf < 1:
            raise self.fail("report.threshold_confidence", f"one-sided confidence that a threshold meets its target "
                                                           f"on validation, a number in [0.5, 1), got {conf!r}")
        if not isinstance(opts.margin_reason, str):
            raise self.fail("report.margin_reason", f"must be a string (why the margin is what it is), got "
                                                    f"{opts.margin_reason!r}")
        bins = opts.calibration_bins
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise self.fail("report.calibration_bins", f"must be a whole number >= 2, got {bins!r}")
        probe = opts.probe
        if probe is not None and (isinstance(probe, bool) or not isinstance(probe, int) or probe < 16):
            raise self.fail("report.probe", f"probe-set size for the studies must be an integer >= 16, got {probe!r}")
        return opts


def _options(table: dict) -> dict:
    """A [train]-like table's trainer options (without ``res`` and the ``per_model`` tables)."""
    return {k: v for k, v in table.items() if k not in ("res", "per_model")}
