"""The stage view: every model as an ordered list of stages, ending with the head.

Transfusion (copy the first K stages), freezing, activation hooks and filter pictures all go
through :func:`stages`, never through module positions.

Groupings:
- CBR: ``block1`` … ``blockB`` (conv, BN, ReLU, pool), ``head`` (global pool + linear).
- ResNet (resnet18, resnet50, slim_resnet50): ``stem`` (conv1, bn1, relu, maxpool),
  ``layer1`` … ``layer4``, ``head`` (avgpool + fc).
- Inception-v3: ``stem`` (Conv2d_1a … Conv2d_4a with both max-pools, 192 channels),
  ``mixed5`` (Mixed_5b–5d, 288 channels at 35×35 for 299 px input), ``mixed6`` (Mixed_6a–6e,
  768 channels at 17×17), ``mixed7`` (Mixed_7a–7c, 2048 channels at 8×8), ``head`` (AuxLogits if
  present, avgpool, dropout, fc). The grouping follows the grid-size reductions, as the paper's
  per-block analysis of Inception does.
- DenseNet121: ``stem`` (conv0, norm0, relu0, pool0), ``block1`` … ``block3`` (dense block +
  transition), ``block4`` (dense block 4 + norm5), ``head`` (classifier).
- MobileNetV3, EfficientNet, ConvNeXt (a ``features`` sequence): the blocks grouped by the
  resolution they output — ``stem`` (every block up to stride 2, or the patchify stem), then
  ``stage1`` … one per halving of the resolution (the last holding the final 1×1 conv where there
  is one), ``head`` (avgpool + classifier). MobileNetV3-Small: stem, 4 stages, head;
  MobileNetV3-Large and EfficientNet-B0 the same; ConvNeXt-Tiny: stem, 3 stages, head.
- RegNet: ``stem``, ``stage1`` … ``stage4`` (trunk blocks 1–4), ``head`` (avgpool + fc).
- A network a training scheme made (:class:`~.schemed.Truncated`: ``truncate:K``, ``linear``,
  ``lp-ft``, ``knn``): the kept stages under their own names, then ``head`` (pool + fc, or the
  kNN head).
- ShuffleNetV2: ``stem`` (conv1, maxpool), ``stage1`` … ``stage3`` (stage2–4, the last with
  conv5), ``head`` (fc; the global pooling is functional).
- timm models (``timm:NAME``): read from timm's own feature metadata, ``model.feature_info`` (one
  entry per feature point: ``module``, ``num_chs``, ``reduction``), never from a table per model.
  The modules are taken in registration order (timm's own feature extraction relies on it), split
  just finely enough that every feature module and the classifier are units of their own. One
  stage ends at each feature point: ``stem`` (everything up to and including the first feature
  module), then ``stage1`` …; ``head`` is the classifier (``pretrained_cfg['classifier']``) with
  the parameter-free pooling, flatten, dropout and identity modules just before it. What lies
  between the last feature point and the head (EfficientNet's ``conv_head``/``bn2``,
  MobileNetV3's ``conv_head`` and its activation, ConvNeXt's ``head.norm``, a ViT's final
  ``norm``) belongs to the last stage, so that ``transfer`` with a new class count keeps every
  pretrained tensor but the classifier's, as timm's own fine-tuning does. A stage without
  parameters joins the next one. Tensors registered directly on a module that is split (a ViT's
  ``cls_token``, ``pos_embed``) come first in that module's order. Examples: timm's ResNets give
  stem (conv1, bn1, act1), stage1 (maxpool, layer1) … stage4, head (global_pool, fc);
  EfficientNet-B0 the torchvision grouping (stem = conv_stem, bn1, blocks.0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torchvision.models as tvm
from torch import nn

from .cbr import CBR
from .schemed import Truncated


@dataclass(frozen=True, eq=False)
class Stage:
    """One stage of a model.

    ``module`` holds exactly the stage's parameters and buffers (the model's own submodule, or
    an unregistered ``nn.Sequential`` view over several of them); ``out_channels`` is the channel
    count of the stage's output (classes for the head); ``prefixes`` are the qualified names of
    the model submodules in the stage; ``output`` is the submodule whose forward output is the
    stage's output — the place to hook activations.
    """

    name: str
    module: nn.Module
    out_channels: int
    prefixes: tuple[str, ...]
    output: nn.Module

    def owns(self, key: str) -> bool:
        """Whether a state-dict key (``"layer1.0.conv1.weight"``) belongs to this stage."""
        return any(key == p or key.startswith(p + ".") for p in self.prefixes)


def _stage(model: nn.Module, name: str, prefixes: list[str], out_channels: int) -> Stage:
    mods = [model.get_submodule(p) for p in prefixes]
    module = mods[0] if len(mods) == 1 else nn.Sequential(*mods)
    # the stage output is the last submodule that the forward pass runs
    return Stage(name, module, int(out_channels), tuple(prefixes), mods[-1])


def _resnet_stages(m: tvm.ResNet) -> list[Stage]:
    out = [_stage(m, "stem", ["conv1", "bn1", "relu", "maxpool"], m.conv1.out_channels)]
    for i in range(1, 5):
        layer = getattr(m, f"layer{i}")
        last = layer[-1]
        ch = (last.bn3 if hasattr(last, "bn3") else last.bn2).num_features
        out.append(_stage(m, f"layer{i}", [f"layer{i}"], ch))
    out.append(_stage(m, "head", ["avgpool", "fc"], m.fc.out_features))
    return out


def _inception_stages(m: tvm.Inception3) -> list[Stage]:
    stem = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2"]
    head = (["AuxLogits"] if m.AuxLogits is not None else []) + ["avgpool", "dropout", "fc"]
    return [
        _stage(m, "stem", stem, m.Conv2d_4a_3x3.conv.out_channels),
        _stage(m, "mixed5", ["Mixed_5b", "Mixed_5c", "Mixed_5d"], 288),
        _stage(m, "mixed6", ["Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"], 768),
        _stage(m, "mixed7", ["Mixed_7a", "Mixed_7b", "Mixed_7c"], 2048),
        _stage(m, "head", head, m.fc.out_features),
    ]


def _densenet_stages(m: tvm.DenseNet) -> list[Stage]:
    f = m.features
    out = [_stage(m, "stem", ["features.conv0", "features.norm0", "features.relu0", "features.pool0"], f.conv0.out_channels)]
    for i in range(1, 4):
        out.append(
            _stage(m, f"block{i}", [f"features.denseblock{i}", f"features.transition{i}"],
                   getattr(f, f"transition{i}").conv.out_channels)
        )
    out.append(_stage(m, "block4", ["features.denseblock4", "features.norm5"], f.norm5.num_features))
    out.append(_stage(m, "head", ["classifier"], m.classifier.out_features))
    return out


def _stride(module: nn.Module) -> int:
    """How much ``module`` divides the resolution: the product of its convolutions' strides (the
    blocks of these families have one strided path and no strided shortcut)."""
    total = 1
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            total *= int(m.stride[0])
    return total


def _out_channels(module: nn.Module) -> int:
    """Channels a block outputs: those of its last convolution (its projection)."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return int(convs[-1].out_channels)


