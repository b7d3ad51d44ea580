"""Counting a model's cost: parameters, MACs (fvcore) and FLOPs (PyTorch's counter), for one
input batch, in eval mode. Two independent counts: ``flops_torch`` ≈ 2 × ``macs`` for conv nets."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn


def unwrap(model: nn.Module) -> nn.Module:
    """The eager module behind a ``torch.compile`` wrapper (jit tracing and export need it)."""
    return getattr(model, "_orig_mod", model)


class _eval_mode:
    """Context manager: put a module in eval mode, restore its previous mode on exit."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.was_training = model.training

    def __enter__(self) -> nn.Module:
        self.model.eval()
        return self.model

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)


def _flop_count_analysis() -> type:
    """fvcore's ``FlopCountAnalysis``, imported lazily.

    Importing ``fvcore.nn`` also imports its focal-loss module, which calls ``torch.jit.script``
    at import time; torch >= 2.10 deprecates ``torch.jit.script`` with a ``FutureWarning``. That
    warning concerns an fvcore module we do not use, so it is silenced for the import only.
    (FLOP counting itself uses ``torch.jit`` tracing, which still works in torch 2.14.)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning
        )
        try:
            from fvcore.nn import FlopCountAnalysis
        except ImportError as exc:  # pragma: no cover - fvcore is a core dependency
            raise ImportError("MAC counting needs fvcore: pip install fvcore") from exc
    return FlopCountAnalysis


def count_macs(model: nn.Module, input: Tensor) -> tuple[int, dict[str, int]]:
    """Multiply-accumulates of ``model(input)`` counted by fvcore (one multiply-add = 1).

    ``input`` is a whole batch (N, C, H, W): the count is for that batch, so pass N = 1 for a
    per-image figure. The model is traced in eval mode (restored after); BatchNorm counts
    2 per element (affine), adaptive average pooling 1 per element. Returns
    ``(macs, unsupported_ops)``, the latter mapping each op fvcore could not count (e.g.
    ``"aten::max_pool2d"``) to its number of occurrences — those ops contribute 0.
    """
    macs, _, unsupported = _fvcore_counts(model, input)
    return macs, unsupported


def _fvcore_counts(model: nn.Module, input: Tensor) -> tuple[int, dict[str, int], dict[str, int]]:
    """fvcore's (total MACs, MACs per module name, uncounted ops) of ``model(input)``, traced in
    eval mode without gradients, its warnings off."""
    analysis_cls = _flop_count_analysis()
    module = unwrap(model)
    with _eval_mode(module), torch.no_grad():
        analysis = analysis_cls(module, input)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        total = int(analysis.total())
        per_module = {k: int(v) for k, v in analysis.by_module().items()}
        unsupported = {str(op): int(n) for op, n in sorted(analysis.unsupported_ops().items())}
    return total, per_module, unsupported


def count_flops_torch(model: nn.Module, input: Tensor) -> int:
    """FLOPs of ``model(input)`` by ``torch.utils.flop_counter.FlopCounterMode`` (2 per
    multiply-add, conv and matmul-like ops only), in eval mode, for the whole batch ``input``."""
    from torch.utils.flop_counter import FlopCounterMode

    module = unwrap(model)
    counter = FlopCounterMode(display=False)
    with _eval_mode(module), torch.no_grad(), counter:
        module(input)
    return int(counter.get_total_flops())


def params(model: nn.Module) -> tuple[int, int]:
    """``(total, trainable)`` parameter counts; a tensor shared by several modules counts once."""
    total = trainable = 0
    for p in unwrap(model).parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return total, trainable


def stage_costs(model: nn.Module, input: Tensor) -> list[dict[str, int | str]]:
    """Parameters and MACs of each stage of the model's stage view (one row per stage, in
    forward order: ``stage``, ``params``, ``macs``), from fvcore's per-module counts for
    ``input`` (pass N = 1 for per-image MACs). A last row ``(outside stages)`` holds the MACs of
    functional ops that belong to no stage module (e.g. a pooling done in ``forward``), so the
    rows sum to :func:`count_macs`'s total and to :func:`params`' count."""
    from transfusion.models import stages

    total, per_module, _ = _fvcore_counts(model, input)
    module = unwrap(model)
    rows: list[dict[str, int | str]] = []
    for s in stages(module):
        macs = sum(per_module.get(p, 0) for p in s.prefixes)
        rows.append({"stage": s.name, "params": sum(p.numel() for p in s.module.parameters()), "macs": macs})
    rows.append({"stage": "(outside stages)", "params": 0, "macs": total - sum(int(r["macs"]) for r in rows)})
    return rows
