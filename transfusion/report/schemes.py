"""Training schemes in the report: per dataset × training size, a scheme × regime table of each
model (test AUC beside the cost of the scheme's own network and its training time), and per
model the cheapest arm whose AUC is within δ of the model's best — the answer to "which scheme
is cheapest at equal AUC?". Rows are the summary's; an arm is a regime under a scheme (its
``init`` label ``"transfer · linear"``; plain ``"transfer"`` is fine-tuning)."""

from __future__ import annotations

from transfusion.core.text import num
from transfusion.transfer import regime_of

from . import document as D

SCHEME_ORDER = ("finetune", "lp-ft", "linear", "knn")


def scheme_of(label: str) -> str:
    """The scheme of an arm label (``"transfer · linear"`` → ``"linear"``; a bare regime is
    ``finetune``)."""
    return label.split(" · ", 1)[1] if " · " in label else "finetune"


def _order(scheme: str) -> tuple[int, str]:
    return (SCHEME_ORDER.index(scheme), scheme) if scheme in SCHEME_ORDER else (len(SCHEME_ORDER), scheme)


def _cost(r: dict) -> tuple[str, float] | None:
    """(measure, value) a scheme's arms are compared on: ONNX Runtime latency, else MACs."""
    for key in ("onnx_ms", "macs"):
        if r.get(key) is not None:
            return key, float(r[key])
    return None


def _cell(r: dict) -> str:
    """``0.873 · 1.21 ms · 0.062 G · 14 s``: AUC, then whichever costs were measured."""
    parts = [num(r["auc_mean"])]
    if r.get("onnx_ms") is not None:
        parts.append(f"{r['onnx_ms']:.2f} ms")
    if r.get("macs") is not None:
        parts.append(f"{r['macs'] / 1e9:.3f} G")
    if r.get("train_seconds") is not None:
        parts.append(f"{r['train_seconds']:.0f} s")
    return " · ".join(parts)


def schemes_section(rows: list[dict], delta: float) -> D.Section | None:
    """The section for one dataset × training size's summary ``rows``; ``None`` when every arm
    is fine-tuning."""
    if all(scheme_of(r["init"]) == "finetune" for r in rows):
        return None
    sub = D.Section("Training schemes: which is cheapest at equal AUC?", level=3)
    schemes = sorted({scheme_of(r["init"]) for r in rows}, key=_order)
    sub.blocks.append(D.Para(
        "Test AUC (mean over seeds) of each regime under each scheme, with the cost of the scheme's own network "
        "(a truncated network is cheaper; a linear or kNN head costs about what the model's head does, the kNN head "
        "searches every training image) — ONNX Runtime batch-1 ms and GMACs — and the mean training seconds "
        "(kNN: none, its neighbours are the training images' features)."))
    cols = ["model", "regime", *schemes]
    table = []
    for model in dict.fromkeys(r["model"] for r in rows):
        for regime in dict.fromkeys(regime_of(r["init"]) for r in rows if r["model"] == model):
            cells = []
            for sc in schemes:
                r = next((x for x in rows if x["model"] == model and regime_of(x["init"]) == regime
                          and scheme_of(x["init"]) == sc), None)
                cells.append("—" if r is None or r["auc_mean"] is None else _cell(r))
            table.append([model, regime, *cells])
    sub.blocks.append(D.Table(cols, table, caption="AUC · ONNX Runtime ms · GMACs · training s, per regime × scheme"))
    picks, measures = [], set()
    for model in dict.fromkeys(r["model"] for r in rows):
        arms = [r for r in rows if r["model"] == model and r["auc_mean"] is not None and _cost(r) is not None]
        if not arms:
            continue
        best = max(arms, key=lambda r: r["auc_mean"])
        within = [r for r in arms if r["auc_mean"] >= best["auc_mean"] - delta]
        measure = _cost(best)[0]
        measures.add("ONNX Runtime latency" if measure == "onnx_ms" else "MACs")
        cheap = min(within, key=lambda r: (float(r[measure]) if r.get(measure) is not None else float("inf"),
                                           r.get("train_seconds") or 0.0))
        unit = "ms" if measure == "onnx_ms" else "GMACs"
        value = cheap[measure] if measure == "onnx_ms" else cheap[measure] / 1e9
        picks.append(f"{model}: {cheap['init']} — AUC {num(cheap['auc_mean'])} at {value:.3g} {unit} "
                     f"(best {best['init']}: AUC {num(best['auc_mean'])}; {len(within)} of {len(arms)} arms within "
                     f"{delta * 100:g} AUC points of it)")
    if picks:
        sub.blocks.append(D.Para("", lead=f"Cheapest arm within δ = {delta * 100:g} AUC points of each model's best "
                                         f"(by {' or '.join(sorted(measures))}, then training time):"))
        sub.blocks.append(D.Bullets(picks))
    return sub
