"""The trainer: one plain PyTorch loop, readable in one sitting.

``train_run(spec, out_dir)`` builds the data, the model and its initialisation
(:mod:`.setup`), trains, evaluates every ``eval_every`` steps, keeps the best (by validation
AUC) and last checkpoints, and finally scores the test split with the best checkpoint.
Everything random is derived from the run's seed and the step number, so a run resumed from
its last checkpoint ends exactly as if it had never stopped (on the same machine).

Files written to ``out_dir``: ``curve.csv`` (step, epoch, train_loss, val_auc, val_acc,
seconds), ``last.pt`` and ``best.pt`` (see :mod:`transfusion.transfer.checkpoint`),
``predictions.npz`` (test scores, targets, mask; the same of the validation split as ``val_*``) and ``summary.json``
(:class:`~.summary.RunSummary`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from transfusion.core.files import remove_stale_temporaries, write_csv, write_json
from transfusion.core.machine import cpu_name
from transfusion.core.runtime import Runtime
from transfusion.data import Dataset, augment
from transfusion.stats import bootstrap_ci, evaluate, steps_to_target
from transfusion.stats.clinical import clinical_measures
from transfusion.transfer import SourceWeights, fit_knn, parse_scheme, train_mode, unfreeze
from transfusion.transfer.checkpoint import (
    best_path,
    last_path,
    make_checkpoint,
    read_file,
    save_checkpoint,
)
from transfusion.transfer.regime import validate as validate_regime

from .inference import aux_logits_of, batch_tensors, logits_of, loss_fn, normalize, predict
from .optim import make_optimizer, make_schedule
from .setup import Prepared, prepare
from .spec import RunSpec, normalise_spec
from .summary import RunSummary

CURVE_FIELDS = ("step", "epoch", "train_loss", "val_auc", "val_acc", "seconds")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or the run learned nothing (:class:`TrainingDegenerate`)."""


class TrainingDegenerate(TrainingDiverged):
    """The trained model gives every test image the same scores: it learned nothing (an
    exploding learning rate saturates every output), so its AUC of 0.5 is not a result."""


def check_learned(scores: np.ndarray, curve: list[dict]) -> None:
    """Raise :class:`TrainingDegenerate` when ``scores`` (N, outputs) are the same for every
    image, saying the last training loss."""
    s = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)
    if len(s) > 1 and np.all(np.ptp(s, axis=0) == 0):
        loss = next((r["train_loss"] for r in reversed(curve) if r.get("train_loss") is not None), None)
        raise TrainingDegenerate("degenerate: every test image got the same scores, so the model learned nothing"
                                 + (f" (last training loss {loss:.3g})" if loss is not None else "")
                                 + "; lower the learning rate")


def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0xDA7A]).permutation(n)


def _fresh_state() -> dict:
    """The trainer's progress, saved in ``last.pt`` as ``trainer``."""
    return {"step": 0, "curve": [], "best_auc": -math.inf, "best_step": None, "seconds": 0.0,
            "train_seconds": 0.0, "loss_sum": 0.0, "loss_n": 0}


