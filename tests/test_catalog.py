"""The model catalogue: facts declared without torch agree with the built models."""

from __future__ import annotations

import pytest

from transfusion.models import (
    ModelConfig,
    create_model,
    list_models,
    model_config,
    probe_min_input_px,
    register_model,
    stages,
)


@pytest.mark.parametrize("name", list_models())
def test_declared_stage_count_and_min_input_match_the_built_model(name, build_model):
    config = model_config(name)
    assert len(stages(build_model(name))) == config.num_stages
    assert probe_min_input_px(name) == config.min_input_px


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
