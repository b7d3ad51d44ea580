"""The built-in models, as data: names, facts and the module that builds each (no torch here).

Numbers declared here (``min_input_px``, ``num_stages``) are checked against the built models by
the tests. Sources: the CBR family of Raghu et al. (2019) (:mod:`.cbr`), torchvision's ResNet18 /
ResNet50 / Inception-v3 / DenseNet121 and the paper's slim ResNet50 (:mod:`.zoo`), and today's
efficient torchvision networks — MobileNetV3, EfficientNet-B0, RegNetY-400MF, ShuffleNetV2,
ConvNeXt-Tiny (:mod:`.efficient`).
"""

from __future__ import annotations

from ._registry import ModelConfig, declare_models

#: widths, kernel and whether the last block pools, per CBR model
CBR_SPECS: dict[str, dict] = {
    "cbr_large_t": {"widths": (32, 64, 128, 256, 512), "kernel": 7, "pool_last": False},
    "cbr_large_w": {"widths": (64, 128, 256, 512), "kernel": 7, "pool_last": True},
    "cbr_small": {"widths": (32, 64, 128, 256), "kernel": 7, "pool_last": True},
    "cbr_tiny": {"widths": (64, 128, 256, 512), "kernel": 5, "pool_last": True},
}

declare_models("transfusion.models.cbr", [
    # four unpadded 3/2 max-pools need 31 px; stages: the blocks, then the head
    ModelConfig(name, family="cbr", first_conv="block1.0", classifier="fc", min_input_px=31,
                num_stages=len(spec["widths"]) + 1)
    for name, spec in CBR_SPECS.items()
])

declare_models("transfusion.models.zoo", [
    ModelConfig("resnet18", family="resnet", imagenet_weights="ResNet18_Weights.IMAGENET1K_V1", min_input_px=1,
                num_stages=6),
    ModelConfig("resnet50", family="resnet", imagenet_weights="ResNet50_Weights.IMAGENET1K_V1", min_input_px=1,
                num_stages=6),
    ModelConfig("slim_resnet50", family="resnet", min_input_px=1, num_stages=6),
    ModelConfig("inception_v3", family="inception", default_res_px=299,
                imagenet_weights="Inception_V3_Weights.IMAGENET1K_V1", first_conv="Conv2d_1a_3x3.conv",
                min_input_px=75, num_stages=5),
    ModelConfig("densenet121", family="densenet", imagenet_weights="DenseNet121_Weights.IMAGENET1K_V1",
                first_conv="features.conv0", classifier="classifier", min_input_px=29, num_stages=6),
])

declare_models("transfusion.models.efficient", [
    # stages: a stem, then one stage per halving of the resolution (see stage_view), then the head
    ModelConfig("mobilenet_v3_small", family="mobilenet", imagenet_weights="MobileNet_V3_Small_Weights.IMAGENET1K_V1",
                first_conv="features.0.0", classifier="classifier.3", min_input_px=1, num_stages=6),
    ModelConfig("mobilenet_v3_large", family="mobilenet", imagenet_weights="MobileNet_V3_Large_Weights.IMAGENET1K_V1",
                first_conv="features.0.0", classifier="classifier.3", min_input_px=1, num_stages=6),
    ModelConfig("efficientnet_b0", family="efficientnet", imagenet_weights="EfficientNet_B0_Weights.IMAGENET1K_V1",
                first_conv="features.0.0", classifier="classifier.1", min_input_px=1, num_stages=6),
    ModelConfig("regnet_y_400mf", family="regnet", imagenet_weights="RegNet_Y_400MF_Weights.IMAGENET1K_V1",
                first_conv="stem.0", classifier="fc", min_input_px=1, num_stages=6),
    ModelConfig("shufflenet_v2_x1_0", family="shufflenet",
                imagenet_weights="ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1", first_conv="conv1.0", classifier="fc",
                min_input_px=1, num_stages=5),
    # a 4/4 patchify stem and three unpadded 2/2 downsampling convs: 32 px at least
    ModelConfig("convnext_tiny", family="convnext", imagenet_weights="ConvNeXt_Tiny_Weights.IMAGENET1K_V1",
                first_conv="features.0.0", classifier="classifier.2", min_input_px=32, num_stages=5),
])
