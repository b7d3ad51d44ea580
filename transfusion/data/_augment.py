"""Light training augmentation on uint8 image tensors (CPU or GPU)."""

from __future__ import annotations

import torch


def augment(
    images: torch.Tensor,
    generator: torch.Generator,
    *,
    flip: bool = True,
    max_shift_frac: float = 0.0625,
) -> torch.Tensor:
    """Random horizontal flip and random translation of a uint8 batch.

    ``images`` is uint8 (B, C, H, W) on any device. Each image is flipped left-right with
    probability 1/2 (if ``flip``) and shifted by up to ``max_shift_frac`` of its height/width
    (at least 1 px) in each direction, the border pixels repeated to fill the gap. One gather
    does both. Random numbers come from ``generator`` (on its own device), so the result is
    deterministic given the generator state. Returns a new uint8 tensor of the same shape.
    """
    if images.ndim != 4:
        raise ValueError(f"augment expects (B, C, H, W), got shape {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        raise ValueError(f"augment expects uint8 images, got {images.dtype}")
    b, c, h, w = images.shape
    gdev = generator.device
    dev = images.device
    max_dy = max(1, int(round(max_shift_frac * h))) if max_shift_frac > 0 else 0
    max_dx = max(1, int(round(max_shift_frac * w))) if max_shift_frac > 0 else 0
    dy = torch.randint(-max_dy, max_dy + 1, (b,), generator=generator, device=gdev).to(dev)
    dx = torch.randint(-max_dx, max_dx + 1, (b,), generator=generator, device=gdev).to(dev)
    flips = torch.randint(0, 2, (b,), generator=generator, device=gdev).to(dev).bool()
    if not flip:
        flips = torch.zeros_like(flips)
    rows = (torch.arange(h, device=dev)[None, :] - dy[:, None]).clamp_(0, h - 1)  # (B, H)
    base_cols = torch.arange(w, device=dev)[None, :].expand(b, w)
    base_cols = torch.where(flips[:, None], (w - 1) - base_cols, base_cols)
    cols = (base_cols - dx[:, None]).clamp_(0, w - 1)  # (B, W)
    # one gather over the flattened pixels: index (B, 1, H*W) broadcast across channels
    flat = (rows[:, :, None] * w + cols[:, None, :]).reshape(b, 1, h * w)
    out = torch.gather(images.reshape(b, c, h * w), 2, flat.expand(b, c, h * w))
    return out.reshape(b, c, h, w)
