"""timm models by name (``timm:NAME``, the optional timm extra): exact parameter counts, forward
at 1 and 3 channels, the stage view read from timm's feature_info (every tensor once,
transfusion:K exact, freeze:K), timm's pretrained weights from the local Hugging Face cache (or a
clear error), suites and the command line, and the errors for a missing timm or an unknown name."""

from __future__ import annotations

import sys

import pytest
import torch
from _zoo import (
    check_param_counts,
    check_stage_outputs_in_forward_order,
    check_stage_view_covers_every_tensor_once,
    check_transfusion_exact,
    fresh,
    n_params,
    source,
    train_a_little,
)

from transfusion.models import (
    check_input_size,
    create_model,
    list_models,
    min_input_px,
    model_config,
    num_stages,
    stage_of_keys,
    stages,
)

timm = pytest.importorskip("timm")

MOBILENET, EFFICIENTNET, RESNET = "timm:mobilenetv3_small_100", "timm:efficientnet_b0", "timm:resnet18"
FAMILIES = (MOBILENET, EFFICIENTNET, RESNET)

# parameters with 1000 classes and 3 channels (timm 1.0's builders; the ResNets equal torchvision's)
COUNTS = {MOBILENET: 2_542_856, EFFICIENTNET: 5_288_548, "timm:tf_efficientnet_lite0": 4_652_008,
          RESNET: 11_689_512, "timm:resnet50": 25_557_032}

# the stage view of each family, read from feature_info (prefixes per stage)
VIEWS = {
    RESNET: {"stem": ("conv1", "bn1", "act1"), "stage1": ("maxpool", "layer1"), "stage2": ("layer2",),
             "stage3": ("layer3",), "stage4": ("layer4",), "head": ("global_pool", "fc")},
    EFFICIENTNET: {"stem": ("conv_stem", "bn1", "blocks.0"), "stage1": ("blocks.1",), "stage2": ("blocks.2",),
                   "stage3": ("blocks.3", "blocks.4"), "stage4": ("blocks.5", "blocks.6", "conv_head", "bn2"),
                   "head": ("global_pool", "classifier")},
    MOBILENET: {"stem": ("conv_stem", "bn1"), "stage1": ("blocks.0",), "stage2": ("blocks.1",),
                "stage3": ("blocks.2", "blocks.3"),
                "stage4": ("blocks.4", "blocks.5", "global_pool", "conv_head", "norm_head", "act2"),
                "head": ("flatten", "classifier")},
}


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """An empty Hugging Face cache of the test's own (``$HF_HOME``); returns its hub folder."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "hf" / "hub"


def cache_weights(hub, repo: str, filename: str, state: dict[str, torch.Tensor]):
    """Write ``state`` into ``hub`` exactly as huggingface_hub lays out a downloaded file:
    ``models--ORG--NAME/refs/main`` holding a commit, the file under ``snapshots/<commit>/``."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    folder = hub / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    path = folder / "snapshots" / commit / filename
    path.parent.mkdir(parents=True)
    if filename.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_exact_param_counts(name):
    check_param_counts(name, COUNTS[name])


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_timm_resnets_are_torchvisions_tensor_for_tensor(arch, build_model):
    ours, theirs = build_model(f"timm:{arch}", num_classes=1000), build_model(arch, num_classes=1000)
    assert n_params(ours) == n_params(theirs) == COUNTS[f"timm:{arch}"]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("name", FAMILIES)
def test_forward_backward_at_one_and_three_channels(name, in_chans):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_chans=in_chans).train()
    assert model.transfusion_name == name
    out = model(torch.randn(2, in_chans, 32, 32))
    assert out.shape == (2, 3)
    out.square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"parameters without a finite gradient: {missing[:5]}"


@pytest.mark.parametrize("name", FAMILIES)
def test_stage_view_from_feature_info(name, build_model):
    model = build_model(name, num_classes=3)
    check_stage_view_covers_every_tensor_once(model, 3)
    check_stage_outputs_in_forward_order(model, 64)
    view = stages(model)
    assert {s.name: s.prefixes for s in view} == VIEWS[name]
    assert num_stages(name) == len(view) == 6  # counted on a meta-device build: the same view
    # one stage per feature point: each ends where timm's feature_info says, with its channels
    ends = [s.prefixes.index(p) for s, p in zip(view, (f["module"] for f in model.feature_info))]
    assert all(i >= 0 for i in ends)
    assert [s.out_channels for s in view[:4]] == [f["num_chs"] for f in model.feature_info[:4]]
    # the head holds the classifier's tensors only
    assert {k for k, st in stage_of_keys(model).items() if st == "head"} == {
        f"{model_config(name).classifier}.{t}" for t in ("weight", "bias")}


