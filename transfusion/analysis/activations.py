"""Capturing per-stage activations over a fixed probe set.

:func:`capture` runs a model over images in batches with forward hooks on the stage view
(:func:`transfusion.models.stages`; each hook sits on ``Stage.output``) and reduces every
batch as it arrives, so memory is bounded by the reduced size, not by N × C × H × W:

- ``"mean"`` (:class:`GlobalAvgPool`): global average pool → (N, C). The default; what a
  per-stage CCA/CKA or a kNN probe on pooled features needs.
- :class:`SpatialSample` ``(per_image, seed)``: ``per_image`` spatial positions of each image,
  drawn without replacement by a generator seeded with (seed, image index) → (N·per_image, C)
  datapoints, image-major. The positions depend only on the seed, the image's index in the
  probe set and the map size, so two models with the same stage geometry get the same
  (image, position) datapoints whatever the batch size.
- :class:`AdaptivePool` ``(size)``: adaptive average pool to size × size → (N, C, s, s), e.g.
  to compare stages of different resolution (then :func:`~transfusion.analysis.similarity.
  matched_datapoints`).
- ``"full"`` (:class:`Full`): the whole maps (N, C, H, W) — memory grows with everything.

Outputs that are already (N, C) (the head) pass through every reducer unchanged.
Everything is deterministic: eval mode (BatchNorm running statistics, no dropout), no
gradients, a fixed batch order; hooks are always removed and the model's mode and device are
restored afterwards, also when the forward pass fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfusion.core.runtime import Runtime
from transfusion.data import ArraySplit
from transfusion.models import Stage
from transfusion.models import stages as stage_view
from transfusion.train.inference import normalize

__all__ = [
    "AdaptivePool",
    "Full",
    "GlobalAvgPool",
    "Reducer",
    "SpatialSample",
    "capture",
    "normalizer",
    "probe_indices",
    "probe_set",
]


@dataclass(frozen=True)
class GlobalAvgPool:
    """(B, C, H, W) → (B, C): the mean over spatial positions."""

    def __call__(self, act: Tensor, first_index: int) -> Tensor:
        return act.mean((2, 3)) if act.ndim == 4 else act


@dataclass(frozen=True)
class Full:
    """Keep the whole activation maps (B, C, H, W)."""

    def __call__(self, act: Tensor, first_index: int) -> Tensor:
        return act


@dataclass(frozen=True)
class AdaptivePool:
    """(B, C, H, W) → (B, C, size, size) by adaptive average pooling (no upsampling)."""

    size: int

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"AdaptivePool size must be ≥ 1, got {self.size}")

    def __call__(self, act: Tensor, first_index: int) -> Tensor:
        if act.ndim != 4:
            return act
        if self.size > min(act.shape[2], act.shape[3]):
            raise ValueError(f"AdaptivePool({self.size}) cannot pool a {tuple(act.shape)} activation up")
        return F.adaptive_avg_pool2d(act, self.size)


@dataclass(frozen=True)
class SpatialSample:
    """(B, C, H, W) → (B·per_image, C): ``per_image`` positions per image, seeded per image."""

    per_image: int
    seed: int = 0

    def __post_init__(self) -> None:
        if self.per_image < 1:
            raise ValueError(f"SpatialSample per_image must be ≥ 1, got {self.per_image}")

    def __call__(self, act: Tensor, first_index: int) -> Tensor:
        if act.ndim != 4:
            return act
        b, c, h, w = act.shape
        if self.per_image > h * w:
            raise ValueError(
                f"SpatialSample({self.per_image}) draws {self.per_image} positions per image but the "
                f"stage output {tuple(act.shape)} has only {h * w}"
            )
        gen = torch.Generator()
        pos = []
        for i in range(first_index, first_index + b):
            # one stream per image index: independent of batch size and of the other images
            gen.manual_seed(self.seed * 1_000_003 + i)
            pos.append(torch.randperm(h * w, generator=gen)[: self.per_image])
        idx = torch.stack(pos).to(act.device)  # (B, k)
        flat = act.reshape(b, c, h * w)
        picked = torch.gather(flat, 2, idx[:, None, :].expand(b, c, self.per_image))  # (B, C, k)
        return picked.permute(0, 2, 1).reshape(b * self.per_image, c)


#: A reducer maps one batch's stage output (B, …) and the probe index of its first image to
#: the reduced batch; results are concatenated along dimension 0.
Reducer = Callable[[Tensor, int], Tensor]

_NAMED: dict[str, Reducer] = {"mean": GlobalAvgPool(), "full": Full()}


class _StopForward(Exception):
    """Raised by the last needed hook to skip the rest of the forward pass."""


def _batches(
    images: Tensor | np.ndarray | Callable[[], Iterable[Tensor]], batch_size: int
) -> Iterable[Tensor | np.ndarray]:
    if callable(images):
        return images()
    if isinstance(images, (Tensor, np.ndarray)):
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        return (images[i : i + batch_size] for i in range(0, len(images), batch_size))
    raise TypeError(f"images must be a tensor, an array or a callable yielding batches, got {type(images).__name__}")


def _to_input(batch: Tensor | np.ndarray, device: torch.device, transform: Callable[[Tensor], Tensor] | None) -> Tensor:
    x = torch.from_numpy(np.asarray(batch)) if isinstance(batch, np.ndarray) else batch
    if not isinstance(x, Tensor) or x.ndim != 4:
        raise ValueError(f"each batch must be (B, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")
    x = x.to(device)
    if transform is not None:
        x = transform(x)
    if not x.is_floating_point():
        raise ValueError(
            f"images are {x.dtype}; pass float tensors normalised as for training, or "
            "transform= (e.g. the trainer's normalize) to convert each batch"
        )
    return x


def _reducer(reducer: str | Reducer) -> Reducer:
    """A reducer object from a name (``"mean"``, ``"full"``) or as given."""
    if not isinstance(reducer, str):
        return reducer
    try:
        return _NAMED[reducer]
    except KeyError:
        raise ValueError(f"unknown reducer {reducer!r}; use one of {sorted(_NAMED)} or a reducer object") from None


def _chosen_stages(model: nn.Module, stages: Sequence[str] | None) -> tuple[list[Stage], bool]:
    """The stage-view entries named in ``stages`` (default: all), in forward order, and whether
    the forward pass may stop after the last of them (it is not the model's last stage)."""
    view = stage_view(model)
    names = [s.name for s in view]
    wanted = names if stages is None else list(stages)
    unknown = [s for s in wanted if s not in names]
    if unknown or not wanted:
        raise ValueError(f"unknown stages {unknown or wanted} for {type(model).__name__}; stages: {names}")
    chosen = [s for s in view if s.name in wanted]
    return chosen, chosen[-1].name != names[-1]


class _Recorder:
    """Forward hooks reducing each chosen stage's output as every batch goes through."""

    def __init__(self, chosen: list[Stage], reducer: Reducer, stop_after_last: bool) -> None:
        self.reducer = reducer
        self.out: dict[str, list[Tensor]] = {s.name: [] for s in chosen}
        self.seen = dict.fromkeys(self.out, 0)
        self.first = 0  # probe index of the current batch's first image
        self.stop_at = chosen[-1].name if stop_after_last else None

    def hook(self, name: str) -> Callable[[nn.Module, tuple, object], None]:
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            act = output[0] if isinstance(output, (tuple, list)) else output
            if not isinstance(act, Tensor):
                raise TypeError(f"stage {name!r} output is {type(act).__name__}, not a tensor")
            self.seen[name] += 1
            if self.seen[name] > 1:
                raise RuntimeError(f"stage {name!r}'s output module ran twice in one forward pass")
            red = self.reducer(act.detach(), self.first)
            if red.untyped_storage().data_ptr() == act.untyped_storage().data_ptr():
                red = red.clone()  # a view of the live output could be changed in place later on
            self.out[name].append(red.float().cpu())
            if name == self.stop_at:
                raise _StopForward  # nothing later is needed: skip the rest of the network
        return hook

    def forward(self, model: nn.Module, x: Tensor) -> None:
        """Run one batch through ``model``, checking every chosen stage produced its output once."""
        self.seen = dict.fromkeys(self.out, 0)
        with contextlib.suppress(_StopForward):  # raised once the last stage is in
            model(x)
        missing = [n for n, c in self.seen.items() if c != 1]
        if missing:
            raise RuntimeError(f"stages {missing} produced no output for a batch {tuple(x.shape)}")
        self.first += len(x)


def capture(
    model: nn.Module,
    images: Tensor | np.ndarray | Callable[[], Iterable[Tensor]],
    *,
    stages: Sequence[str] | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    reducer: str | Reducer = "mean",
    transform: Callable[[Tensor], Tensor] | None = None,
) -> dict[str, Tensor]:
    """Activations of ``model``'s stages on ``images``, reduced batch by batch.

    ``images``: float (N, C, H, W) tensor, an array/tensor with ``transform`` turning each
    (B, C, H, W) batch into the model's float input, or a callable returning an iterable of
    such batches (then ``batch_size`` is ignored). ``stages``: names from the stage view
    (default: all, head included), returned in forward order. ``reducer``: ``"mean"``,
    ``"full"`` or a reducer object (see the module docstring). The model runs on ``device``
    in eval mode without gradients; its mode and device are restored afterwards. Returns
    ``{stage: float32 CPU tensor}`` — (N, C) for ``"mean"``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    reduce = _reducer(reducer)
    chosen, stop_early = _chosen_stages(model, stages)
    rec = _Recorder(chosen, reduce, stop_early)
    dev = torch.device(device)
    params = list(model.parameters()) + list(model.buffers())
    home = params[0].device if params else dev
    was_training = model.training
    handles = [s.output.register_forward_hook(rec.hook(s.name)) for s in chosen]
    try:
        model.to(dev).eval()
        with torch.no_grad():
            for batch in _batches(images, batch_size):
                rec.forward(model, _to_input(batch, dev, transform))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        model.to(home)
    if rec.first == 0:
        raise ValueError("no images: the probe set is empty")
    return {name: torch.cat(chunks) for name, chunks in rec.out.items()}


def normalizer(mean: Iterable[float], std: Iterable[float], runtime: Runtime | None = None) -> Callable[[Tensor], Tensor]:
    """``transform=`` for :func:`capture`: a uint8 batch (B, C, H, W) → the model's float32 input,
    normalised as in training (:func:`transfusion.train.inference.normalize`: [0, 1], then per
    channel ``mean``/``std``), on ``runtime``'s device and in its memory layout (channels-last
    when its policy says so; without a runtime the batch stays where and as it is)."""
    m, s = tuple(mean), tuple(std)
    if runtime is None:
        return lambda x: normalize(x, m, s)
    return lambda x: runtime.input(normalize(x, m, s))


def probe_indices(n_total: int, size: int | None, *, seed: int = 0) -> np.ndarray:
    """``size`` distinct indices of range(n_total), drawn with ``seed``, sorted ascending."""
    if size is None or size == n_total:
        return np.arange(n_total)
    if not 1 <= size <= n_total:
        raise ValueError(f"probe size {size} must lie in 1..{n_total} (the split's size)")
    return np.sort(np.random.default_rng(seed).choice(n_total, size=size, replace=False))


def probe_set(split: ArraySplit, size: int | None = 1000, *, seed: int = 0) -> ArraySplit:
    """A fixed probe subset of ``split``: the same ``size`` images for every model and checkpoint.

    The rows are chosen by :func:`probe_indices` from the split's length and ``seed`` alone and
    kept in split order; ``size=None`` takes the whole split. Images stay uint8 (N, C, H, W):
    pass ``transform=normalizer(mean, std)`` to :func:`capture` to normalise each batch.
    """
    return split.subset(probe_indices(len(split), size, seed=seed))
