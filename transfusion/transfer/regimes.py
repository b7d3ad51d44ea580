"""Initialisation regimes of Raghu et al. (2019), each a small function from
(model, source) to an initialised model, listed in one table.

Regime strings (the same in Python, the CLI and suites):

- ``random`` — the architecture's default initialisation (what ``create_model`` built).
- ``transfer`` — every stage copied from the source; the head too when its shape matches,
  otherwise the head stays new (random).
- ``meanvar`` — Mean-Var init: every conv/linear weight and bias is drawn i.i.d. from
  N(μ, σ²) with μ, σ the mean and standard deviation of the corresponding source tensor — the
  scale of the pretrained weights survives, their features do not. BatchNorm γ and β are drawn
  the same way (per-tensor moments of the source's γ and β); BatchNorm running statistics are
  reset to mean 0 / variance 1, since they describe features that no longer exist. The head is
  treated as in ``transfer``: drawn when its shape matches the source's, else kept random.
- ``transfusion:K`` — the first K stages of the stage view from the source, every later stage
  (and the head) random. ``transfusion:0`` equals ``random``; K = stages before the head
  equals ``transfer`` with a new head.
- ``freeze:K`` — as ``transfusion:K``, and those K stages frozen: ``requires_grad=False`` and
  BatchNorm kept in eval mode by :func:`train_mode`.
- ``gabor`` — the first conv filled with a bank of synthetic Gabor filters scaled to the
  standard deviation of the default (Kaiming fan-out) init; everything else random. No source.
- ``slim`` — for ``slim_resnet50``: stem, layer1 and layer2 from a ``resnet50`` source, the
  slimmed layer3/layer4 and the head random.

Input channels: when a 1-channel task meets 3-channel pretrained weights, the first conv's
weights are **summed over the RGB axis**. For a grey image fed as three equal channels this is
exactly what the pretrained network computes, without tripling the first layer's input.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from transfusion.models import Stage, model_config, stages

from .regime import REGIME_NAMES, Regime, validate

Action = str  # "copied" | "drawn" | "kept" | "gabor" | "reset"


@dataclass
class InitReport:
    """What a regime did to each state tensor: ``actions[key]`` is one of ``copied`` (from the
    source), ``drawn`` (Mean-Var sample), ``kept`` (default init), ``gabor`` (Gabor bank),
    ``reset`` (BatchNorm statistics reset)."""

    regime: str
    actions: dict[str, Action]
    frozen_stages: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Number of tensors per action."""
        return dict(Counter(self.actions.values()))

    def keys(self, action: Action) -> list[str]:
        return [k for k, a in self.actions.items() if a == action]

    def to_dict(self) -> dict:
        return {"regime": self.regime, "counts": self.counts(), "frozen_stages": self.frozen_stages,
                "notes": self.notes}


# ---------------------------------------------------------------------------- helpers


def _first_conv_key(model: nn.Module) -> str:
    name = getattr(model, "transfusion_name", None)
    if name is None:
        raise ValueError("apply_init needs a model built with transfusion.models.create_model")
    return model_config(name).first_conv + ".weight"


