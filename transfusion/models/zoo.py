"""torchvision models (built with torchvision's own builders, never reimplemented) and the
slim ResNet50 of Raghu et al. (2019)."""

from __future__ import annotations

import torchvision.models as tvm
from torch import nn

from ._registry import register_builder


def replace_first_conv(conv: nn.Conv2d, in_chans: int) -> nn.Conv2d:
    """A conv like ``conv`` taking ``in_chans`` channels, freshly initialised (Kaiming fan_out)."""
    if in_chans == conv.in_channels:
        return conv
    new = nn.Conv2d(
        in_chans,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        bias=conv.bias is not None,
    )
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new


def _resnet(builder, num_classes: int, in_chans: int, **kwargs) -> tvm.ResNet:
    model = builder(weights=None, num_classes=num_classes, **kwargs)
    model.conv1 = replace_first_conv(model.conv1, in_chans)
    return model


@register_builder("resnet50")
def resnet50(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """torchvision ResNet50 (23.5M parameters with a 2-class head)."""
    return _resnet(tvm.resnet50, num_classes, in_chans, **kwargs)


@register_builder("resnet18")
def resnet18(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """torchvision ResNet18, the MedMNIST reference backbone."""
    return _resnet(tvm.resnet18, num_classes, in_chans, **kwargs)


@register_builder("slim_resnet50")
def slim_resnet50(*, num_classes: int, in_chans: int = 3, width_divisor: int = 2, **kwargs) -> nn.Module:
    """ResNet50 whose stem, layer1 and layer2 are standard and whose layer3 and layer4 have
    ``planes // width_divisor`` channels (the paper's "slim" model; default divisor 2)."""
    width_divisor = int(width_divisor)
    if width_divisor < 1 or 256 % width_divisor:
        raise ValueError(f"width_divisor must divide 256, got {width_divisor}")
    model = _resnet(tvm.resnet50, num_classes, in_chans, **kwargs)
    block = tvm.resnet.Bottleneck
    model.inplanes = 128 * block.expansion  # output of layer2
    model.layer3 = model._make_layer(block, 256 // width_divisor, 6, stride=2)
    model.layer4 = model._make_layer(block, 512 // width_divisor, 3, stride=2)
    model.fc = nn.Linear(512 // width_divisor * block.expansion, num_classes)
    for m in (*model.layer3.modules(), *model.layer4.modules()):
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    model.width_divisor = width_divisor
    return model


@register_builder("inception_v3")
def inception_v3(*, num_classes: int, in_chans: int = 3, aux_logits: bool = False, **kwargs) -> nn.Module:
    """torchvision Inception-v3, without the auxiliary classifier unless ``aux_logits=True``.

    In training mode with ``aux_logits=True`` torchvision returns ``InceptionOutputs``; the
    trainer uses ``.logits``. Inputs must be at least 75 px.
    """
    model = tvm.inception_v3(
        weights=None, num_classes=num_classes, aux_logits=aux_logits, init_weights=True, **kwargs
    )
    model.Conv2d_1a_3x3.conv = replace_first_conv(model.Conv2d_1a_3x3.conv, in_chans)
    return model


@register_builder("densenet121")
def densenet121(*, num_classes: int, in_chans: int = 3, **kwargs) -> nn.Module:
    """torchvision DenseNet121, the usual chest X-ray backbone (CheXNet)."""
    model = tvm.densenet121(weights=None, num_classes=num_classes, **kwargs)
    model.features.conv0 = replace_first_conv(model.features.conv0, in_chans)
    return model
