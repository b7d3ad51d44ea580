"""The model card of an exported model: what it is, what it expects, how well it does, what it
costs (a JSON record, and the same as Markdown)."""

from __future__ import annotations

from typing import Any

from transfusion.core.text import interval, num
from transfusion.data import TaskSpec
from transfusion.train.inference import per_channel

CARD_FORMAT = "transfusion-model-card/1"


def score_rule(task: TaskSpec) -> str:
    """How scores come from the logits, in words."""
    if task.kind == "binary":
        return f"P({task.labels[1]}) = softmax(logits)[:, 1]"
    if task.kind == "multiclass":
        return "class probabilities = softmax(logits, axis=1)"
    return "per-label probabilities = sigmoid(logits)"


def normalisation(mean: tuple[float, ...], std: tuple[float, ...], in_chans: int) -> dict[str, Any]:
    """The input normalisation as the trainer applies it to ``in_chans`` channels."""
    return {"from": "uint8 pixels", "scale": "x / 255", "mean": per_channel(mean, in_chans),
            "std": per_channel(std, in_chans), "formula": "(x / 255 - mean[c]) / std[c] per channel c"}


def _ci(ci: Any) -> str:
    return "—" if not ci else interval(ci[0], ci[1], ".4f")


def _clinical_lines(c: dict[str, Any] | None, scores: str) -> list[str]:
    """The card's decision thresholds and calibration (from the run's stored measures)."""
    if not c:
        return ["## Decision threshold", "- not stored with this run (trained before operating points were kept)", ""]
    lines = ["## Decision threshold (chosen on the validation split, read on the test split)"]
    for p in c["operating_points"]:
        t = p["test"]
        shown = f" with {p['confidence']:.0%} one-sided confidence" if p.get("confidence") else ""
        lines.append(f"- {p['label']}: for {p['target']} ≥ {p['level']:g}{shown} call positive when the score ≥ "
                     f"**{p['threshold']:.4f}** — test sensitivity {num(t['sensitivity'][0])}, specificity "
                     f"{num(t['specificity'][0])}, PPV {num(t['ppv'][0])}, NPV {num(t['npv'][0])}")
    lines += [f"- not set — {why}" for why in c.get("operating_skipped", [])]
    if not c["operating_points"] and not c.get("operating_skipped"):
        lines.append("- none (a multiclass task has no single positive class)")
    lines.append(f"- the score is {scores}")
    cal, temp = c["calibration"], c.get("temperature")
    ce = cal.get("ce")
    ce_text = "" if ce is None else (f"calibration error (debiased RMS) {num(ce[0])}"
                                     + (f", below which a perfectly calibrated model stays 95% of the time: "
                                        f"{num(c['ce_floor'])}" if c.get("ce_floor") is not None else "") + "; ")
    lines += ["", "## Calibration (test split)",
              f"- {ce_text}ECE ({c['n_bins']} equal-mass bins, plug-in) {num(cal['ece'][0])}, Brier "
              f"{num(cal['brier'][0])}, NLL {num(cal['nll'][0])}"]
    if temp is not None and c.get("calibration_scaled"):
        sc = c["calibration_scaled"]
        lines.append(f"- temperature scaling (fitted on validation): T = {temp:.3f}; divide the logits by T for "
                     f"calibrated probabilities (ECE {num(sc['ece'][0])}, NLL {num(sc['nll'][0])}); the thresholds "
                     "above apply to the unscaled score")
    return [*lines, ""]


def _variant_lines(variants: list[dict[str, Any]]) -> list[str]:
    """The deployment variants' table: size, latency, throughput, AUC and the non-inferiority check."""
    if not variants:
        return []
    margin = variants[0]["margin"]
    lines = ["## Deployment variants (ONNX Runtime, against the fp32 export on the same test images)",
             "", "| variant | file | MB | provider | batch-1 ms (median / p95) | img/s at batch N | test AUC | "
             "AUC − fp32 [95% paired interval] | non-inferior |", "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for v in variants:
        lines.append(f"| {v['variant']} | `{v['file']}` | {v['bytes'] / 1e6:.2f} | {v['provider']} | "
                     f"{v['ms_batch1']:.3f} / {v['p95_ms_batch1']:.3f} | {v['img_s_batchN']:.0f} (N = {v['batch']}) | "
                     f"{num(v['test_auc'], '.4f')} | {num(v['auc_diff'], '+.4f')} "
                     f"[{num(v['auc_diff_low'], '+.4f')}, {num(v['auc_diff_high'], '+.4f')}] | "
                     f"{'**passed**' if v['passed'] else '**FAILED**'} |")
    lines += ["", f"Non-inferior: the interval's lower end above −{margin:g} AUC (the suite's margin). int8 static: "
              "QDQ, per-channel int8 weights, uint8 activations calibrated on training images"
              + (f" ({variants[[v['variant'] for v in variants].index('static')]['calibration_images']})"
                 if any(v["variant"] == "static" for v in variants) else "")
              + "; int8 dynamic: activations quantised at run time; fp16: half-precision weights and compute "
                "(for GPUs; the CPU provider may run it slower than fp32).", ""]
    return lines


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
        f"- init: {s['init']}; training scheme: {s.get('scheme') or 'finetune'}; weights source: "
        f"{s['weights_source'] or '—'}; checkpoint: `{s['checkpoint']}`",
        "",
        "## Metrics (test split)",
        f"- {m['evaluated_on']}, {m['n_test']} images",
        f"- stored test AUC {num(m['test_auc_stored'])} (95% CI {_ci(m['test_auc_ci_stored'])}), AUPRC "
        f"{num(m['test_auprc_stored'])}, accuracy {num(m['test_acc_stored'])}"
        + (" — scored under bf16 autocast during training" if m["trained_with_bf16_autocast"] else ""),
        f"- recomputed now: PyTorch fp32 AUC {num(m['test_auc_torch_fp32'])}, ONNX Runtime AUC {num(m['test_auc_onnx'])}",
        "",
        *_clinical_lines(card.get("clinical"), t["scores"]),
        *_variant_lines(card.get("variants") or []),
        "## Parity (ONNX Runtime vs PyTorch, same images)",
        f"- **{'passed' if p['passed'] else 'FAILED'}**" + (f": {'; '.join(p['failures'])}" if p["failures"] else ""),
        f"- max abs error {p['max_abs_err']:.3g}; max relative error {p['max_rel_err']:.3g} (tolerance {p['rel_tol']:g}, "
        "relative to the largest |logit|)",
        f"- AUC difference {num(p['auc_diff'], '+.2e')} (tolerance ±{p['auc_tol']:g})",
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
