"""Deployment check: export a trained run to ONNX, prove parity on its real test images, time
ONNX Runtime, and write a model card.

``export_run(target, out_dir)`` takes a run id (looked up in a results store) or a checkpoint
path (``best.pt`` written by the trainer, or its run folder), and:

1. rebuilds the model from the checkpoint (architecture, head size, input channels);
2. exports it with ``torch.onnx.export(dynamo=True)`` to ``model.onnx`` + ``model.onnx.data``
   and validates it with ``onnx.checker`` (full check);
3. runs PyTorch (fp32, eval mode) and ONNX Runtime on the run's test split, rebuilt from the
   run's data spec with :func:`transfusion.data.load_dataset`, and compares them:
   ``max_abs_err`` = max |torch − ort| over all logits, ``max_rel_err`` = that over max |torch|
   (relative to the outputs' scale, as :func:`transfusion.bench.onnx_export.parity`), and the
   test AUC recomputed from each side's outputs;
4. times ONNX Runtime at batch 1 and batch N (and PyTorch at batch 1, for reference);
5. writes ``model_card.md`` and ``model_card.json`` and records the export in the store.

Parity tolerances (both must hold, else the export *fails*): ``max_rel_err <= 1e-4`` — fp32
kernels in the two runtimes agree to ~1e-6 relative, so 1e-4 leaves two orders of margin
while catching any real graph difference (a wrong op, a missed normalisation, a train-mode
BatchNorm); and ``|AUC_onnx − AUC_torch| <= 1e-4`` — the AUC only moves if the tiny numeric
differences swap the order of two test images, which at 1e-6 relative practically never
happens. The PyTorch AUC here is recomputed in fp32; a run trained with bf16 autocast scored its
stored test AUC under autocast, so the stored figure may differ slightly (the card shows both).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import metrics as M
from .checkpoints import load_checkpoint, model_from_checkpoint
from .onnx_export import (
    INPUT_NAME,
    OUTPUT_NAME,
    check_onnx,
    export_onnx,
    onnx_files,
    ort_run,
    ort_session,
)
from .store import Store
from .timing import time_cpu, torch_threads

DEFAULT_STORE = Path("runs") / "quick" / "results.sqlite"
REL_TOL = 1e-4
AUC_TOL = 1e-4
CARD_FORMAT = "transfusion-model-card/1"
ONNX_NAME = "model.onnx"


class ParityError(RuntimeError):
    """ONNX Runtime's outputs differ from PyTorch's beyond the tolerances; ``result`` holds the
    figures (the model card was written, with ``parity.passed = false``)."""

    def __init__(self, message: str, result: ExportResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class ExportResult:
    """What :func:`export_run` wrote and found."""

    out_dir: Path
    onnx_path: Path
    card_md: Path
    card_json: Path
    card: dict[str, Any]
    passed: bool
    failures: list[str] = field(default_factory=list)
    store_path: Path | None = None
    export_id: int | None = None


@dataclass(frozen=True)
class Target:
    """A resolved export target: the checkpoint, and the run/store it belongs to (if known)."""

    checkpoint: Path
    run_id: str | None
    store_path: Path | None
    run: dict | None = None


def _store_file(path: str | Path) -> Path:
    p = Path(path)
    return p / "results.sqlite" if p.is_dir() else p


def resolve_target(target: str | Path, store_path: str | Path | None = None) -> Target:
    """A checkpoint file, a run folder holding ``best.pt``, or a run id (or unique prefix of
    one, at least 4 characters) looked up in ``store_path`` (default ``runs/quick/results.sqlite``)."""
    p = Path(target)
    if p.is_file() or (p.is_dir() and (p / "best.pt").is_file()):
        ck = p if p.is_file() else p / "best.pt"
        run_id = _checkpoint_run_id(ck)
        store = _store_file(store_path) if store_path else ck.parent.parent / "results.sqlite"
        run = None
        if store.is_file() and run_id:
            with Store(store) as s:
                run = s.run(run_id)
        if run is None and store_path is None:
            store = None  # no store involved
        return Target(ck, run_id, store if (store_path or run) else None, run)
    store = _store_file(store_path or DEFAULT_STORE)
    if not store.is_file():
        raise FileNotFoundError(f"{target!s} is not a checkpoint file or run folder, and there is no results store at "
                                f"{store} to look it up as a run id (pass --store PATH)")
    text = str(target)
    with Store(store) as s:
        run = s.run(text)
        if run is None and len(text) >= 4:
            hits = [r for r in s.runs() if r["run_id"].startswith(text)]
            if len(hits) > 1:
                raise ValueError(f"run id prefix {text!r} is ambiguous in {store}: "
                                 f"{', '.join(r['run_id'] for r in hits[:5])}")
            run = hits[0] if hits else None
    if run is None:
        raise ValueError(f"no run {text!r} in {store} (and no file of that name)")
    if run["status"] != "done":
        raise ValueError(f"run {run['run_id']} is {run['status']}, not done; only finished runs can be exported")
    candidates = [Path(run["out_dir"]) / "best.pt"] if run.get("out_dir") else []
    candidates.append(store.parent / run["run_id"] / "best.pt")
    ck = next((c for c in candidates if c.is_file()), None)
    if ck is None:
        raise FileNotFoundError(f"run {run['run_id']} has no checkpoint (looked at {', '.join(map(str, candidates))})")
    return Target(ck, run["run_id"], store, run)


def _checkpoint_run_id(path: Path) -> str | None:
    try:
        return load_checkpoint(path).get("run_id")
    except ValueError:
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _opset(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def export_run(
    target: str | Path,
    out_dir: str | Path,
    *,
    store_path: str | Path | None = None,
    batch: int = 32,
    threads: int | None = None,
    repeats: int = 20,
    rel_tol: float = REL_TOL,
    auc_tol: float = AUC_TOL,
    max_images: int | None = None,
    eval_batch: int = 64,
    strict: bool = True,
    ort_runner: Callable[[Any, torch.Tensor], np.ndarray] | None = None,
) -> ExportResult:
    """Export, check, compare, time and describe one trained model (see the module docstring).

    ``batch``: the second latency batch size; ``threads``: intra-op threads for both runtimes
    (default: torch's current count); ``max_images``: compare on the first N test images only;
    ``strict``: raise :class:`ParityError` when parity fails (the card and the store record are
    written first). ``ort_runner`` replaces :func:`~transfusion.bench.onnx_export.ort_run`
    (tests use it to break parity on purpose).
    """
    from transfusion.data import load_dataset
    from transfusion.data.base import TaskSpec

    from .profile import count_macs, params
    from .runner import machine_info
    from .trainer import normalize

    if int(batch) < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if not (rel_tol >= 0 and auc_tol >= 0):
        raise ValueError(f"tolerances must be >= 0, got rel_tol={rel_tol}, auc_tol={auc_tol}")
    if max_images is not None and int(max_images) < 2:
        raise ValueError(f"max_images must be >= 2, got {max_images}")
    run_ort = ort_runner or ort_run
    tgt = resolve_target(target, store_path)
    ck = load_checkpoint(tgt.checkpoint)
    spec, t = ck["spec"], ck["task"]
    task = TaskSpec(t["kind"], tuple(t["labels"]), t.get("positive_rule", ""))
    model = model_from_checkpoint(ck)
    mean, std = tuple(ck["mean"]), tuple(ck["std"])
    threads = int(threads) if threads is not None else torch.get_num_threads()

    ds = load_dataset(spec["data"])
    if (ds.res, ds.in_chans) != (int(ck["res"]), int(ck["in_chans"])):
        raise ValueError(f"the data spec {spec['data']!r} now gives {ds.res} px × {ds.in_chans} channels, but the "
                         f"checkpoint was trained on {ck['res']} px × {ck['in_chans']}")
    test = ds["test"]
    n = len(test) if max_images is None else min(len(test), int(max_images))
    if n < 1:
        raise ValueError(f"the test split of {spec['data']!r} is empty")
    images = np.array(test.images[:n])  # a writable copy (the cache hands out read-only memmaps)
    targets = np.asarray(test.targets[:n])
    mask = None if test.mask is None else np.asarray(test.mask[:n])

    def inputs(index: slice | np.ndarray) -> torch.Tensor:
        return normalize(torch.from_numpy(np.ascontiguousarray(images[index])), mean, std)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / ONNX_NAME
    example = inputs(np.arange(2) % n)  # batch 2, so the batch axis stays dynamic
    with torch_threads(threads):
        export_onnx(model, example, onnx_path)
        check_onnx(onnx_path)
        session = ort_session(onnx_path, threads=threads)
        ref, got = [], []
        with torch.no_grad():
            for sl in _batches(n, eval_batch):
                x = inputs(sl)
                ref.append(model(x).double().numpy())
                got.append(np.asarray(run_ort(session, x), dtype=np.float64))
        a, b = np.concatenate(ref), np.concatenate(got)
        if a.shape != b.shape:
            raise ValueError(f"output shapes differ: torch {a.shape} vs onnxruntime {b.shape}")
        max_abs = float(np.max(np.abs(a - b)))
        max_rel = max_abs / max(float(np.max(np.abs(a))), float(np.finfo(np.float64).tiny))
        ev_t = M.evaluate(task, M.scores_from_logits(task, a), targets, mask)
        ev_o = M.evaluate(task, M.scores_from_logits(task, b), targets, mask) if np.all(np.isfinite(b)) else None
        auc_t = ev_t["auc"]
        auc_o = None if ev_o is None else ev_o["auc"]
        auc_diff = None if auc_t is None or auc_o is None else auc_o - auc_t

        x1 = inputs(np.arange(1))
        xn = inputs(np.arange(int(batch)) % n)
        t_ort1 = time_cpu(lambda: run_ort(session, x1), repeats=repeats, threads=threads)
        t_ortn = time_cpu(lambda: run_ort(session, xn), repeats=max(3, repeats // 4), threads=threads)
        with torch.no_grad():
            t_torch1 = time_cpu(lambda: model(x1), repeats=repeats, threads=threads)
        macs, _ = count_macs(model, x1)
    n_params, _ = params(model)

    failures = []
    if not max_rel <= rel_tol:
        failures.append(f"max relative output error {max_rel:.3g} > {rel_tol:g}")
    if not np.all(np.isfinite(b)):
        failures.append("ONNX Runtime produced NaN or inf")
    elif auc_diff is not None and not abs(auc_diff) <= auc_tol:
        failures.append(f"|AUC(ONNX) − AUC(PyTorch)| = {abs(auc_diff):.3g} > {auc_tol:g}")
    passed = not failures

    summary = (tgt.run or {}).get("summary") or _summary_beside(tgt.checkpoint)
    files = onnx_files(onnx_path)
    import onnx
    import onnxruntime

    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": {"run_id": ck.get("run_id"), "checkpoint": str(tgt.checkpoint), "model": ck["arch"],
                   "init": spec.get("init"), "weights_source": spec.get("source"), "seed": spec.get("seed"),
                   "dataset": spec.get("data"), "train_size": spec.get("train_size"), "step": ck.get("step"),
                   "store": str(tgt.store_path) if tgt.store_path else None},
        "task": {"kind": task.kind, "labels": list(task.labels), "positive_rule": task.positive_rule,
                 "scores": _score_rule(task)},
        "input": {"name": INPUT_NAME, "shape": ["N", int(ck["in_chans"]), int(ck["res"]), int(ck["res"])],
                  "dtype": "float32", "layout": "NCHW", "res_px": int(ck["res"]), "in_chans": int(ck["in_chans"]),
                  "normalisation": {"from": "uint8 pixels", "scale": "x / 255",
                                    "mean": _per_channel(mean, int(ck["in_chans"])),
                                    "std": _per_channel(std, int(ck["in_chans"])),
                                    "formula": "(x / 255 - mean[c]) / std[c] per channel c"}},
        "output": {"name": OUTPUT_NAME, "shape": ["N", task.num_outputs], "dtype": "float32"},
        "metrics": {"evaluated_on": f"test split of {spec.get('data')}", "n_test": n,
                    "test_auc_stored": summary.get("test_auc") if summary else None,
                    "test_auc_ci_stored": summary.get("test_auc_ci") if summary else None,
                    "test_auprc_stored": summary.get("test_auprc") if summary else None,
                    "test_acc_stored": summary.get("test_acc") if summary else None,
                    "trained_with_bf16_autocast": summary.get("amp") if summary else None,
                    "test_auc_torch_fp32": auc_t, "test_auc_onnx": auc_o,
                    "test_acc_onnx": None if ev_o is None else ev_o["acc"]},
        "parity": {"n_images": n, "max_abs_err": max_abs, "max_rel_err": max_rel, "rel_tol": rel_tol,
                   "auc_torch": auc_t, "auc_onnx": auc_o, "auc_diff": auc_diff, "auc_tol": auc_tol,
                   "passed": passed, "failures": failures},
        "latency": {"ort_ms_batch1": t_ort1.median_ms, "ort_iqr_ms_batch1": t_ort1.iqr_ms,
                    "ort_ms_batchN": t_ortn.median_ms, "ort_iqr_ms_batchN": t_ortn.iqr_ms, "batch": int(batch),
                    "ort_img_s_batchN": t_ortn.img_s(int(batch)), "torch_ms_batch1": t_torch1.median_ms,
                    "threads": threads, "provider": session.get_providers()[0], "machine": machine_info()},
        "cost": {"params": n_params, "macs": macs, "res_px": int(ck["res"]),
                 "macs_note": "fvcore multiply-adds per image (max-pool counts 0)"},
        "files": {f.name: {"bytes": f.stat().st_size, "sha256": _sha256(f)} for f in files},
        "export": {"exporter": "torch.onnx.export(dynamo=True)", "opset": _opset(onnx_path),
                   "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                   "checker": "onnx.checker.check_model(full_check=True): passed"},
    }
    card_json = out / "model_card.json"
    card_md = out / "model_card.md"
    _write(card_json, json.dumps(card, indent=2, default=str) + "\n")
    _write(card_md, model_card_markdown(card))
    result = ExportResult(out, onnx_path, card_md, card_json, card, passed, failures, tgt.store_path)
    if tgt.store_path is not None:
        with Store(tgt.store_path) as s:
            result.export_id = s.put_export(tgt.run_id, checkpoint=tgt.checkpoint, out_dir=out.resolve(),
                                            onnx_path=onnx_path.resolve(), passed=passed, card=card)
    if strict and not passed:
        raise ParityError("ONNX parity failed: " + "; ".join(failures), result)
    return result


def _summary_beside(ck: Path) -> dict | None:
    p = ck.parent / "summary.json"
    try:
        return json.loads(p.read_text()) if p.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def _per_channel(values: tuple[float, ...], c: int) -> list[float]:
    """Mean/std as :func:`transfusion.bench.trainer.normalize` applies them to ``c`` channels."""
    return [float(v) for v in values] if len(values) == c else [float(sum(values) / len(values))] * c


def _score_rule(task: Any) -> str:
    if task.kind == "binary":
        return f"P({task.labels[1]}) = softmax(logits)[:, 1]"
    if task.kind == "multiclass":
        return "class probabilities = softmax(logits, axis=1)"
    return "per-label probabilities = sigmoid(logits)"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _g(v: Any, spec: str = ".4f") -> str:
    return "—" if v is None else format(v, spec)


def _ci(ci: Any) -> str:
    return "—" if not ci else f"{ci[0]:.4f}–{ci[1]:.4f}"


def model_card_markdown(card: dict[str, Any]) -> str:
    """The model card as Markdown (same content as the JSON card)."""
    s, t, i, m, p, lat, c = (card[k] for k in ("source", "task", "input", "metrics", "parity", "latency", "cost"))
    norm = i["normalisation"]
    lines = [
        f"# Model card: {s['model']} · {s['init']} · run {s['run_id']}",
        "",
        f"Exported {card['created']} with {card['export']['exporter']} (opset {card['export']['opset']}); "
        f"{card['export']['checker']}.",
        "",
        "## Task",
        f"- kind: {t['kind']}; labels: {', '.join(t['labels'])}",
        f"- positive rule: {t['positive_rule'] or '—'}",
        f"- scores from the `{card['output']['name']}` output {card['output']['shape']}: {t['scores']}",
        "",
        "## Input",
        f"- `{i['name']}`: float32 {i['layout']} {i['shape']} ({i['res_px']} px, {i['in_chans']} channel(s))",
        f"- normalisation: {norm['formula']}, mean {norm['mean']}, std {norm['std']} (from uint8 pixels)",
        "",
        "## Training source",
        f"- dataset: `{s['dataset']}`, train size {s['train_size']}, seed {s['seed']}, step {s['step']}",
        f"- init: {s['init']}; weights source: {s['weights_source'] or '—'}; checkpoint: `{s['checkpoint']}`",
        "",
        "## Metrics (test split)",
        f"- {m['evaluated_on']}, {m['n_test']} images",
        f"- stored test AUC {_g(m['test_auc_stored'])} (95% CI {_ci(m['test_auc_ci_stored'])}), AUPRC "
        f"{_g(m['test_auprc_stored'])}, accuracy {_g(m['test_acc_stored'])}"
        + (" — scored under bf16 autocast during training" if m["trained_with_bf16_autocast"] else ""),
        f"- recomputed now: PyTorch fp32 AUC {_g(m['test_auc_torch_fp32'])}, ONNX Runtime AUC {_g(m['test_auc_onnx'])}",
        "",
        "## Parity (ONNX Runtime vs PyTorch, same images)",
        f"- **{'passed' if p['passed'] else 'FAILED'}**" + (f": {'; '.join(p['failures'])}" if p["failures"] else ""),
        f"- max abs error {p['max_abs_err']:.3g}; max relative error {p['max_rel_err']:.3g} (tolerance {p['rel_tol']:g}, "
        "relative to the largest |logit|)",
        f"- AUC difference {_g(p['auc_diff'], '+.2e')} (tolerance ±{p['auc_tol']:g})",
        "",
        "## Cost",
        f"- {c['params'] / 1e6:.3f} M parameters; {c['macs'] / 1e9:.4f} GMACs per image at {c['res_px']} px "
        f"({c['macs_note']})",
        f"- ONNX Runtime ({lat['provider']}, {lat['threads']} thread(s)): {lat['ort_ms_batch1']:.3f} ms at batch 1, "
        f"{lat['ort_ms_batchN']:.3f} ms at batch {lat['batch']} ({lat['ort_img_s_batchN']:.0f} img/s); "
        f"PyTorch eager {lat['torch_ms_batch1']:.3f} ms at batch 1",
        f"- measured on {lat['machine'].get('cpu')} ({lat['machine'].get('cores')} cores), torch "
        f"{card['export']['torch']}, onnxruntime {card['export']['onnxruntime']}",
        "",
        "## Files",
        *(f"- `{name}`: {f['bytes']} bytes, sha256 {f['sha256']}" for name, f in card["files"].items()),
        "",
        "Keep `model.onnx` and `model.onnx.data` together: the graph refers to the weights file by name.",
        "",
    ]
    return "\n".join(lines)
