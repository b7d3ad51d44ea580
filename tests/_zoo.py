"""Checks every model of the zoo must pass, shared by the model, regime and timm tests: the stage
view covers every state tensor once, stage outputs fire in forward order with the declared
channels, and transfusion:K copies exactly the tensors of stages 1..K; plus the cached models and
'pretrained' sources they use."""

from __future__ import annotations

import copy
import functools

import torch

from transfusion.models import create_model, stage_of_keys, stages
from transfusion.transfer import apply_init

#: the zoo's largest builds: their per-model checks run with the slow tests
LARGEST = frozenset({"convnext_tiny", "inception_v3", "densenet121", "resnet50", "slim_resnet50"})


def zoo_params(names: list[str]) -> list:
    """``names`` as pytest parameters, the :data:`LARGEST` marked slow (the fast subset keeps the
    rest of the zoo)."""
    import pytest

    return [pytest.param(n, marks=pytest.mark.slow) if n in LARGEST else n for n in names]


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@functools.cache
def _built(name: str, num_classes: int, in_chans: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(name, num_classes=num_classes, in_chans=in_chans)


def fresh(name: str, num_classes: int = 2, in_chans: int = 3, seed: int = 0) -> torch.nn.Module:
    """A freshly built model (deep copy of a cached build: building Inception is slow)."""
    model = copy.deepcopy(_built(name, num_classes, in_chans, seed))
    model.transfusion_name = name
    return model


def source(name: str, num_classes: int = 10, in_chans: int = 3, seed: int = 123) -> dict[str, torch.Tensor]:
    """A 'pretrained' state dict: a differently seeded model with perturbed BN statistics."""
    sd = copy.deepcopy(_built(name, num_classes, in_chans, seed)).state_dict()
    g = torch.Generator().manual_seed(seed)
    for v in sd.values():
        if v.is_floating_point():
            v.add_(0.3 * torch.randn(v.shape, generator=g) + 0.05)
    return {k: v.clone() for k, v in sd.items()}


def check_stage_view_covers_every_tensor_once(model: torch.nn.Module, num_classes: int) -> None:
    """Every state key (parameters and buffers) in exactly one stage; every stage owns a tensor and
    its module holds exactly its parameters; the view ends with a head of ``num_classes``."""
    view = stages(model)
    assert view[-1].name == "head"
    assert len({s.name for s in view}) == len(view)
    owner = stage_of_keys(model)  # raises if a key is in zero or two stages
    assert set(owner) == set(model.state_dict())
    for s in view:
        keys = {k for k, st in owner.items() if st == s.name}
        assert keys, s.name
        assert sum(p.numel() for p in s.module.parameters()) == sum(
            v.numel() for k, v in model.named_parameters() if k in keys
        )
    assert view[-1].out_channels == num_classes


def check_stage_outputs_in_forward_order(model: torch.nn.Module, res: int, in_chans: int = 3) -> None:
    """Hooks on the stages' outputs fire in stage order, each with the stage's ``out_channels``."""
    model = model.eval()
    view = stages(model)
    seen: list[tuple[str, int]] = []
    handles = [
        s.output.register_forward_hook(lambda m, i, o, s=s: seen.append((s.name, o.shape[1])))
        for s in view
    ]
    try:
        with torch.no_grad():
            model(torch.randn(1, in_chans, res, res))
    finally:
        for h in handles:
            h.remove()
    assert seen == [(s.name, s.out_channels) for s in view]


def check_transfusion_exact(name: str) -> None:
    """For every K: transfusion:K copies exactly the tensors of stages 1..K from a source and keeps
    every other tensor at the default init."""
    src = source(name, num_classes=2)
    model = fresh(name)
    initial = {kk: v.clone() for kk, v in model.state_dict().items()}
    for k in range(len(stages(model))):
        model.load_state_dict(initial)  # back to the default init
        report = apply_init(model, f"transfusion:{k}", source=src)
        view = stages(model)
        copied_stages = {s.name for s in view[:k]}
        for key, v in model.state_dict().items():
            owner = next(s.name for s in view if s.owns(key))
            if owner in copied_stages:
                assert torch.equal(v, src[key]) and report.actions[key] == "copied", (k, key)
            else:
                assert torch.equal(v, initial[key]) and report.actions[key] == "kept", (k, key)


def check_param_counts(name: str, expected: int) -> None:
    """``name`` with 1000 classes has exactly ``expected`` parameters, and a 1-channel 2-class
    build differs exactly by its first conv's input channels and its head."""
    from transfusion.models import model_config

    model = create_model(name, num_classes=1000)
    assert n_params(model) == expected
    small = create_model(name, num_classes=2, in_chans=1)
    conv = model.get_submodule(model_config(name).first_conv)
    head = model.get_submodule(model_config(name).classifier)
    fewer = conv.weight.numel() * 2 // 3 + (head.in_features + 1) * 998
    assert n_params(small) == expected - fewer


def train_a_little(model: torch.nn.Module, res: int, steps: int, **sgd) -> None:
    """``steps`` SGD steps (lr 0.1, ``sgd`` options) of the trainable parameters on random inputs,
    in :func:`~transfusion.transfer.train_mode` (frozen stages' BatchNorm held in eval)."""
    from transfusion.transfer import train_mode

    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, **sgd)
    for _ in range(steps):
        train_mode(model)
        loss = model(torch.randn(4, 3, res, res)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
