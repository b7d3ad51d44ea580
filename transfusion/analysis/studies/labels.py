"""Names of what a results store holds, for study tables and messages: short dataset labels,
the paper's order of init regimes, and the "found only: …" sentence of an absent study."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["data_label", "data_labels", "found_text", "regime_order"]

# the paper's order; regimes not listed sort last, by name
_REGIME_RANK = {"random": 0, "transfusion": 1, "transfer": 2, "meanvar": 3, "gabor": 4, "freeze": 5, "slim": 6}


def data_label(spec: str) -> str:
    """A short name for a dataset spec: its kind (``synth-retina``) or ``kind:folder``."""
    kind, _, rest = spec.partition("?")
    name, _, path = kind.partition(":")
    return f"{name}:{Path(path).name}" if path else name


def data_labels(specs: Iterable[str]) -> dict[str, str]:
    """Short, unambiguous labels for dataset specs (the full spec where short names collide)."""
    specs = sorted(set(specs))
    short = {s: data_label(s) for s in specs}
    counts: dict[str, int] = {}
    for v in short.values():
        counts[v] = counts.get(v, 0) + 1
    out = {}
    for s in specs:
        if counts[short[s]] == 1:
            out[s] = short[s]
        else:
            res = re.search(r"res=(\d+)", s)
            n = re.search(r"[?&]n=(\d+)", s)
            extra = ",".join(x for x in (res and f"{res.group(1)}px", n and f"n={n.group(1)}") if x)
            out[s] = f"{short[s]}[{extra or s}]"
    return out


def regime_order(init: str) -> tuple[int, int, str]:
    """Sort key putting regimes in the paper's order: random, transfusion:K by K, transfer, others."""
    name, _, k = init.partition(":")
    return (_REGIME_RANK.get(name, 9), int(k) if k.lstrip("-").isdigit() else -1, init)


def found_text(runs: list[dict], *, not_done: int = 0) -> str:
    """What a store holds, e.g. ``cbr_small on synth-retina: random (seeds 0, 1), gabor (seed 0)``."""
    if not runs:
        text = "no finished training runs"
    else:
        labels = data_labels(r["dataset"] for r in runs)
        groups: dict[tuple[str, str], dict[str, set]] = {}
        for r in runs:
            g = groups.setdefault((r["model"], labels[r["dataset"]]), {})
            g.setdefault(r["init"], set()).add(r["seed"])
        parts = []
        for (model, data), inits in sorted(groups.items()):
            regs = ", ".join(
                f"{i} (seed{'s' if len(s) > 1 else ''} {', '.join(map(str, sorted(s)))})"
                for i, s in sorted(inits.items(), key=lambda kv: regime_order(kv[0]))
            )
            parts.append(f"{model} on {data}: {regs}")
        text = "; ".join(parts)
    if not_done:
        text += f" ({not_done} training run{'s' if not_done > 1 else ''} not done)"
    return text
