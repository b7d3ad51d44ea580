"""The trainer: one plain PyTorch loop, readable in one sitting.

``train_run(spec, out_dir)`` builds the data, the model and its initialisation, trains,
evaluates every ``eval_every`` steps, keeps the best (by validation AUC) and last checkpoints,
and finally scores the test split with the best checkpoint. Everything random is derived from
the run's seed and the step number, so a run resumed from its last checkpoint ends exactly as
if it had never stopped (on the same machine).

Files written to ``out_dir``: ``curve.csv`` (step, epoch, train_loss, val_auc, val_acc,
seconds), ``last.pt`` and ``best.pt`` (transfusion checkpoints holding the full spec; only a
mid-training ``last.pt`` also holds the optimizer and schedule state), ``predictions.npz`` (test scores, targets, mask) and ``summary.json``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfusion.data import (
    ArraySplit,
    Dataset,
    TaskSpec,
    augment,
    canonical_spec,
    load_dataset,
    subsample,
)
from transfusion.models import check_input_size, create_model, model_config, stages
from transfusion.transfer import (
    CHECKPOINT_FORMAT,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SourceWeights,
    apply_init,
    load_source,
    source_arch,
    train_mode,
    validate,
)

from . import metrics as M
from .spec import RunSpec, TrainConfig

CURVE_FIELDS = ("step", "epoch", "train_loss", "val_auc", "val_acc", "seconds")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# ---------------------------------------------------------------------------- pieces


def normalize(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """uint8 (N, C, H, W) → float32, scaled to [0, 1] then standardised per channel.

    A 1-channel input uses the average of a 3-channel ``mean``/``std``.
    """
    c = images.shape[1]
    m = torch.tensor(mean if len(mean) == c else [sum(mean) / len(mean)] * c, device=images.device)
    s = torch.tensor(std if len(std) == c else [sum(std) / len(std)] * c, device=images.device)
    x = images.float().div_(255.0)
    return x.sub_(m.view(1, c, 1, 1)).div_(s.view(1, c, 1, 1))


def loss_fn(task: TaskSpec, logits: Tensor, targets: Tensor, mask: Tensor | None) -> Tensor:
    """Cross-entropy for binary/multiclass (class indices); for multilabel, BCE averaged over
    the observed (unmasked) labels only."""
    if task.kind == "multilabel":
        loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        if mask is None:
            return loss.mean()
        m = mask.to(loss.dtype)
        return (loss * m).sum() / m.sum().clamp_min(1.0)
    return F.cross_entropy(logits, targets)


def _logits(out: Any) -> Tensor:
    return out.logits if hasattr(out, "logits") else out


def _aux(out: Any) -> Tensor | None:
    return getattr(out, "aux_logits", None)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD (momentum, Nesterov) over the trainable parameters; no weight decay on
    BatchNorm parameters and biases."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    """Linear warm-up over ``cfg.warmup × total_steps``, then cosine decay to 0 (or constant)."""
    warm = int(cfg.warmup * total_steps)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        t = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0xDA7A]).permutation(n)


def batch_tensors(split: ArraySplit, index: np.ndarray, device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
    """Images (uint8), targets and mask for rows ``index`` (sorted for memmap locality)."""
    index = np.sort(index)
    x = torch.from_numpy(np.ascontiguousarray(split.images[index])).to(device)
    y = torch.from_numpy(np.ascontiguousarray(split.targets[index])).to(device)
    m = None if split.mask is None else torch.from_numpy(np.ascontiguousarray(split.mask[index])).to(device)
    return x, y, m


@torch.no_grad()
def predict(model: nn.Module, split: ArraySplit, task: TaskSpec, mean, std, *, device: str | torch.device = "cpu",
            batch_size: int = 128, amp: bool = False, channels_last: bool = False) -> np.ndarray:
    """Scores for every image of ``split`` in order (see ``metrics.scores_from_logits``)."""
    device = torch.device(device)
    model.eval()
    outs = []
    for start in range(0, len(split), batch_size):
        x = torch.from_numpy(np.array(split.images[start:start + batch_size])).to(device)
        x = normalize(x, mean, std)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            outs.append(_logits(model(x)).float().cpu())
    logits = torch.cat(outs) if outs else torch.empty(0, task.num_outputs)
    return M.scores_from_logits(task, logits)


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename over it."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_json(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------------------- setup


@dataclass
class Prepared:
    """Everything a run needs before its first step."""

    spec: RunSpec
    dataset: Dataset
    train: ArraySplit
    model: nn.Module
    init_report: dict
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source_origin: str | None


def normalise_spec(spec: RunSpec) -> RunSpec:
    """Canonical data spec (so two spellings of one dataset share a run id) and a checked
    model/regime pair; raises ``ValueError`` before anything heavy happens."""
    model_config(spec.model)
    data = canonical_spec(spec.data, res=spec.res)
    return spec.with_(data=data, res=None, train_size=parse_train_size(spec.train_size))


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


def build_initial_model(spec: RunSpec, dataset: Dataset, source: SourceWeights | None = None) -> tuple[nn.Module, dict, SourceWeights | None]:
    """The model exactly as it is before the first training step (default init under the run's
    seed, then the regime). Used by the trainer and by studies comparing a model with its own
    initialisation."""
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
    """Load data, build and initialise the model (no training)."""
    if dataset is None:
        dataset = load_dataset(spec.data, cache_dir=cache_dir)
    train = dataset["train"]
    size = parse_train_size(spec.train_size)
    if size != "all":
        train = subsample(train, size, seed=spec.seed)
    model, report, source = build_initial_model(spec, dataset, source)
    mean = tuple(source.mean) if source is not None else IMAGENET_MEAN
    std = tuple(source.std) if source is not None else IMAGENET_STD
    return Prepared(spec, dataset, train, model, report, mean, std, source.origin if source else None)


# ---------------------------------------------------------------------------- the loop


def train_run(
    spec: RunSpec,
    out_dir: str | Path,
    *,
    dataset: Dataset | None = None,
    source: SourceWeights | None = None,
    resume: bool = True,
    cache_dir: str | Path | None = None,
    on_eval: Callable[[dict], None] | None = None,
) -> dict:
    """Train one run into ``out_dir`` and return its summary (also written as summary.json).

    Resumes from ``out_dir/last.pt`` when it holds the same run id. Raises
    :class:`TrainingDiverged` ("diverged at step N") on a NaN/infinite loss.
    """
    spec = normalise_spec(spec)
    cfg = spec.train
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available on this machine; use --device cpu")
    if device.type == "cpu":
        torch.set_num_threads(int(cfg.threads or os.cpu_count() or 1))
    amp = cfg.amp if cfg.amp is not None else device.type == "cuda"
    # channels-last on CUDA, and with bf16 autocast on CPU (oneDNN's AMX/AVX-512 bf16 kernels)
    channels_last = device.type == "cuda" or amp

    p = prepare(spec, dataset=dataset, source=source, cache_dir=cache_dir)
    task, model, train = p.dataset.task, p.model.to(device), p.train
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    n = len(train)
    bs = min(int(cfg.batch_size), n)
    steps_per_epoch = max(1, n // bs)
    total = int(cfg.steps) if cfg.steps is not None else max(1, round((cfg.epochs or 5) * steps_per_epoch))
    eval_every = int(cfg.eval_every or steps_per_epoch)
    opt = make_optimizer(model, cfg)
    sched = make_schedule(opt, cfg, total)

    state = {"step": 0, "curve": [], "best_auc": -math.inf, "best_step": None, "seconds": 0.0,
             "train_seconds": 0.0, "loss_sum": 0.0, "loss_n": 0}
    last, best = out / "last.pt", out / "best.pt"
    if resume and last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=True)
        if ck.get("run_id") == spec.run_id:
            model.load_state_dict(ck["state_dict"])
            if "optimizer" in ck:  # absent once training has finished: nothing left to step
                opt.load_state_dict(ck["optimizer"])
                sched.load_state_dict(ck["scheduler"])
            state.update(ck["trainer"])

    def checkpoint(path: Path, *, resumable: bool) -> None:
        # best.pt and the finished last.pt hold weights only (ResNet50: 94 MB, against 283 MB with
        # AdamW's moments); a mid-training last.pt also holds optimizer and schedule to resume from
        ck = {
            "format": CHECKPOINT_FORMAT, "run_id": spec.run_id, "spec": spec.to_dict(), "arch": spec.model,
            "mean": list(p.mean), "std": list(p.std), "task": task.to_dict(), "res": p.dataset.res,
            "in_chans": p.dataset.in_chans, "step": state["step"],
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "trainer": dict(state),
        }
        if resumable:
            ck.update(optimizer=opt.state_dict(), scheduler=sched.state_dict())
        atomic_save(ck, path)

    val = p.dataset["val"]
    t_start = time.perf_counter() - state["seconds"]
    train_mode(model)
    while state["step"] < total:
        step = state["step"]
        epoch, pos = divmod(step, steps_per_epoch)
        index = _epoch_order(n, spec.seed, epoch)[pos * bs:(pos + 1) * bs]
        t0 = time.perf_counter()
        x, y, m = batch_tensors(train, index, device)
        torch.manual_seed(spec.seed * 1_000_003 + step)  # dropout etc.: a function of (seed, step)
        if cfg.augment:
            x = augment(x, torch.Generator(device=x.device).manual_seed(spec.seed * 1_000_003 + step))
        x = normalize(x, p.mean, p.std)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            outputs = model(x)
            loss = loss_fn(task, _logits(outputs).float(), y, m)
            if _aux(outputs) is not None:
                loss = loss + 0.4 * loss_fn(task, _aux(outputs).float(), y, m)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"diverged at step {step}: loss is {loss.item()}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        state["train_seconds"] += time.perf_counter() - t0
        state["loss_sum"] += float(loss.detach())
        state["loss_n"] += 1
        state["step"] = step + 1
        if state["step"] % eval_every == 0 or state["step"] == total:
            scores = predict(model, val, task, p.mean, p.std, device=device, amp=amp, channels_last=channels_last)
            ev = M.evaluate(task, scores, val.targets, val.mask)
            row = {"step": state["step"], "epoch": state["step"] / steps_per_epoch,
                   "train_loss": state["loss_sum"] / max(1, state["loss_n"]),
                   "val_auc": ev["auc"], "val_acc": ev["acc"],
                   "seconds": time.perf_counter() - t_start}
            state["curve"].append(row)
            state["loss_sum"], state["loss_n"] = 0.0, 0
            state["seconds"] = row["seconds"]
            improved = ev["auc"] is not None and ev["auc"] > state["best_auc"]
            if improved or state["best_step"] is None:
                state["best_auc"] = ev["auc"] if ev["auc"] is not None else state["best_auc"]
                state["best_step"] = state["step"]
                checkpoint(best, resumable=False)
            checkpoint(last, resumable=state["step"] < total)
            _write_curve(out / "curve.csv", state["curve"])
            if on_eval:
                on_eval(row)
            train_mode(model)

    # test with the best checkpoint
    best_ck = torch.load(best, map_location="cpu", weights_only=True)
    model.load_state_dict(best_ck["state_dict"])
    test = p.dataset["test"]
    scores = predict(model, test, task, p.mean, p.std, device=device, amp=amp, channels_last=channels_last)
    ev = M.evaluate(task, scores, test.targets, test.mask)
    ci = M.bootstrap_ci(task, scores, test.targets, test.mask, n_boot=cfg.bootstrap, seed=spec.seed) \
        if cfg.bootstrap and ev["auc"] is not None else None
    np.savez_compressed(out / "predictions.npz", scores=scores, targets=test.targets,
                        mask=test.mask if test.mask is not None else np.zeros(0, bool))
    curve = state["curve"]
    summary = {
        "run_id": spec.run_id, "status": "done", "kind": spec.kind,
        "model": spec.model, "init": spec.init, "data": spec.data, "source": spec.source,
        "source_origin": p.source_origin, "seed": spec.seed, "train_size": spec.train_size,
        "n_train": n, "res": p.dataset.res, "in_chans": p.dataset.in_chans, "task": task.to_dict(),
        "test_auc": ev["auc"], "test_auc_ci": list(ci) if ci else None, "test_auprc": ev["auprc"],
        "test_acc": ev["acc"], "test_per_label_auc": ev.get("per_label_auc"),
        "best_step": state["best_step"], "val_auc_best": None if state["best_auc"] == -math.inf else state["best_auc"],
        "steps": total, "epochs": total / steps_per_epoch, "batch_size": bs,
        "target_auc": cfg.target_auc,
        "steps_to_target": M.steps_to_target([r["step"] for r in curve], [r["val_auc"] for r in curve], cfg.target_auc)
        if cfg.target_auc is not None else None,
        "train_seconds": state["train_seconds"], "wall_seconds": state["seconds"],
        "train_img_s": total * bs / state["train_seconds"] if state["train_seconds"] > 0 else None,
        "params": sum(q.numel() for q in model.parameters()),
        "trainable_params": sum(q.numel() for q in model.parameters() if q.requires_grad),
        "init_report": p.init_report, "mean": list(p.mean), "std": list(p.std),
        "device": str(device), "amp": amp, "spec": spec.to_dict(), "curve": curve,
    }
    _write_json(summary, out / "summary.json")
    return summary


def _write_curve(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CURVE_FIELDS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