def _feature_stages(m: nn.Module) -> list[Stage]:
    """``features`` blocks grouped by output resolution (see the module docstring)."""
    groups: list[tuple[int, list[int]]] = []  # (stride so far, block indices)
    total = 1
    for i, block in enumerate(m.features):
        total *= _stride(block)
        if groups and groups[-1][0] == total:
            groups[-1][1].append(i)
        else:
            groups.append((total, [i]))
    while len(groups) > 1 and groups[1][0] <= 2:  # stride-1 blocks right after a stride-2 stem join it
        groups[0:2] = [(groups[1][0], groups[0][1] + groups[1][1])]
    out = []
    for j, (_, idx) in enumerate(groups):
        out.append(_stage(m, "stem" if j == 0 else f"stage{j}", [f"features.{i}" for i in idx],
                          _out_channels(m.features[idx[-1]])))
    out.append(_stage(m, "head", ["avgpool", "classifier"], m.classifier[-1].out_features))
    return out


def _regnet_stages(m: tvm.RegNet) -> list[Stage]:
    out = [_stage(m, "stem", ["stem"], _out_channels(m.stem))]
    for i, (name, block) in enumerate(m.trunk_output.named_children(), start=1):
        out.append(_stage(m, f"stage{i}", [f"trunk_output.{name}"], _out_channels(block)))
    out.append(_stage(m, "head", ["avgpool", "fc"], m.fc.out_features))
    return out


def _shufflenet_stages(m: tvm.ShuffleNetV2) -> list[Stage]:
    widths = m._stage_out_channels  # a block concatenates two branches: its convs see half of it
    return [
        _stage(m, "stem", ["conv1", "maxpool"], widths[0]),
        _stage(m, "stage1", ["stage2"], widths[1]),
        _stage(m, "stage2", ["stage3"], widths[2]),
        _stage(m, "stage3", ["stage4", "conv5"], widths[4]),
        _stage(m, "head", ["fc"], m.fc.out_features),
    ]