def adapt_source(model: nn.Module, source: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Fit a source state dict to the model's input channels (sum over RGB for a 1-channel
    model). Returns the adapted dict and notes on what changed."""
    key = _first_conv_key(model)
    notes: list[str] = []
    target = model.state_dict().get(key)
    w = source.get(key)
    if target is not None and w is not None and w.shape[1] == 3 and target.shape[1] == 1:
        source = {**source, key: w.sum(dim=1, keepdim=True)}
        notes.append(f"{key}: 3-channel source summed over RGB for a 1-channel input")
    return source, notes


def _check_keys(model_sd: dict[str, torch.Tensor], source: dict[str, torch.Tensor], keys: list[str],
                what: str) -> None:
    problems = []
    for k in keys:
        if k not in source:
            problems.append(f"{k}: missing in source")
        elif source[k].shape != model_sd[k].shape:
            problems.append(f"{k}: source {tuple(source[k].shape)} vs model {tuple(model_sd[k].shape)}")
    if problems:
        shown = "; ".join(problems[:8]) + (f"; … {len(problems) - 8} more" if len(problems) > 8 else "")
        raise ValueError(f"source does not fit {what} ({len(problems)} tensors): {shown}")


def _stage_keys(model_sd: dict[str, torch.Tensor], stage: Stage) -> list[str]:
    return [k for k in model_sd if stage.owns(k)]


def _copy(model: nn.Module, source: dict[str, torch.Tensor], keys: list[str], actions: dict[str, Action]) -> None:
    sd = model.state_dict()
    with torch.no_grad():
        for k in keys:
            sd[k].copy_(source[k].to(sd[k].dtype))
            actions[k] = "copied"


def _head_fits(model_sd: dict[str, torch.Tensor], source: dict[str, torch.Tensor], head_keys: list[str]) -> bool:
    return all(k in source and source[k].shape == model_sd[k].shape for k in head_keys)


def _is_bn_stat(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked"))


# ---------------------------------------------------------------------------- regimes


def _random(model, regime, source, gen, actions, notes):
    return []


def _transfusion(model, regime, source, gen, actions, notes):
    k = regime.k if regime.name in ("transfusion", "freeze") else len(stages(model)) - 1
    view = stages(model)
    sd = model.state_dict()
    keys = [key for s in view[:k] for key in _stage_keys(sd, s)]
    _check_keys(sd, source, keys, f"the first {k} stages of {model.transfusion_name}")
    _copy(model, source, keys, actions)
    if regime.name == "transfer":
        head = _stage_keys(sd, view[-1])
        if _head_fits(sd, source, head):
            _copy(model, source, head, actions)
        else:
            notes.append("head: new (random) — its shape differs from the source's")
    return [s.name for s in view[:k]] if regime.name == "freeze" else []


def _meanvar(model, regime, source, gen, actions, notes):
    view = stages(model)
    sd = model.state_dict()
    head = set(_stage_keys(sd, view[-1]))
    body = [k for k in sd if k not in head]
    _check_keys(sd, source, [k for k in body if not _is_bn_stat(k)], f"{model.transfusion_name}")
    head_fits = _head_fits(sd, source, sorted(head))
    draw = body + (sorted(head) if head_fits else [])
    if not head_fits:
        notes.append("head: new (random) — its shape differs from the source's")
    with torch.no_grad():
        for k in draw:
            t = sd[k]
            if k.endswith("running_mean") or k.endswith("num_batches_tracked"):
                t.zero_()
                actions[k] = "reset"
            elif k.endswith("running_var"):
                t.fill_(1.0)
                actions[k] = "reset"
            else:
                s = source[k].double()
                mean, std = s.mean().item(), (s.std().item() if s.numel() > 1 else 0.0)
                t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float64).mul_(std).add_(mean).to(t.dtype))
                actions[k] = "drawn"
    return []


def _gabor(model, regime, source, gen, actions, notes):
    from .gabor import gabor_bank

    key = _first_conv_key(model)
    w = model.state_dict()[key]
    out_ch, in_ch, kh, kw = w.shape
    if kh != kw:
        raise ValueError(f"gabor init needs a square first conv, {key} is {kh}×{kw}")
    bank = gabor_bank(out_ch, in_ch, kh, seed=int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
    # scale to the default init's variance: Kaiming normal, fan_out, ReLU gain → σ² = 2 / fan_out
    target_std = math.sqrt(2.0 / (out_ch * kh * kw))
    bank = bank / bank.std().clamp_min(1e-12) * target_std
    with torch.no_grad():
        w.copy_(bank.to(w.dtype))
    actions[key] = "gabor"
    notes.append(f"{key}: {out_ch} Gabor filters scaled to std {target_std:.4g} (Kaiming fan-out)")
    return []


def _slim(model, regime, source, gen, actions, notes):
    view = stages(model)
    sd = model.state_dict()
    lower = [s for s in view if s.name in ("stem", "layer1", "layer2")]
    keys = [k for s in lower for k in _stage_keys(sd, s)]
    _check_keys(sd, source, keys, "stem, layer1 and layer2 of slim_resnet50 (a resnet50 source)")
    _copy(model, source, keys, actions)
    notes.append("layer3, layer4 (slimmed) and head: random")
    return []


_REGIMES: dict[str, Callable] = {
    "random": _random,
    "transfer": _transfusion,
    "transfusion": _transfusion,
    "freeze": _transfusion,
    "meanvar": _meanvar,
    "gabor": _gabor,
    "slim": _slim,
}
assert set(_REGIMES) == set(REGIME_NAMES), "the regime table and regime.REGIME_NAMES disagree"


def apply_init(
    model: nn.Module,
    regime: str | Regime,
    *,
    source: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
) -> InitReport:
    """Initialise ``model`` (fresh from ``create_model``) in place under ``regime``.

    ``source`` is a state dict of the same architecture (for ``slim``: of resnet50); a
    3-channel source meeting a 1-channel model has its first conv summed over RGB. ``seed``
    drives every random draw the regime makes (Mean-Var samples, Gabor phases). Raises
    ``ValueError`` for an unknown regime, a K out of range, a missing source, or a source whose
    tensors do not fit (listed per tensor).
    """
    name = getattr(model, "transfusion_name", None)
    if name is None:
        raise ValueError("apply_init needs a model built with transfusion.models.create_model")
    view = stages(model)
    r = validate(name, regime, len(view))
    if r.needs_source and source is None:
        raise ValueError(f"regime {r} needs source weights (--source imagenet | file:PATH)")
    notes: list[str] = []
    if source is not None and r.needs_source:
        source, adapt_notes = adapt_source(model, source)
        notes += adapt_notes
    actions: dict[str, Action] = dict.fromkeys(model.state_dict(), "kept")
    gen = torch.Generator().manual_seed(int(seed))
    frozen = _REGIMES[r.name](model, r, source, gen, actions, notes)
    if frozen:
        freeze_stages(model, frozen)
    return InitReport(str(r), actions, list(frozen), notes)


def freeze_stages(model: nn.Module, names: list[str]) -> None:
    """Stop gradients in the named stages; :func:`train_mode` keeps their BatchNorm in eval."""
    view = {s.name: s for s in stages(model)}
    for n in names:
        for p in view[n].module.parameters():
            p.requires_grad_(False)
    model.transfusion_frozen = list(names)


def train_mode(model: nn.Module) -> nn.Module:
    """``model.train()``, except frozen stages, which stay in eval mode (BatchNorm statistics
    fixed)."""
    model.train()
    frozen = getattr(model, "transfusion_frozen", [])
    if frozen:
        for s in stages(model):
            if s.name in frozen:
                s.module.eval()
    return model


def apply_scheme(model: nn.Module, scheme: str, num_outputs: int) -> nn.Module:
    """The network a training scheme (:mod:`.scheme`) trains, made from an initialised zoo
    model: the model itself for ``finetune``; its first K stages under a new pooled linear head
    for ``truncate:K``; every body stage under a new pooled linear head, the body frozen, for
    ``linear``, ``lp-ft`` (unfrozen later: :func:`unfreeze`) and ``knn`` (whose head
    :func:`fit_knn` replaces). A new head draws from torch's global generator: seed it first."""
    from transfusion.models.schemed import truncate

    from .scheme import parse_scheme

    s = parse_scheme(scheme)
    if s.name == "finetune":
        return model
    net = truncate(model, s.k, num_outputs)
    kept = set(net.stage_names)
    frozen = [n for n in getattr(model, "transfusion_frozen", []) if n in kept]
    if s.name in ("linear", "lp-ft", "knn"):
        frozen = list(net.stage_names)
    if frozen:
        freeze_stages(net, frozen)
    return net


def unfreeze(model: nn.Module) -> None:
    """Every parameter trainable again and no stage held in eval mode (``lp-ft``'s second phase)."""
    for p in model.parameters():
        p.requires_grad_(True)
    model.transfusion_frozen = []


def fit_knn(model: nn.Module, features: torch.Tensor, targets: Any, mask: Any, kind: str, k: int) -> None:
    """Put a :class:`~transfusion.models.schemed.KNNHead` over ``features`` (M, D) — the training
    images' pooled features — and their labels in place of ``model.fc`` (a scheme network).
    ``targets``: class indices (binary / multiclass) or (M, L) 0/1 (multilabel, ``mask`` marking
    the known entries)."""
    from transfusion.models.schemed import KNNHead

    t = torch.as_tensor(np.asarray(targets))
    if kind == "multilabel":
        votes = t.float()
        known = torch.ones_like(votes) if mask is None else torch.as_tensor(np.asarray(mask)).float()
    else:
        votes = nn.functional.one_hot(t.long(), model.fc.out_features).float()
        known = torch.ones_like(votes)
    model.fc = KNNHead(features.detach().float(), votes, known, k, kind)
