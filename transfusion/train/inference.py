"""From uint8 images to scores: input normalisation, batching, prediction and the loss.

Shapes: images uint8 (N, C, H, W); logits (N, K) with K = ``task.num_outputs``; scores as
:func:`transfusion.stats.scores_from_logits` defines them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfusion.core.runtime import Runtime
from transfusion.data import ArraySplit, TaskSpec
from transfusion.stats import scores_from_logits


def normalize(images: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """uint8 (N, C, H, W) → float32, scaled to [0, 1] then standardised per channel.

    A 1-channel input uses the average of a 3-channel ``mean``/``std``.
    """
    c = images.shape[1]
    m = torch.tensor(per_channel(mean, c), device=images.device)
    s = torch.tensor(per_channel(std, c), device=images.device)
    x = images.float().div_(255.0)
    return x.sub_(m.view(1, c, 1, 1)).div_(s.view(1, c, 1, 1))


def per_channel(values: tuple[float, ...] | list[float], channels: int) -> list[float]:
    """``values`` for ``channels`` input channels: as given when the counts match, else their
    average repeated (a 3-channel normalisation applied to grayscale images)."""
    vals = [float(v) for v in values]
    return vals if len(vals) == channels else [sum(vals) / len(vals)] * channels


def loss_fn(task: TaskSpec, logits: Tensor, targets: Tensor, mask: Tensor | None) -> Tensor:
    """Cross-entropy for binary/multiclass (class indices); for multilabel, BCE averaged over
    the observed (unmasked) labels only."""
    if task.kind == "multilabel":
        loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        if mask is None:
            return loss.mean()
        m = mask.to(loss.dtype)
        return (loss * m).sum() / m.sum().clamp_min(1.0)
    return F.cross_entropy(logits, targets)


def logits_of(out: Any) -> Tensor:
    """The main logits of a model's output (Inception-v3 in training returns a named tuple)."""
    return out.logits if hasattr(out, "logits") else out


def aux_logits_of(out: Any) -> Tensor | None:
    """Inception-v3's auxiliary logits in training mode, else ``None``."""
    return getattr(out, "aux_logits", None)


def batch_tensors(split: ArraySplit, index: np.ndarray, device: torch.device) -> tuple[Tensor, Tensor, Tensor | None]:
    """Images (uint8), targets and mask for rows ``index`` (sorted for memmap locality)."""
    index = np.sort(index)
    x = torch.from_numpy(np.ascontiguousarray(split.images[index])).to(device)
    y = torch.from_numpy(np.ascontiguousarray(split.targets[index])).to(device)
    m = None if split.mask is None else torch.from_numpy(np.ascontiguousarray(split.mask[index])).to(device)
    return x, y, m


@torch.no_grad()
def predict(model: nn.Module, split: ArraySplit, task: TaskSpec, mean: tuple[float, ...], std: tuple[float, ...],
            *, runtime: Runtime | None = None, batch_size: int = 128) -> np.ndarray:
    """Scores for every image of ``split`` in order, the model in eval mode on ``runtime``
    (default: fp32 on the CPU; scored in channels-last layout, :meth:`Runtime.scoring`)."""
    runtime = runtime or Runtime()
    device = runtime.torch_device
    model.eval()
    outs = []
    with runtime.scoring(model) as channels_last:
        for start in range(0, len(split), batch_size):
            x = torch.from_numpy(np.array(split.images[start:start + batch_size])).to(device)
            x = runtime.input(normalize(x, mean, std))
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with runtime.autocast():
                outs.append(logits_of(model(x)).float().cpu())
    logits = torch.cat(outs) if outs else torch.empty(0, task.num_outputs)
    return scores_from_logits(task, logits)
