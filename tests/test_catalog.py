"""The model catalogue: facts declared without torch agree with the built models."""

from __future__ import annotations

import pytest
from _zoo import zoo_params

from transfusion.models import (
    ModelConfig,
    accepts_input,
    create_model,
    list_models,
    model_config,
    probe_min_input_px,
    register_model,
    stages,
)


@pytest.mark.parametrize("name", zoo_params(list_models()))
def test_declared_stage_count_and_min_input_match_the_built_model(name, build_model):
    config = model_config(name)
    assert len(stages(build_model(name))) == config.num_stages
    # the declared side is the smallest one the model accepts (two shape propagations, not a search)
    assert accepts_input(name, config.min_input_px)
    assert config.min_input_px == 1 or not accepts_input(name, config.min_input_px - 1)


def test_probe_finds_the_smallest_input():
    assert probe_min_input_px("cbr_small") == 31 and probe_min_input_px("convnext_tiny") == 32


def test_register_model_adds_a_model_and_refuses_a_taken_name():
    from torch import nn

    config = ModelConfig("test_linear_probe_net", family="test", first_conv=None, num_stages=None)

    @register_model(config)
    def build(*, num_classes: int, in_chans: int = 3) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    assert "test_linear_probe_net" in list_models()
    assert create_model("test_linear_probe_net", num_classes=3).transfusion_name == "test_linear_probe_net"
    for taken in ("test_linear_probe_net", "resnet50"):
        with pytest.raises(ValueError, match="already registered"):
            register_model(ModelConfig(taken, family="test"))(build)
