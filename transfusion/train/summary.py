"""The typed record of a finished run: :class:`RunSummary`.

The trainer returns one, ``summary.json`` in the run folder and the store's ``summary_json``
column hold its :meth:`~RunSummary.to_dict`, and every reader (harness, report, studies, export,
CLI) gets it back with :meth:`~RunSummary.from_dict`. The JSON keeps the flat keys the first
format had (``model``, ``test_auc``, ``res``, ``device``, ...), so stores written before the
record existed read unchanged; ``format`` says which version wrote it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from transfusion.core.runtime import Runtime
from transfusion.data import TaskSpec

from .spec import RunSpec

FORMAT = "transfusion-run-summary/2"
#: versions :meth:`RunSummary.from_dict` reads (the first format had no ``format`` key)
READABLE = (None, "transfusion-run-summary/2")


@dataclass(frozen=True)
class RunSummary:
    """Outcome of one training or pretraining run.

    Metrics are fractions in [0, 1] (AUC, AUPRC, accuracy) on the test split, scored with the
    best-by-validation checkpoint; ``test_auc_ci`` is its percentile bootstrap 95% interval
    over test images (``None`` when ``bootstrap = 0``). ``res`` is the input side in px;
    ``train_seconds`` the time in training steps, ``wall_seconds`` the whole run;
    ``train_img_s`` images per second of training. ``runtime`` is how it ran (device, bf16
    autocast, channels-last, threads), ``cpu`` the processor. ``clinical``: calibration and
    operating points at the default targets (see :func:`transfusion.stats.clinical.clinical_measures`).
    """

    run_id: str
    spec: RunSpec
    task: TaskSpec
    res: int
    in_chans: int
    n_train: int
    steps: int
    epochs: float
    batch_size: int
    test_auc: float | None = None
    test_auc_ci: tuple[float, float] | None = None
    test_auprc: float | None = None
    test_acc: float | None = None
    test_per_label_auc: dict[str, float | None] | None = None
    best_step: int | None = None
    val_auc_best: float | None = None
    steps_to_target: int | None = None
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    train_img_s: float | None = None
    params: int | None = None
    trainable_params: int | None = None
    init_report: dict = field(default_factory=dict)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    source_origin: str | None = None
    runtime: Runtime = field(default_factory=Runtime)
    cpu: str | None = None
    curve: list[dict] = field(default_factory=list)
    status: str = "done"
    clinical: dict | None = None

    # the spec's axes, for readers
    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def model(self) -> str:
        return self.spec.model

    @property
    def init(self) -> str:
        return self.spec.init

    @property
    def data(self) -> str:
        return self.spec.data

    @property
    def source(self) -> str | None:
        return self.spec.source

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def train_size(self) -> int | float | str:
        return self.spec.train_size

    @property
    def target_auc(self) -> float | None:
        return self.spec.train.target_auc

    @property
    def num_classes(self) -> int:
        return self.task.num_outputs

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the fields, the spec's axes flat beside them (as the first format
        wrote them), ``device`` and ``amp`` from the runtime, and ``format``."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(format=FORMAT, spec=self.spec.to_dict(), task=self.task.to_dict(), runtime=asdict(self.runtime),
                 test_auc_ci=list(self.test_auc_ci) if self.test_auc_ci else None, mean=list(self.mean),
                 std=list(self.std), kind=self.kind, model=self.model, init=self.init, data=self.data,
                 source=self.source, seed=self.seed, train_size=self.train_size, target_auc=self.target_auc,
                 device=self.runtime.device, amp=self.runtime.amp)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSummary:
        """Read a summary written by :meth:`to_dict`, or by the first (untyped) format."""
        fmt = d.get("format")
        if fmt not in READABLE:
            raise ValueError(f"unknown run summary format {fmt!r}; this transfusion reads {READABLE[1:]} "
                             "(and the unversioned first format): upgrade transfusion")
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["spec"] = RunSpec.from_dict(d["spec"])
        kw["task"] = TaskSpec.from_dict(d["task"])
        if d.get("runtime"):
            kw["runtime"] = Runtime(**d["runtime"])
        else:  # first format: device and amp only; channels-last followed from them
            amp, device = bool(d.get("amp")), str(d.get("device") or "cpu")
            kw["runtime"] = Runtime(device, amp, amp or device.startswith("cuda"), None)
        if kw.get("test_auc_ci"):
            kw["test_auc_ci"] = tuple(kw["test_auc_ci"])
        for key in ("mean", "std"):
            kw[key] = tuple(kw.get(key) or ())
        return cls(**kw)