def test_stage_view_of_other_timm_layouts(build_model):
    # a ViT (tensors on the root module, 12 equal-resolution feature points) and a ConvNeXt (the
    # classifier nested in a head module): every tensor once, in forward order
    vit = build_model("timm:vit_tiny_patch16_224", num_classes=3)
    check_stage_view_covers_every_tensor_once(vit, 3)
    view = stages(vit)
    assert len(view) == 13 and view[0].prefixes[:2] == ("cls_token", "pos_embed") and view[-2].prefixes[-1] == "norm"
    convnext = build_model("timm:convnext_atto", num_classes=3)
    check_stage_view_covers_every_tensor_once(convnext, 3)
    check_stage_outputs_in_forward_order(convnext, 32)
    assert stages(convnext)[-1].prefixes == ("head.flatten", "head.pre_logits", "head.drop", "head.fc")


def test_a_model_whose_feature_info_gives_no_stage_view_is_refused_before_any_work():
    from transfusion.transfer import validate

    # TResNet's feature_info names the root module as a feature point: no ordered stages to read
    with pytest.raises(ValueError, match=r"model 'timm:tresnet_m' cannot be used here: no stage view for timm's "
                                         r"TResNet: feature module\(s\) \[''\] are not modules of the model"):
        validate("timm:tresnet_m", "random")


@pytest.mark.parametrize("name", FAMILIES)
def test_transfusion_boundary_exact_for_every_k(name):
    check_transfusion_exact(name)


def test_freeze_keeps_frozen_stages_fixed_while_training():
    from transfusion.transfer import apply_init

    model = fresh(MOBILENET)
    report = apply_init(model, "freeze:2", source=source(MOBILENET, num_classes=2))
    assert report.frozen_stages == ["stem", "stage1"]
    owner = stage_of_keys(model)
    frozen_before = {k: v.clone() for k, v in model.state_dict().items() if owner[k] in ("stem", "stage1")}
    later_before = {k: v.clone() for k, v in model.state_dict().items() if owner[k] == "stage3"}
    train_a_little(model, 32, 2)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen_before.items())  # BatchNorm statistics too
    assert not all(torch.equal(after[k], v) for k, v in later_before.items())
    assert not model.bn1.training and not model.blocks[0].training and model.blocks[2].training