def _truncated_stages(m: Truncated) -> list[Stage]:
    out = [_stage(m, name, [f"body.{i}"], w) for i, (name, w) in enumerate(zip(m.stage_names, m.widths))]
    out.append(_stage(m, "head", ["pool", "fc"], m.fc.out_features))
    return out


def _cbr_stages(m: CBR) -> list[Stage]:
    out = [_stage(m, f"block{i + 1}", [f"block{i + 1}"], w) for i, w in enumerate(m.widths)]
    out.append(_stage(m, "head", ["pool", "fc"], m.fc.out_features))
    return out


class _Tensors(nn.Module):
    """Parameters and buffers registered directly on a module the timm view splits (a ViT's
    ``cls_token``), held by reference so that a stage's module holds them."""

    def __init__(self, items: list[tuple[str, object, bool]]) -> None:
        super().__init__()
        for key, t, persistent in items:
            safe = key.replace(".", "__")
            if isinstance(t, nn.Parameter):
                self.register_parameter(safe, t)
            else:
                self.register_buffer(safe, t, persistent=persistent)


def _is_timm(model: nn.Module) -> bool:
    return type(model).__module__.split(".")[0] == "timm" and hasattr(model, "feature_info")


def _timm_units(model: nn.Module, boundaries: list[str]) -> list[tuple[str, nn.Module | None, object]]:
    """The model as ordered units ``(qualified name, module, None)`` or ``(qualified name, None,
    (tensor, persistent))``: each child in registration order, split into its own children where
    it holds a boundary deeper down; the tensors registered on a split module come first."""
    out: list[tuple[str, nn.Module | None, object]] = []

    def walk(mod: nn.Module, prefix: str) -> None:
        for n, t in [*mod._parameters.items(), *mod._buffers.items()]:
            if t is not None:
                out.append((prefix + n, None, (t, n not in mod._non_persistent_buffers_set)))
        for cname, child in mod._modules.items():
            if child is None:
                continue
            path = prefix + cname
            if any(b.startswith(path + ".") for b in boundaries):
                walk(child, path + ".")
            else:
                out.append((path, child, None))

    walk(model, "")
    return out


def _has_params(units: list[tuple[str, nn.Module | None, object]]) -> bool:
    return any(
        isinstance(t[0], nn.Parameter) if mod is None else any(True for _ in mod.parameters())
        for _, mod, t in units
    )


def _units_stage(name: str, units: list[tuple[str, nn.Module | None, object]], out_channels: int) -> Stage:
    mods: list[nn.Module] = []
    loose = [(key, t[0], t[1]) for key, mod, t in units if mod is None]
    if loose:
        mods.append(_Tensors(loose))
    mods += [mod for _, mod, _ in units if mod is not None]
    module = mods[0] if len(mods) == 1 else nn.Sequential(*mods)
    output = next(mod for _, mod, _ in reversed(units) if mod is not None)
    return Stage(name, module, int(out_channels), tuple(key for key, _, _ in units), output)


def _head_like(unit: tuple[str, nn.Module | None, object]) -> bool:
    """A parameter-free pooling, flatten, dropout or identity module (an activation is not: it
    finishes the layer before it)."""
    _, mod, _ = unit
    return (mod is not None and not any(True for _ in mod.parameters())
            and re.search(r"Pool|Flatten|Drop|Identity", type(mod).__name__) is not None)


def _in_width(module: nn.Module) -> int | None:
    for attr in ("in_features", "in_channels"):
        if isinstance(getattr(module, attr, None), int):
            return int(getattr(module, attr))
    return None


