"""Model zoo: exact parameter counts, forward/backward for every model, the stage view."""

from __future__ import annotations

import pytest
import torch
from _zoo import (
    check_param_counts,
    check_stage_outputs_in_forward_order,
    check_stage_view_covers_every_tensor_once,
    n_params,
    zoo_params,
)

from transfusion.models import (
    CBR_SPECS,
    cbr_param_count,
    check_input_size,
    create_model,
    list_models,
    min_input_px,
    model_config,
    stages,
)

ALL = list_models()


def test_registry_lists_the_zoo():
    assert set(ALL) == {
        "cbr_large_t", "cbr_large_w", "cbr_small", "cbr_tiny",
        "resnet18", "resnet50", "slim_resnet50", "inception_v3", "densenet121",
        "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf", "shufflenet_v2_x1_0",
        "convnext_tiny",
    }


# torchvision's published parameter counts (1000 classes, 3 channels)
EFFICIENT = {"mobilenet_v3_small": 2_542_856, "mobilenet_v3_large": 5_483_032, "efficientnet_b0": 5_288_548,
             "regnet_y_400mf": 4_344_144, "shufflenet_v2_x1_0": 2_278_604, "convnext_tiny": 28_589_128}


@pytest.mark.parametrize("name", sorted(EFFICIENT))
def test_efficient_models_exact_param_counts(name):
    check_param_counts(name, EFFICIENT[name])


def test_resnet50_exact_param_count():
    assert n_params(create_model("resnet50", num_classes=1000)) == 25_557_032


def test_inception_v3_exact_param_count_without_aux():
    assert n_params(create_model("inception_v3", num_classes=1000)) == 23_834_568


def test_inception_v3_aux_logits_on_request():
    model = create_model("inception_v3", num_classes=1000, aux_logits=True)
    assert model.AuxLogits is not None
    assert n_params(model) > 23_834_568


@pytest.mark.parametrize("name", sorted(CBR_SPECS))
@pytest.mark.parametrize("num_classes,in_chans", [(2, 3), (7, 1), (1000, 3)])
def test_cbr_param_count_closed_form(name, num_classes, in_chans):
    spec = CBR_SPECS[name]
    model = create_model(name, num_classes=num_classes, in_chans=in_chans)
    assert n_params(model) == cbr_param_count(spec["widths"], spec["kernel"], num_classes, in_chans)


def test_cbr_counts_match_design_table():
    # DESIGN.md: bias-free convs, 2-class head → 8.54M / 8.44M / 2.11M / 4.31M
    got = {n: n_params(create_model(n, num_classes=2)) for n in CBR_SPECS}
    assert got == {
        "cbr_large_t": 8_537_634,
        "cbr_large_w": 8_441_922,
        "cbr_small": 2_113_570,
        "cbr_tiny": 4_308_546,
    }


def test_cbr_structure():
    model = create_model("cbr_large_t", num_classes=2)
    blocks = model.blocks()
    assert [b[0].kernel_size for b in blocks] == [(7, 7)] * 5
    assert all(b[0].bias is None and b[0].stride == (1, 1) and b[0].padding == (3, 3) for b in blocks)
    # CBR-LargeT has no maxpool after its last block; the 4-block models pool after every block
    assert [isinstance(b[-1], torch.nn.MaxPool2d) for b in blocks] == [True] * 4 + [False]
    small = create_model("cbr_small", num_classes=2)
    assert all(isinstance(b[-1], torch.nn.MaxPool2d) for b in small.blocks())


def test_slim_resnet50_widths():
    model = create_model("slim_resnet50", num_classes=2)
    full = create_model("resnet50", num_classes=2)
    for name in ("conv1", "layer1", "layer2"):
        a = {k: v.shape for k, v in model.get_submodule(name).state_dict().items()}
        b = {k: v.shape for k, v in full.get_submodule(name).state_dict().items()}
        assert a == b
    assert model.layer3[0].conv1.out_channels == 128
    assert model.layer4[-1].conv3.out_channels == 1024
    assert model.fc.in_features == 1024
    quarter = create_model("slim_resnet50", num_classes=2, width_divisor=4)
    assert quarter.fc.in_features == 512
    with pytest.raises(ValueError, match="width_divisor"):
        create_model("slim_resnet50", num_classes=2, width_divisor=3)


