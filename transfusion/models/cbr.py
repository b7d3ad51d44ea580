"""The CBR family of Raghu et al. (2019): blocks of conv → BatchNorm → ReLU → maxpool.

Every conv is k×k, stride 1, "same" padding (k // 2), without bias; every block is followed by
``MaxPool2d(3, stride=2)`` (no padding) except, for CBR-LargeT, the last one. Then global
average pooling and a linear head. Default init: Kaiming-normal (fan_out, ReLU) convs, BatchNorm
weight 1 / bias 0, PyTorch's default for the linear head — the same scheme torchvision's ResNet
uses, so "random" means the same thing for every model in the zoo.
"""

from __future__ import annotations

from torch import Tensor, nn

from ._registry import register_builder
from .catalog import CBR_SPECS


class CBRBlock(nn.Sequential):
    """conv(k×k, stride 1, same padding, no bias) → BatchNorm → ReLU [→ MaxPool(3, 2)]."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, pool: bool) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel, stride=1, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        ]
        if pool:
            layers.append(nn.MaxPool2d(3, stride=2))
        super().__init__(*layers)
        self.out_channels = out_ch


class CBR(nn.Module):
    """A CBR network. Input (N, in_chans, H, W) → logits (N, num_classes).

    Attributes ``block1`` … ``blockB`` hold the conv blocks and ``fc`` the head.
    """

    def __init__(
        self,
        widths: tuple[int, ...],
        kernel: int,
        *,
        num_classes: int,
        in_chans: int = 3,
        pool_last: bool = True,
    ) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.kernel = kernel
        ch = in_chans
        for i, w in enumerate(widths):
            last = i == len(widths) - 1
            self.add_module(f"block{i + 1}", CBRBlock(ch, w, kernel, pool=pool_last or not last))
            ch = w
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(ch, num_classes)
        self.num_features = ch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def blocks(self) -> list[CBRBlock]:
        return [getattr(self, f"block{i + 1}") for i in range(len(self.widths))]

    def forward_features(self, x: Tensor) -> Tensor:
        for block in self.blocks():
            x = block(x)
        return self.pool(x).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.forward_features(x))


def cbr_param_count(widths: tuple[int, ...], kernel: int, num_classes: int, in_chans: int = 3) -> int:
    """Closed-form parameter count: Σ k²·c_in·c_out (convs) + Σ 2·c_out (BN) + head."""
    total, ch = 0, in_chans
    for w in widths:
        total += kernel * kernel * ch * w + 2 * w
        ch = w
    return total + ch * num_classes + num_classes


def _make_builder(name: str):
    spec = CBR_SPECS[name]

    def build(*, num_classes: int, in_chans: int = 3, **kwargs) -> CBR:
        return CBR(num_classes=num_classes, in_chans=in_chans, **{**spec, **kwargs})

    build.__name__ = name
    build.__doc__ = f"{name}: {spec['kernel']}×{spec['kernel']} convs, widths {spec['widths']}."
    return build


for _name in CBR_SPECS:
    register_builder(_name)(_make_builder(_name))