def test_transfer_copies_all_but_the_classifier_and_sums_rgb_for_one_channel():
    from transfusion.transfer import apply_init

    src = source(EFFICIENTNET, num_classes=1000)
    model = fresh(EFFICIENTNET, num_classes=2, in_chans=1)
    report = apply_init(model, "transfer", source=src)
    assert set(report.keys("kept")) == {"classifier.weight", "classifier.bias"}
    assert torch.equal(model.conv_stem.weight, src["conv_stem.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(model.conv_head.weight, src["conv_head.weight"])


def test_config_from_timms_pretrained_cfg():
    config = model_config(RESNET)
    assert (config.family, config.default_res_px, config.first_conv, config.classifier) == ("timm", 224, "conv1", "fc")
    assert config.imagenet_weights == "timm/resnet18.a1_in1k"  # timm's default pretrained tag
    assert model_config("timm:resnet18.tv_in1k").imagenet_weights == "timm/resnet18.tv_in1k"
    assert model_config(MOBILENET).first_conv == "conv_stem"
    assert not any(n.startswith("timm:") for n in list_models())  # the zoo's listing stays the built-in models
    assert min_input_px(MOBILENET) == 1
    check_input_size(MOBILENET, 32)
    vit = "timm:vit_tiny_patch16_224"
    assert model_config(vit).fixed_input_px == 224
    check_input_size(vit, 224)
    with pytest.raises(ValueError, match="takes only 224 px inputs, got 64 px"):
        check_input_size(vit, 64)


def test_unknown_timm_name_names_the_value_and_how_to_list_models():
    for call in (lambda: model_config("timm:resnet51"), lambda: create_model("timm:resnet51", num_classes=2)):
        with pytest.raises(ValueError, match=r"unknown timm model 'resnet51' \(in 'timm:resnet51'\).*did you mean "
                                             r".*resnet50.*timm\.list_models\('\*resn\*'\)"):
            call()
    with pytest.raises(ValueError, match="unknown pretrained tag 'nope' for timm model 'resnet18'.*tv_in1k"):
        model_config("timm:resnet18.nope")
    with pytest.raises(ValueError, match="names no timm model"):
        model_config("timm:")


def test_missing_timm_is_a_clear_error(monkeypatch):
    from transfusion.harness.suite import SuiteError, parse_suite

    monkeypatch.setitem(sys.modules, "timm", None)  # `import timm` now raises ImportError
    for call in (lambda: model_config(RESNET), lambda: create_model(RESNET, num_classes=2)):
        with pytest.raises(ValueError, match=r"model 'timm:resnet18' needs the optional package timm, which is not "
                                             r"installed .*pip install -e \"\.\[timm\]\" \(or: pip install timm\)"):
            call()
    assert model_config("resnet18").family == "resnet"  # built-in models do not need it
    with pytest.raises(SuiteError, match="grid.model: model 'timm:resnet18' needs the optional package timm"):
        parse_suite(f'name = "t"\n[grid]\ndataset = ["synth-retina"]\nmodel = ["{RESNET}"]\n')


def _suite(init: str, extra: str = "") -> str:
    return (f'name = "t"\n[grid]\ndataset = ["synth-retina?n=160&res=32"]\nmodel = ["{MOBILENET}", "cbr_small"]\n'
            f'init = ["random", "{init}"]\n[train]\nsteps = 2\n[train.per_model."{MOBILENET}"]\nsteps = 3\n'
            f'[source]\nweights = "imagenet"\ndataset = "synth-natural?n=160&res=32"\n'
            f'[source.train.per_model."{MOBILENET}"]\nsteps = 1\n{extra}')


def test_suite_with_a_timm_model_validates_and_checks_its_weights(hf_home):
    from transfusion.harness.grid import expand
    from transfusion.harness.suite import parse_suite
    from transfusion.harness.weights import weight_files

    suite = parse_suite(_suite("transfusion:2"))
    assert suite.train_for(MOBILENET).steps == 3
    grid = expand(suite)
    assert {(s.model, s.init) for s in grid.runs} == {(MOBILENET, "random"), (MOBILENET, "transfusion:2"),
                                                      ("cbr_small", "random"), ("cbr_small", "transfusion:2")}
    # timm publishes weights: the timm run reads them from the Hugging Face cache, the CBR is pretrained here
    assert next(s for s in grid.runs if s.model == MOBILENET and s.init != "random").source == "imagenet"
    assert [p.model for p in grid.pretrain] == ["cbr_small"]
    (missing,) = weight_files(grid.runs)
    assert missing.arch == MOBILENET and not missing.present
    assert "timm/mobilenetv3_small_100.lamb_in1k" in missing.problem and str(hf_home) in missing.problem
    path = cache_weights(hf_home, "timm/mobilenetv3_small_100.lamb_in1k", "model.safetensors",
                         fresh(MOBILENET, num_classes=1000).state_dict())
    (present,) = weight_files(grid.runs)
    assert present.present and present.path == path
    with pytest.raises(ValueError, match=f"transfusion:6: K must be between 0 and 5 for {MOBILENET}"):
        expand(parse_suite(_suite("transfusion:6")))


@pytest.mark.parametrize("name,repo,filename", [
    (MOBILENET, "timm/mobilenetv3_small_100.lamb_in1k", "model.safetensors"),
    ("timm:resnet18.tv_in1k", "timm/resnet18.tv_in1k", "pytorch_model.bin"),  # a tag; the older file format
])
def test_pretrained_weights_load_from_the_hugging_face_cache(name, repo, filename, hf_home):
    from transfusion.transfer import imagenet_file, load_imagenet

    state = source(name, num_classes=1000)  # stands in for timm's published weights
    path = cache_weights(hf_home, repo, filename, state)
    assert imagenet_file(name) == (f"{repo}: model.safetensors or pytorch_model.bin", path)
    weights = load_imagenet(name, allow_download=False)
    assert set(weights.state_dict) == set(state)
    assert all(torch.equal(weights.state_dict[k], v) for k, v in state.items())
    cfg = timm.models.get_pretrained_cfg(name.removeprefix("timm:"))
    assert weights.mean == tuple(cfg.mean) and weights.std == tuple(cfg.std)
    assert weights.origin == f"imagenet:{repo}" and weights.meta["file"] == str(path)


def test_missing_pretrained_weights_say_what_where_and_how(hf_home):
    from transfusion.transfer import SourceUnavailable, load_imagenet

    with pytest.raises(SourceUnavailable) as err:
        load_imagenet(MOBILENET, allow_download=False)
    text = str(err.value)
    for part in ("timm/mobilenetv3_small_100.lamb_in1k", "model.safetensors or pytorch_model.bin",
                 str(hf_home / "models--timm--mobilenetv3_small_100.lamb_in1k"), "HF_HOME",
                 "python -c \"import timm; timm.create_model('mobilenetv3_small_100', pretrained=True)\"",
                 "--source file:PATH"):
        assert part in text, part


def test_download_when_allowed_goes_through_huggingface_hub(hf_home, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    from transfusion.transfer import SourceUnavailable, load_imagenet

    repo, state = "timm/mobilenetv3_small_100.lamb_in1k", source(MOBILENET, num_classes=1000)
    asked = []

    def offline(repo_id, filename, **kwargs):
        asked.append(filename)
        raise LocalEntryNotFoundError("cannot reach the hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(SourceUnavailable, match=r"not in the Hugging Face cache.*\(download failed: cannot reach"):
        load_imagenet(MOBILENET, allow_download=True)
    assert asked == ["model.safetensors"]  # a network failure is not taken for a missing file

    def hub(repo_id, filename, *, revision=None, cache_dir=None):
        assert (repo_id, revision, cache_dir) == (repo, None, hf_home)
        if filename == "model.safetensors":  # this repository holds the older format only
            raise EntryNotFoundError("404: no such file in the repository")
        return str(cache_weights(hf_home, repo_id, filename, state))

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub)
    weights = load_imagenet(MOBILENET, allow_download=True)
    assert all(torch.equal(weights.state_dict[k], v) for k, v in state.items())


def test_rebuild_from_a_checkpoint(build_model):
    from transfusion.transfer.checkpoint import model_from_checkpoint

    model = build_model(EFFICIENTNET, num_classes=2, in_chans=1).eval()
    ck = {"arch": EFFICIENTNET, "task": {"kind": "binary", "labels": ["a", "b"]}, "in_chans": 1,
          "state_dict": model.state_dict()}
    again = model_from_checkpoint(ck).eval()
    x = torch.randn(2, 1, 40, 40)
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


@pytest.mark.slow
def test_train_command_end_to_end_with_cached_weights(tmp_path, hf_home, capsys):
    import json

    from transfusion.cli.main import main

    cache_weights(hf_home, "timm/mobilenetv3_small_100.lamb_in1k", "model.safetensors",
                  source(MOBILENET, num_classes=1000))
    out = tmp_path / "run"
    assert main(["train", MOBILENET, "--data", "synth-retina?n=120&res=32", "--init", "freeze:2", "--source",
                 "imagenet", "--steps", "2", "--batch", "16", "--threads", "1", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["spec"]["model"] == MOBILENET and summary["source_origin"] == \
        "imagenet:timm/mobilenetv3_small_100.lamb_in1k"
    assert all(":" not in p.name for p in out.iterdir())  # file names never carry the model name
    assert main(["train", "timm:mobilenetv3_smol_100", "--data", "synth-retina?n=120&res=32", "--init", "random",
                 "--steps", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "unknown timm model 'mobilenetv3_smol_100'" in capsys.readouterr().err


def test_profile_cli_takes_timm_names(capsys):
    import json

    from transfusion.cli.main import main

    assert main(["profile", RESNET, "--res", "32", "--batch", "2", "--repeats", "1", "--threads", "1",
                 "--no-onnx", "--json", "-"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["model"] == RESNET and row["params"] == n_params(create_model(RESNET, num_classes=2))
    assert row["macs"] > 0 and row["error"] is None
    assert main(["profile", "timm:no_such_net_xyz"]) == 2
    assert "unknown timm model 'no_such_net_xyz'" in capsys.readouterr().err
