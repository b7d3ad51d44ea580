"""Networks a training scheme makes out of a zoo model: the first K stages with a new head
(:class:`Truncated`, scheme ``truncate:K``) and a k-nearest-neighbour head over the pooled
features of the training images (:class:`KNNHead`, scheme ``knn``). Both are ordinary modules:
their checkpoints, ONNX exports, cost profiles and stage views work as for any model."""

from __future__ import annotations

import torch
from torch import nn

#: scores of exactly 0 or 1 (every neighbour agrees) become logits of ± log((1 − ε) / ε)
_EPS = 1e-6


class Truncated(nn.Module):
    """Stages 1..K of a model's stage view (their modules, with their weights), then global
    average pooling and a new linear head: ``(N, C, H, W) → (N, num_outputs)``.

    ``stage_names`` are the kept stages' names, ``widths`` their output channels; the stage view
    of a Truncated model is those stages (``body.0`` … ``body.{K-1}``) and ``head``."""

    def __init__(self, body: list[nn.Module], stage_names: list[str], widths: list[int], num_outputs: int,
                 arch: str) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(int(widths[-1]), int(num_outputs))
        self.stage_names = list(stage_names)
        self.widths = [int(w) for w in widths]
        self.transfusion_arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.body(x)), 1))


def truncate(model: nn.Module, k: int | None, num_outputs: int) -> Truncated:
    """The first ``k`` body stages of ``model`` (a zoo model; its stage modules are reused,
    weights and all; ``None`` = every body stage) under a new pooled linear head (PyTorch's
    default initialisation: seed torch before calling for a reproducible head). The features the
    head sees are the last kept stage's output, average-pooled."""
    from .stage_view import stages

    view = stages(model)[:-1]
    k = len(view) if k is None else int(k)
    if not 1 <= k <= len(view):
        raise ValueError(f"cannot keep stages 1..{k} of a model with {len(view)} body stages")
    kept = view[:k]
    out = Truncated([s.module for s in kept], [s.name for s in kept], [s.out_channels for s in kept], num_outputs,
                    getattr(model, "transfusion_name", type(model).__name__))
    out.transfusion_name = getattr(model, "transfusion_name", None)
    out.transfusion_kwargs = getattr(model, "transfusion_kwargs", {})
    return out


class KNNHead(nn.Module):
    """k nearest neighbours (cosine similarity) among stored training features, in place of a
    model's classifier: ``(N, D) features → (N, outputs)`` logits whose task link gives each
    output's neighbour-vote fraction.

    ``bank`` (M, D) holds the L2-normalised training features, ``votes`` (M, L) their labels
    (one-hot for binary / multiclass, 0/1 per label for multilabel) and ``known`` (M, L) which
    votes count (uncertain multilabel entries do not). ``kind`` is the task kind: binary and
    multiclass logits are the logarithms of the class fractions (softmax gives them back),
    multilabel logits their log-odds (sigmoid gives them back) — a monotone map, so AUC is that
    of the fractions themselves."""

    def __init__(self, bank: torch.Tensor, votes: torch.Tensor, known: torch.Tensor, k: int, kind: str) -> None:
        super().__init__()
        self.register_buffer("bank", nn.functional.normalize(bank.float(), dim=1))
        self.register_buffer("votes", votes.float())
        self.register_buffer("known", known.float())
        self.k = min(int(k), int(bank.shape[0]))
        self.kind = kind
        self.out_features = int(votes.shape[1])
        self.in_features = int(bank.shape[1])

    def fractions(self, features: torch.Tensor) -> torch.Tensor:
        """(N, L) vote fractions of each feature row's ``k`` most similar training rows."""
        sim = nn.functional.normalize(torch.flatten(features, 1).float(), dim=1) @ self.bank.T
        idx = sim.topk(self.k, dim=1).indices  # (N, k)
        votes, known = self.votes[idx], self.known[idx]  # (N, k, L)
        return (votes * known).sum(1) / known.sum(1).clamp_min(1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        p = self.fractions(features).clamp(_EPS, 1 - _EPS)
        if self.kind == "multilabel":
            return torch.log(p) - torch.log1p(-p)
        return torch.log(p)
