"""Today's efficient ImageNet architectures, built with torchvision's own builders (never
reimplemented): MobileNetV3 small / large, EfficientNet-B0, RegNetY-400MF, ShuffleNetV2 1.0× and
ConvNeXt-Tiny. Each takes ``num_classes`` (its last linear layer) and ``in_chans`` (its first
convolution, freshly initialised when not 3)."""

from __future__ import annotations

import torchvision.models as tvm
from torch import nn

from ._registry import register_builder
from .zoo import replace_first_conv


def _build(builder, path: str, num_classes: int, in_chans: int, **kwargs) -> nn.Module:
    """torchvision's ``builder`` without weights, its first conv at ``path`` made for ``in_chans``."""
    model = builder(weights=None, num_classes=num_classes, **kwargs)
    parent, _, leaf = path.rpartition(".")
    holder = model.get_submodule(parent)
    conv = holder[int(leaf)] if leaf.isdigit() else getattr(holder, leaf)
    new = replace_first_conv(conv, in_chans)
    if leaf.isdigit():
        holder[int(leaf)] = new
    else:
        setattr(holder, leaf, new)
    return model


@register_builder("mobilenet_v3_small")
def mobilenet_v3_small(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """torchvision MobileNetV3-Small (2.54M parameters with 1000 classes)."""
    return _build(tvm.mobilenet_v3_small, "features.0.0", num_classes, in_chans, **kwargs)


@register_builder("mobilenet_v3_large")
def mobilenet_v3_large(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """torchvision MobileNetV3-Large (5.48M parameters with 1000 classes)."""
    return _build(tvm.mobilenet_v3_large, "features.0.0", num_classes, in_chans, **kwargs)


@register_builder("efficientnet_b0")
def efficientnet_b0(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """torchvision EfficientNet-B0 (5.29M parameters with 1000 classes)."""
    return _build(tvm.efficientnet_b0, "features.0.0", num_classes, in_chans, **kwargs)


@register_builder("regnet_y_400mf")
def regnet_y_400mf(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """torchvision RegNetY-400MF (4.34M parameters with 1000 classes)."""
    return _build(tvm.regnet_y_400mf, "stem.0", num_classes, in_chans, **kwargs)


@register_builder("shufflenet_v2_x1_0")
def shufflenet_v2_x1_0(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """torchvision ShuffleNetV2 1.0× (2.28M parameters with 1000 classes)."""
    return _build(tvm.shufflenet_v2_x1_0, "conv1.0", num_classes, in_chans, **kwargs)


@register_builder("convnext_tiny")
def convnext_tiny(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """torchvision ConvNeXt-Tiny (28.6M parameters with 1000 classes); inputs of 32 px or more."""
    return _build(tvm.convnext_tiny, "features.0.0", num_classes, in_chans, **kwargs)