class _Run:
    """One run in progress: the prepared pieces, the optimiser and the trainer's state."""

    def __init__(self, spec: RunSpec, p: Prepared, runtime: Runtime, out: Path) -> None:
        cfg = spec.train
        self.spec, self.p, self.rt, self.out = spec, p, runtime, out
        self.task, self.train = p.dataset.task, p.train
        self.model: nn.Module = runtime.model(p.model)
        n = len(self.train)
        self.bs = min(int(cfg.batch_size), n)
        self.steps_per_epoch = max(1, n // self.bs)
        self.total = int(cfg.steps) if cfg.steps is not None else \
            max(1, round((cfg.epochs or 5) * self.steps_per_epoch))
        self.scheme = parse_scheme(spec.scheme)
        if self.scheme.name == "knn":
            self.total = 0  # nothing is trained: the neighbours are the model
        # lp-ft: the first lp_fraction of the steps probe linearly, the rest fine-tune everything
        self.probe_steps = max(1, round(cfg.lp_fraction * self.total)) if self.scheme.name == "lp-ft" else 0
        self.eval_every = int(cfg.eval_every or self.steps_per_epoch)
        self.opt = make_optimizer(self.model, cfg, frozen_too=self.scheme.name == "lp-ft")
        self.sched = make_schedule(self.opt, cfg, self.total)
        self.state = _fresh_state()
        self.clinical: dict | None = None
        self.val_scores: tuple[int, np.ndarray] | None = None  # (step, scores) of the last evaluation

    def resume(self) -> None:
        """Continue from ``last.pt`` when it belongs to this run."""
        last = last_path(self.out)
        if not last.exists():
            return
        ck = read_file(last)
        if ck.get("run_id") != self.spec.run_id:
            return
        self.model.load_state_dict(ck["state_dict"])
        if "optimizer" in ck:  # absent once training has finished: nothing left to step
            self.opt.load_state_dict(ck["optimizer"])
            self.sched.load_state_dict(ck["scheduler"])
        self.state.update(ck["trainer"])
        if self.probe_steps and self.state["step"] >= self.probe_steps:
            unfreeze(self.model)

    def fit_knn(self) -> None:
        """The ``knn`` scheme: the training images' pooled features become the neighbours."""
        net, n, feats = getattr(self.model, "_orig_mod", self.model), len(self.train), []
        net.eval()
        with torch.inference_mode():
            for i in range(0, n, 256):
                x, _, _ = batch_tensors(self.train, np.arange(i, min(n, i + 256)), self.rt.torch_device)
                x = self.rt.input(normalize(x, self.p.mean, self.p.std))
                feats.append(torch.flatten(net.pool(net.body(x)), 1).float())
        fit_knn(net, torch.cat(feats), self.train.targets, self.train.mask, self.task.kind, self.spec.train.knn_k)
        net.to(self.rt.torch_device)

    def save(self, path: Path, *, resumable: bool) -> None:
        p = self.p
        ck = make_checkpoint(run_id=self.spec.run_id, spec=self.spec.to_dict(), arch=self.spec.model,
                             task=self.task.to_dict(), res=p.dataset.res, in_chans=p.dataset.in_chans, mean=p.mean,
                             std=p.std, step=self.state["step"], model=self.model, trainer=self.state)
        save_checkpoint(path, ck, optimizer=self.opt if resumable else None,
                        scheduler=self.sched if resumable else None)

    def step(self) -> None:
        """One optimiser step on the batch this (seed, step) selects."""
        seed, step, st = self.spec.seed, self.state["step"], self.state
        if self.probe_steps and step == self.probe_steps:  # lp-ft: the probe is done, fine-tune everything
            unfreeze(self.model)
            train_mode(self.model)
        epoch, pos = divmod(step, self.steps_per_epoch)
        index = _epoch_order(len(self.train), seed, epoch)[pos * self.bs:(pos + 1) * self.bs]
        t0 = time.perf_counter()
        x, y, m = batch_tensors(self.train, index, self.rt.torch_device)
        torch.manual_seed(seed * 1_000_003 + step)  # dropout etc.: a function of (seed, step)
        if self.spec.train.augment:
            x = augment(x, torch.Generator(device=x.device).manual_seed(seed * 1_000_003 + step))
        x = self.rt.input(normalize(x, self.p.mean, self.p.std))
        with self.rt.autocast():
            outputs = self.model(x)
            loss = loss_fn(self.task, logits_of(outputs).float(), y, m)
            aux = aux_logits_of(outputs)
            if aux is not None:
                loss = loss + 0.4 * loss_fn(self.task, aux.float(), y, m)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"diverged at step {step}: loss is {loss.item()}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        st["train_seconds"] += time.perf_counter() - t0
        st["loss_sum"] += float(loss.detach())
        st["loss_n"] += 1
        st["step"] = step + 1

    def evaluate(self, t_start: float) -> dict:
        """Score the validation split, append to the curve, keep the best and last checkpoints."""
        st, val = self.state, self.p.dataset["val"]
        scores = predict(self.model, val, self.task, self.p.mean, self.p.std, runtime=self.rt)
        self.val_scores = (st["step"], scores)
        ev = evaluate(self.task, scores, val.targets, val.mask)
        row = {"step": st["step"], "epoch": st["step"] / self.steps_per_epoch,
               "train_loss": st["loss_sum"] / max(1, st["loss_n"]), "val_auc": ev["auc"], "val_acc": ev["acc"],
               "seconds": time.perf_counter() - t_start}
        st["curve"].append(row)
        st["loss_sum"], st["loss_n"] = 0.0, 0
        st["seconds"] = row["seconds"]
        if self._selects(ev["auc"]):
            st["best_auc"] = ev["auc"] if ev["auc"] is not None else st["best_auc"]
            st["best_step"] = st["step"]
            self.save(best_path(self.out), resumable=False)
        self.save(last_path(self.out), resumable=st["step"] < self.total)
        write_csv(self.out / "curve.csv", CURVE_FIELDS, st["curve"])
        train_mode(self.model)
        return row

    def _selects(self, val_auc: float | None) -> bool:
        """Whether this evaluation's weights become ``best.pt``: with ``select = "best"`` when the
        validation AUC improves (or nothing is kept yet), with ``"last"`` at the final step."""
        st = self.state
        if self.spec.train.select == "last":
            return st["step"] == self.total
        return (val_auc is not None and val_auc > st["best_auc"]) or st["best_step"] is None

    def test(self) -> tuple[np.ndarray, dict, tuple[float, float] | None]:
        """Test scores of the best checkpoint, their metrics and bootstrap 95% interval."""
        cfg = self.spec.train
        self.model.load_state_dict(read_file(best_path(self.out))["state_dict"])
        test = self.p.dataset["test"]
        scores = predict(self.model, test, self.task, self.p.mean, self.p.std, runtime=self.rt)
        ev = evaluate(self.task, scores, test.targets, test.mask)
        ci = bootstrap_ci(self.task, scores, test.targets, test.mask, n_boot=cfg.bootstrap, seed=self.spec.seed) \
            if cfg.bootstrap and ev["auc"] is not None else None
        # the validation split's scores too (same weights): temperature scaling and operating
        # points are fitted on them, never on the test split
        val = self.p.dataset["val"]
        if self.val_scores is not None and self.val_scores[0] == self.state["best_step"]:
            val_scores = self.val_scores[1]  # the best weights were scored on validation when they were saved
        else:
            val_scores = predict(self.model, val, self.task, self.p.mean, self.p.std, runtime=self.rt)
        np.savez_compressed(self.out / "predictions.npz", scores=scores, targets=test.targets,
                            mask=test.mask if test.mask is not None else np.zeros(0, bool),
                            val_scores=val_scores, val_targets=val.targets,
                            val_mask=val.mask if val.mask is not None else np.zeros(0, bool))
        if ev["auc"] is not None:
            self.clinical = clinical_measures(
                self.task, {"scores": val_scores, "targets": val.targets, "mask": val.mask},
                {"scores": scores, "targets": test.targets, "mask": test.mask}, n_boot=cfg.bootstrap, seed=self.spec.seed)
        return scores, ev, ci

    def summary(self, ev: dict, ci: tuple[float, float] | None) -> RunSummary:
        st, spec, cfg = self.state, self.spec, self.spec.train
        curve = st["curve"]
        return RunSummary(
            run_id=spec.run_id, spec=spec, task=self.task, res=self.p.dataset.res, in_chans=self.p.dataset.in_chans,
            n_train=len(self.train), steps=self.total, epochs=self.total / self.steps_per_epoch, batch_size=self.bs,
            test_auc=ev["auc"], test_auc_ci=tuple(ci) if ci else None, test_auprc=ev["auprc"], test_acc=ev["acc"],
            test_per_label_auc=ev.get("per_label_auc"), best_step=st["best_step"],
            val_auc_best=None if st["best_auc"] == -math.inf else st["best_auc"],
            steps_to_target=steps_to_target([r["step"] for r in curve], [r["val_auc"] for r in curve],
                                            cfg.target_auc) if cfg.target_auc is not None else None,
            train_seconds=st["train_seconds"], wall_seconds=st["seconds"],
            train_img_s=self.total * self.bs / st["train_seconds"] if st["train_seconds"] > 0 and self.total else None,
            params=sum(q.numel() for q in self.model.parameters()),
            trainable_params=sum(q.numel() for q in self.model.parameters() if q.requires_grad),
            init_report=self.p.init_report, mean=tuple(self.p.mean), std=tuple(self.p.std),
            source_origin=self.p.source_origin, runtime=self.rt, cpu=cpu_name(), curve=curve,
            clinical=self.clinical)


class RunFolderTaken(ValueError):
    """The output folder holds another run's checkpoints or summary."""


def folder_run_id(run_dir: str | Path) -> str | None:
    """The run id a run folder belongs to (from its summary.json, else its last or best
    checkpoint), or ``None`` for a folder that holds no run."""
    d = Path(run_dir)
    summary = d / "summary.json"
    if summary.is_file():
        try:
            rid = json.loads(summary.read_text()).get("run_id")
        except (ValueError, AttributeError):
            rid = None
        if rid:
            return str(rid)
    for path in (last_path(d), best_path(d)):
        if path.is_file():
            try:
                return read_file(path).get("run_id")
            except Exception:  # an unreadable checkpoint: not a run this trainer can claim
                return "unreadable checkpoint"
    return None


def train_run(
    spec: RunSpec,
    out_dir: str | Path,
    *,
    dataset: Dataset | None = None,
    source: SourceWeights | None = None,
    resume: bool = True,
    cache_dir: str | Path | None = None,
    on_eval: Callable[[dict], None] | None = None,
    overwrite: bool = False,
) -> RunSummary:
    """Train one run into ``out_dir`` and return its summary (also written as summary.json).

    Resumes from ``out_dir/last.pt`` when it holds the same run id. A folder holding another
    run's files raises :class:`RunFolderTaken` before any work unless ``overwrite``. Raises
    :class:`TrainingDiverged` ("diverged at step N") on a NaN/infinite loss, ``ValueError`` for
    a bad spec or device before any work.
    """
    spec = normalise_spec(spec)
    validate_regime(spec.model, spec.init)  # K, slim, gabor against the model: before the folder exists
    cfg = spec.train
    runtime = Runtime.resolve(cfg.device, amp=cfg.amp, threads=cfg.threads)
    out = Path(out_dir)
    if not overwrite:
        owner = folder_run_id(out)
        if owner is not None and owner != spec.run_id:
            raise RunFolderTaken(f"{out} holds run {owner}, not {spec.run_id}: training here would overwrite its "
                                 "checkpoints; choose another folder (or overwrite it on purpose: --force)")
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)  # half-written checkpoints of a killed attempt (20+ MB each)
    runtime.apply()
    run = _Run(spec, prepare(spec, dataset=dataset, source=source, cache_dir=cache_dir), runtime, out)
    if resume and run.scheme.name != "knn":  # a kNN run has no steps to resume: it is fitted again
        run.resume()
    t_start = time.perf_counter() - run.state["seconds"]
    if run.scheme.name == "knn":
        run.fit_knn()
        row = run.evaluate(t_start)
        if on_eval:
            on_eval(row)
    train_mode(run.model)
    while run.state["step"] < run.total:
        run.step()
        if run.state["step"] % run.eval_every == 0 or run.state["step"] == run.total:
            row = run.evaluate(t_start)
            if on_eval:
                on_eval(row)
    scores, ev, ci = run.test()
    check_learned(scores, run.state["curve"])
    summary = run.summary(ev, ci)
    write_json(out / "summary.json", summary.to_dict())
    return summary
