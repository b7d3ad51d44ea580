"""Run specifications: everything a run's result is a pure function of, and its id."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "constant")
SELECTIONS = ("best", "last")


@dataclass(frozen=True)
class TrainConfig:
    """Trainer options. Defaults suit the paper's setting scaled down: AdamW, cosine decay
    after a linear warm-up over ``warmup`` (fraction of all steps), weight decay 1e-4, light
    augmentation (flip + small shift).

    Give ``epochs`` or ``steps`` (default: 5 epochs). ``eval_every`` is in steps (default: once
    per epoch). ``target_auc`` sets the convergence target for ``steps_to_target``. ``select``:
    which weights the test split is scored with — ``best`` (the highest validation AUC) or
    ``last`` (the final weights; steadier when the validation split is small, since the cosine
    schedule ends at a low learning rate). ``device``, ``threads`` and ``amp`` change speed, not the experiment, and are excluded from
    the run id; ``amp=None`` means bf16 autocast on CUDA and fp32 on CPU. ``lp_fraction``: the
    share of the steps the ``lp-ft`` scheme spends linear-probing; ``knn_k``: the neighbours the
    ``knn`` scheme asks.
    """

    epochs: float | None = None
    steps: int | None = None
    batch_size: int = 32
    optimizer: str = "adamw"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup: float = 0.05
    augment: bool = True
    eval_every: int | None = None
    target_auc: float | None = None
    bootstrap: int = 1000
    select: str = "best"
    device: str = "cpu"
    threads: int | None = None
    amp: bool | None = None
    lp_fraction: float = 0.5
    knn_k: int = 11

    RUNTIME_ONLY = ("device", "threads", "amp")
    #: options added after run ids were first published, left out of the id at their default so
    #: that earlier stores keep their ids
    LATER_DEFAULTS = {"select": "best", "lp_fraction": 0.5, "knn_k": 11}

    #: option → (kind, lower bound, whether the bound itself is allowed); None values pass
    _NUMBERS = {"epochs": ("real", 0, False), "steps": ("int", 1, True), "batch_size": ("int", 2, True),
                "lr": ("real", 0, False), "momentum": ("real", 0, True), "weight_decay": ("real", 0, True),
                "warmup": ("real", 0, True), "eval_every": ("int", 1, True), "target_auc": ("real", 0, False),
                "bootstrap": ("int", 0, True), "threads": ("int", 1, True), "lp_fraction": ("real", 0, False),
                "knn_k": ("int", 1, True)}

    def __post_init__(self) -> None:
        for name, (kind, low, inclusive) in self._NUMBERS.items():
            v = getattr(self, name)
            if v is None:
                continue
            whole = isinstance(v, int) or (isinstance(v, float) and v.is_integer())
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind == "int" and not whole):
                raise ValueError(f"{name} must be {'a whole number' if kind == 'int' else 'a number'}, got {v!r}")
            if not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
            if v < low or (v == low and not inclusive):
                raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {low}, got {v!r}")
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give epochs or steps, not both")
        if self.epochs is not None and not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.steps is not None and int(self.steps) < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if int(self.batch_size) < 2:
            raise ValueError(f"batch_size must be >= 2 (BatchNorm), got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup is a fraction of all steps in [0, 1), got {self.warmup}")
        if self.eval_every is not None and int(self.eval_every) < 1:
            raise ValueError(f"eval_every must be >= 1 step, got {self.eval_every}")
        if self.select not in SELECTIONS:
            raise ValueError(f"select must be one of {SELECTIONS}, got {self.select!r}")
        if not 0 < self.lp_fraction < 1:
            raise ValueError(f"lp_fraction is the share of steps spent linear-probing, in (0, 1), got {self.lp_fraction}")
        if self.target_auc is not None and not 0 < self.target_auc <= 1:
            raise ValueError(f"target_auc must be in (0, 1], got {self.target_auc}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown trainer option(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    def identity(self) -> dict[str, Any]:
        """The options that define the experiment (runtime-only ones dropped)."""
        d = asdict(self)
        for k in self.RUNTIME_ONLY:
            d.pop(k)
        for k, default in self.LATER_DEFAULTS.items():
            if d[k] == default:
                d.pop(k)
        if d["epochs"] is None and d["steps"] is None:
            d["epochs"] = 5
        return d


@dataclass(frozen=True)
class RunSpec:
    """One training run: model × data × init regime × training scheme × seed × training-set
    size × options.

    ``data`` is a dataset spec string (see ``transfusion.data``), ``source`` a weight source
    (``imagenet``, ``file:PATH``, ``run:RUN_ID``), ``train_size`` ``"all"``, a count or a
    fraction, ``res`` the input side in px (``None``: the data spec's). ``kind`` is ``train``
    or ``pretrain``; ``scheme`` how much of the network trains (:mod:`transfusion.transfer.scheme`;
    ``finetune``, the default, is left out of the run id so earlier ids stand).
    """

    model: str
    data: str
    init: str = "random"
    source: str | None = None
    seed: int = 0
    train_size: int | float | str = "all"
    res: int | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    kind: str = "train"
    scheme: str = "finetune"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["train"] = asdict(self.train)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        d = dict(d)
        d["train"] = TrainConfig.from_dict(d.get("train") or {})
        return cls(**d)

    def identity(self) -> dict[str, Any]:
        d = self.to_dict()
        d["train"] = self.train.identity()
        if d["scheme"] == "finetune":
            d.pop("scheme")
        return d

    @property
    def run_id(self) -> str:
        """First 16 hex digits of the SHA-256 of the normalised spec (sorted-key JSON)."""
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_(self, **changes: Any) -> RunSpec:
        return replace(self, **changes)

    @property
    def res_px(self) -> int | None:
        """The input side in px: ``res`` if set, else the data spec's own (its ``res`` option)."""
        if self.res is not None:
            return int(self.res)
        from transfusion.data import spec_res

        return spec_res(self.data)


def parse_train_size(value: int | float | str) -> int | float | str:
    """``"all"``, a count (int ≥ 1, e.g. 5000) or a fraction (float in (0, 1], e.g. 0.1)."""
    if value == "all" or value is None:
        return "all"
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if text.isdigit() else float(text)
        except ValueError:
            raise ValueError(f"train_size must be 'all', a count or a fraction, got {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"train_size must be 'all', a count or a fraction, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"train_size count must be >= 1, got {value}")
        return value
    if not 0 < value <= 1:
        raise ValueError(f"train_size fraction must be in (0, 1], got {value}")
    return float(value)


def normalise_spec(spec: RunSpec) -> RunSpec:
    """The spec as its run id is computed: the data spec in canonical form with the resolution
    folded into it (so two spellings of one dataset share a run id), ``res`` cleared, the
    training size parsed. Raises ``ValueError`` for an unknown model or a seed outside
    [0, 2³²) (numpy's seeding range) before anything heavy."""
    from transfusion.data import canonical_spec
    from transfusion.models import model_config
    from transfusion.transfer.scheme import parse_scheme

    model_config(spec.model)
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or not 0 <= spec.seed < 2 ** 32:
        raise ValueError(f"seed must be a whole number in [0, 2³²), got {spec.seed!r} (--seed, or the suite's "
                         "[grid] seed)")
    data = canonical_spec(spec.data, res=spec.res)
    return spec.with_(data=data, res=None, train_size=parse_train_size(spec.train_size),
                      scheme=str(parse_scheme(spec.scheme)))
