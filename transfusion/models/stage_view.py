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
- ShuffleNetV2: ``stem`` (conv1, maxpool), ``stage1`` … ``stage3`` (stage2–4, the last with
  conv5), ``head`` (fc; the global pooling is functional).
"""

from __future__ import annotations

from dataclasses import dataclass

import torchvision.models as tvm
from torch import nn

from .cbr import CBR


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


def _cbr_stages(m: CBR) -> list[Stage]:
    out = [_stage(m, f"block{i + 1}", [f"block{i + 1}"], w) for i, w in enumerate(m.widths)]
    out.append(_stage(m, "head", ["pool", "fc"], m.fc.out_features))
    return out


def stages(model: nn.Module) -> list[Stage]:
    """The model's stages in forward order, ending with ``head``.

    Raises ``TypeError`` for a model outside the zoo.
    """
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