def _timm_stages(m: nn.Module) -> list[Stage]:
    """A timm model's stages from its ``feature_info`` (see the module docstring)."""
    what = f"no stage view for timm's {type(m).__name__}"
    info = getattr(m.feature_info, "info", m.feature_info)  # a list of dicts (or timm's FeatureInfo)
    points = [(str(d["module"]), int(d["num_chs"])) for d in info]
    if not points:
        raise TypeError(f"{what}: its feature_info is empty")
    cfg = getattr(m, "pretrained_cfg", None) or {}
    names = cfg.get("classifier") if isinstance(cfg, dict) else getattr(cfg, "classifier", None)
    names = [names] if isinstance(names, str) else list(names or [])
    modules = dict(m.named_modules())
    classifiers = [n for n in names if n in modules]
    if not classifiers and hasattr(m, "get_classifier"):
        head = m.get_classifier()
        classifiers = [n for n, mod in modules.items() if mod is head and n][:1]
    units = _timm_units(m, [p for p, _ in points] + classifiers)
    index = {key: i for i, (key, mod, _) in enumerate(units) if mod is not None}
    missing = [p for p, _ in points if p not in index]
    if missing:
        raise TypeError(f"{what}: feature module(s) {missing} are not modules of the model")
    ends = [index[p] for p, _ in points]
    if any(b <= a for a, b in zip(ends, ends[1:])):
        raise TypeError(f"{what}: its feature modules are not in registration order ({[p for p, _ in points]})")
    last = ends[-1]
    head_start = min((index[c] for c in classifiers), default=last + 1)
    if head_start <= last:
        raise TypeError(f"{what}: its classifier {classifiers} comes before its last feature module {points[-1][0]}")
    while head_start - 1 > last and _head_like(units[head_start - 1]):
        head_start -= 1  # the pooling, flatten, dropout, identity just before the classifier
    head = units[head_start:]
    if not head or not _has_params(head):
        raise TypeError(f"{what}: nothing with parameters after its last feature module {points[-1][0]}")
    # one segment per feature point; what lies between the last one and the head joins the last
    segments, start = [], 0
    for (_, chs), end in zip(points, ends):
        segments.append((units[start:end + 1], chs))
        start = end + 1
    tail = units[start:head_start]
    if _has_params(tail):
        width = next((_in_width(modules[c]) for c in classifiers if _in_width(modules[c])), None)
        segments[-1] = (segments[-1][0] + tail, width or getattr(m, "num_features", segments[-1][1]))
    else:
        segments[-1] = (segments[-1][0] + tail, segments[-1][1])
    merged: list[tuple[list, int]] = []
    pending: list = []
    for seg, chs in segments:  # a stage without parameters joins the next one
        pending = pending + seg
        if _has_params(pending):
            merged.append((pending, chs))
            pending = []
    if pending:
        if not merged:
            raise TypeError(f"{what}: no parameters before its head")
        merged[-1] = (merged[-1][0] + pending, merged[-1][1])
    out = [_units_stage("stem" if j == 0 else f"stage{j}", seg, chs) for j, (seg, chs) in enumerate(merged)]
    classes = getattr(m, "num_classes", None) or next(
        (getattr(modules[c], "out_features", None) or getattr(modules[c], "out_channels", None) for c in classifiers), 0)
    out.append(_units_stage("head", head, int(classes)))
    return out


def stages(model: nn.Module) -> list[Stage]:
    """The model's stages in forward order, ending with ``head``.

    Raises ``TypeError`` for a model outside the zoo.
    """
    if isinstance(model, Truncated):
        return _truncated_stages(model)
    if _is_timm(model):
        return _timm_stages(model)
    if isinstance(model, CBR):
        return _cbr_stages(model)
    if isinstance(model, tvm.ResNet):
        return _resnet_stages(model)
    if isinstance(model, tvm.Inception3):
        return _inception_stages(model)
    if isinstance(model, tvm.DenseNet):
        return _densenet_stages(model)
    if isinstance(model, tvm.MobileNetV3 | tvm.EfficientNet | tvm.ConvNeXt):
        return _feature_stages(model)
    if isinstance(model, tvm.RegNet):
        return _regnet_stages(model)
    if isinstance(model, tvm.ShuffleNetV2):
        return _shufflenet_stages(model)
    raise TypeError(f"no stage view for {type(model).__name__}; build models with transfusion.models.create_model")


def stage_names(model: nn.Module) -> list[str]:
    """Names of the model's stages in order (``["stem", "layer1", …, "head"]``)."""
    return [s.name for s in stages(model)]


def stage_of_keys(model: nn.Module) -> dict[str, str]:
    """Map every state-dict key (parameters and buffers) to the name of its stage.

    Raises ``RuntimeError`` if a key belongs to no stage or to more than one.
    """
    view = stages(model)
    result: dict[str, str] = {}
    for key in model.state_dict():
        owners = [s.name for s in view if s.owns(key)]
        if len(owners) != 1:
            raise RuntimeError(f"state key {key!r} belongs to stages {owners}; the stage view must cover it once")
        result[key] = owners[0]
    return result