def _res(name: str) -> int:
    return max(64, min_input_px(name))


@pytest.mark.parametrize("name", zoo_params(ALL))
def test_forward_backward_every_parameter_gets_gradient(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_chans=1)
    model.train()
    x = torch.randn(2, 1, _res(name), _res(name))
    out = model(x)
    assert out.shape == (2, 7)
    out.square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"


@pytest.mark.parametrize("name", zoo_params(ALL))
def test_stage_view_covers_every_tensor_once(name, build_model):
    check_stage_view_covers_every_tensor_once(build_model(name, num_classes=3), 3)


@pytest.mark.parametrize("name", zoo_params(ALL))
def test_stage_outputs_in_forward_order_with_declared_channels(name, build_model):
    check_stage_outputs_in_forward_order(build_model(name, num_classes=3), _res(name))


def test_expected_stage_names(build_model):
    assert [s.name for s in stages(build_model("resnet50", num_classes=3))] == [
        "stem", "layer1", "layer2", "layer3", "layer4", "head",
    ]
    assert [s.name for s in stages(build_model("cbr_tiny", num_classes=3))] == [
        "block1", "block2", "block3", "block4", "head",
    ]
    assert [s.name for s in stages(build_model("inception_v3", num_classes=3))] == [
        "stem", "mixed5", "mixed6", "mixed7", "head",
    ]
    five = ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    for name in ("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf"):
        assert [s.name for s in stages(build_model(name, num_classes=3))] == five, name
    for name in ("shufflenet_v2_x1_0", "convnext_tiny"):
        assert [s.name for s in stages(build_model(name, num_classes=3))] == five[:4] + ["head"], name
    # the features-based views group blocks by output resolution (torchvision's module indices)
    view = {s.name: s.prefixes for s in stages(build_model("efficientnet_b0", num_classes=3))}
    assert view["stem"] == ("features.0", "features.1") and view["stage4"] == ("features.6", "features.7", "features.8")
    view = {s.name: s.prefixes for s in stages(build_model("mobilenet_v3_small", num_classes=3))}
    assert view["stem"] == ("features.0",) and view["stage3"] == tuple(f"features.{i}" for i in range(4, 9))


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="unknown model 'resnet51'.*cbr_small.*resnet50"):
        create_model("resnet51", num_classes=2)


def test_bad_class_count():
    with pytest.raises(ValueError, match="num_classes must be >= 1, got 0"):
        create_model("cbr_small", num_classes=0)


def test_input_size_check_before_compute():
    assert min_input_px("inception_v3") == 75
    assert min_input_px("cbr_small") == 31  # four unpadded 3/2 max-pools
    check_input_size("inception_v3", 75)
    with pytest.raises(ValueError, match="inception_v3.*at least 75 px, got 64 px"):
        check_input_size("inception_v3", 64)
    with pytest.raises(ValueError, match="at least 31 px"):
        check_input_size("cbr_large_t", 28)


def test_model_config_records_design_resolution():
    assert model_config("inception_v3").default_res_px == 299
    assert model_config("resnet50").default_res_px == 224


@pytest.mark.parametrize("name", sorted(EFFICIENT))
def test_efficient_models_rebuild_from_a_checkpoint(name, build_model):
    from transfusion.transfer.checkpoint import model_from_checkpoint

    model = build_model(name, num_classes=2, in_chans=1).eval()
    ck = {"arch": name, "task": {"kind": "binary", "labels": ["a", "b"]}, "in_chans": 1,
          "state_dict": model.state_dict()}
    again = model_from_checkpoint(ck)
    x = torch.randn(2, 1, 40, 40)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))
