"""Zoo models by name (timm, torchvision): every timm family partitions into blocks that hold
each parameter exactly once; weights files in every accepted form round-trip as a source; the
weights' preprocessing reaches the data pipeline and the record; bad input is one error each.
Nothing here downloads: zoo weights come from files the tests write."""
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import timm
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from benchmark.errors import UserError
from benchmark.blocks import model_blocks
from benchmark.models import block_names, build_model, pretrained_state
from benchmark.models.net import under
from benchmark.models.timm_models import classifier_paths
from benchmark.models.timm_sizes import native_size
from benchmark.networks import Workspace
from benchmark.protocol import EXTERNAL_SOURCE, OWN
from benchmark.run import execute
from benchmark.sources import external_state, run_preprocessing
from benchmark.surgery import parameter_groups, prepare_target
from conftest import run_cli, run_main

FINE_ONLY = {"rdnet"}  # grouped only block by block (model.granularity=fine)
# a family's model when its first is costly to build: sequencer2d_l's size check runs its 36 LSTM
# blocks step by step (about 35 s of CPU); sequencer2d_s has the same blocks, 18 of them
REPRESENTATIVE = {"sequencer": "sequencer2d_s"}
TIMM_RESNET = ["model=timm", "model.arch=test_resnet"]


def zoo_cfg(name: str, arch: str, **settings) -> OmegaConf:
    defaults = {"name": name, "arch": arch, "blocks": None, "kwargs": {}, "granularity": "coarse"}
    return OmegaConf.create({**defaults, **settings})


def _owners(net, name: str) -> int:
    paths = [net.block_paths(b) for b in net.block_names]
    return sum(under(name, p) for p in paths)


# the families the default suite partitions: one of each way of cutting (timm's coarse grouping for a
# CNN and a ViT, fine only, feature_info stages); every other family in the slow stage (about 75 s of CPU)
PARTITIONED_BY_DEFAULT = {"resnet", "vision_transformer", "rdnet", "csatv2", "metaformer", "pit"}


@pytest.mark.parametrize("family", [family if family in PARTITIONED_BY_DEFAULT else
                                    pytest.param(family, marks=pytest.mark.slow) for family in timm.list_modules()])
def test_every_timm_family_partitions_each_parameter_into_exactly_one_block(family):
    arch = REPRESENTATIVE.get(family, timm.list_models(module=family)[0])
    granularity = "fine" if family in FINE_ONLY else "coarse"
    with torch.device("meta"):
        net = build_model(zoo_cfg("timm", arch, granularity=granularity), 3, native_size(arch))  # its own size
    classifier = tuple(f"net.{path}" for path in classifier_paths(net.net))
    for name, _ in net.named_parameters():
        assert _owners(net, name) + under(name, net.head_paths) == 1, name  # exactly once
        assert not under(name, classifier) or under(name, net.head_paths), name  # the classifier: head
    assert net.num_transferable >= 2 and len(set(net.block_names)) == net.num_transferable


@pytest.mark.parametrize("arch, blocks", [
    ("poolformer_s12", ["stem", "stages.0", "stages.1", "stages.2", "stages.3+head.norm"]),
    ("pit_ti_224", ["stem", "transformers.0", "transformers.1", "transformers.2+norm"]),
])
def test_a_model_without_timms_grouping_is_cut_after_its_feature_stages(arch, blocks):
    assert block_names(zoo_cfg("timm", arch), 224) == blocks  # the stem, then each stage feature_info names
    with pytest.raises(UserError, match=r"no fine block grouping \(no group_matcher\); use model.granularity=coarse"):
        block_names(zoo_cfg("timm", arch, granularity="fine"), 224)


# one model of each kind, at a size that is not its own: (arch, image size, its native size, model.kwargs,
# what the log says of the sizing)
SMALL_DEEPSEEK = {"embed_dim": 64, "depth": 3, "num_heads": 4}  # its blocks, fewer and narrower
OTHER_SIZES = [
    ("test_vit", 32, 160, {}, "created for 32 px inputs (timm's img_size=; its own size is 160 px)"),  # ViT
    ("test_vit", 24, 160, {}, "is created for 32 px inputs (timm's img_size=) and pads the 24 px images"),  # 16 px
    ("test_maxvit", 64, 160, {}, "created for 64 px inputs"),  # windowed and grid attention (MaxViT)
    ("pit_ti_224", 64, 224, {}, "created for 64 px inputs"),  # pooling ViT without timm's grouping
    ("test_resnet", 32, 160, {}, None),  # convolutional: any size, nothing to say
    # RoPE ViT, not of a fixed size, 14 px patches: timm pads the images (dynamic_img_pad)
    ("deepseek_vit_412m", 32, 546, SMALL_DEEPSEEK, "pads the 32 px images to a multiple of its patches"),
    # two patch grids (12 and 16 px) that 32 px does not fit: created for 36 px, its forward scales the images
    ("crossvit_tiny_240", 32, 240, {}, "created for 36 px inputs (timm's img_size=; it is not created for 32 px)"),
]


def _one_frozen_step(arch: str, size: int, kwargs: dict | None = None) -> None:
    """Copy two blocks from another init, freeze them and train one step on images of ``size``."""
    cfg = zoo_cfg("timm", arch, kwargs=kwargs or {})
    torch.manual_seed(0)
    source = build_model(cfg, 3, size).state_dict()
    torch.manual_seed(1)
    target = build_model(cfg, 3, size)
    prepare_target(target, source, 2, frozen=True, bn_eval=True)
    frozen = {k: v.clone() for k, v in target.state_dict().items() if under(k, target.prefix_paths(2))}
    optimizer = torch.optim.SGD(parameter_groups(target, 0, 0.1, 0.0), lr=0.1)
    loss = torch.nn.functional.cross_entropy(target(torch.randn(2, 3, size, size)), torch.tensor([0, 1]))
    loss.backward()
    optimizer.step()
    assert frozen and all(torch.equal(target.state_dict()[k], v) for k, v in frozen.items())


@pytest.mark.parametrize("arch, size, native, kwargs, logged", OTHER_SIZES)
def test_a_zoo_model_is_built_for_the_datas_image_size(arch, size, native, kwargs, logged, caplog):
    assert size != native == native_size(arch)
    with caplog.at_level(logging.INFO, logger="benchmark.models.timm_sizes"):
        _one_frozen_step(arch, size, kwargs)
    assert (logged in caplog.text) if logged else not caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("arch, size", [("swin_tiny_patch4_window7_224", 32), ("deit_tiny_patch16_224", 64)])
def test_a_full_size_zoo_model_is_built_for_small_images(arch, size):
    _one_frozen_step(arch, size)


def test_a_size_a_model_cannot_take_is_one_error_naming_the_smallest_size_it_takes(smoke_cfg, tmp_path):
    """Inception's stem shrinks 32 px below its kernels; 75 px is the smallest size it takes."""
    with pytest.raises(UserError, match=r"timm's inception_v3 cannot take 32 px images \(its forward fails at this "
                                        r"size: RuntimeError: .*Kernel size can't be greater than actual input size\); "
                                        r"it takes 75 px: set the dataset's image size .* to it$"):
        block_names(zoo_cfg("timm", "inception_v3"), 32)
    _one_frozen_step("inception_v3", 75)  # the size it names trains
    result = run_main("experiment=smoke", "model=timm", "model.arch=inception_v3", "dataset.params.image_size=32",
                      cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode != 0 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "dataset.params.image_size" in errors[0]


def test_pretrained_weights_are_resampled_by_timm_to_the_datas_size(tmp_path, caplog):
    """timm's own loading (a local file in place of the hub's: pretrained_cfg_overlay) resamples the
    position embeddings of weights trained at 160 px for 32 px images."""
    path = tmp_path / "test_vit.pth"
    weights = timm.create_model("test_vit").state_dict()  # as timm publishes them: 160 px, 1000 classes
    torch.save(weights, path)
    cfg = zoo_cfg("timm", "test_vit", kwargs={"pretrained_cfg_overlay": {"file": str(path)}})
    with caplog.at_level(logging.INFO):
        state = pretrained_state(cfg, "r160_in1k", 32)
    model = build_model(cfg, 3, 32)
    assert state["net.pos_embed"].shape == model.state_dict()["net.pos_embed"].shape == (1, 5, 64)
    assert torch.equal(state["net.blocks.0.attn.qkv.weight"], weights["blocks.0.attn.qkv.weight"])
    assert "timm resampled the position embeddings of the weights test_vit.r160_in1k from 160 px to 32 px" in caplog.text


@pytest.mark.slow
def test_the_demo_runs_a_deit_end_to_end(tmp_path):
    """The default demo data (24 px synthetic images) with DeiT-tiny, made for 224 px: built for 32 px
    inputs (16 px patches), the images padded to them."""
    result = run_cli("model=timm", "model.arch=deit_tiny_patch16_224", "treatment=transfer", "n=2", "train.epochs=1",
                     "dataset.params.train_per_class=8", "dataset.params.val_per_class=8", cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(next(tmp_path.rglob("result.json")).read_text())
    assert record["status"] == "ok" and record["model"] == "timm:deit_tiny_patch16_224"
    assert "pads the 24 px images" in "".join(p.read_text() for p in tmp_path.rglob("*.log"))


def _timm_state(arch: str = "test_resnet", **kwargs) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return timm.create_model(arch, num_classes=7, **kwargs).state_dict()  # timm's own layout


@pytest.mark.parametrize("form", ["safetensors", "pth", "bin", "state_dict", "model"])
def test_weights_files_in_every_form_round_trip_as_a_source(tmp_path, form):
    state = _timm_state()
    path = tmp_path / f"weights.{'safetensors' if form == 'safetensors' else 'pth' if form != 'bin' else 'bin'}"
    if form == "safetensors":
        save_file(state, path)
    else:
        torch.save({form: state} if form in ("state_dict", "model") else state, path)
    source = OmegaConf.create({"checkpoint": None, "weights": str(path)})
    ours, origin = external_state(source, zoo_cfg("timm", "test_resnet"), 24)
    assert origin == str(path) and ours.keys() == {f"net.{k}" for k in state}
    assert all(torch.equal(ours[f"net.{k}"], v) for k, v in state.items())


def test_a_pickle_that_needs_code_is_refused(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": _timm_state(), "recipe": Path("/x")}, path)  # a PosixPath needs code
    source = OmegaConf.create({"checkpoint": None, "weights": str(path)})
    with pytest.raises(UserError, match="needs more than tensors.*data, never code"):
        external_state(source, zoo_cfg("timm", "test_resnet"), 24)


def _hub_folder(tmp_path: Path, mean: list[float], std: list[float], size: int = 24) -> Path:
    """A weights file as Hugging Face hub folders hold it: model.safetensors + config.json."""
    folder = tmp_path / "hub"
    folder.mkdir()
    save_file(_timm_state(), folder / "model.safetensors")
    config = {"architecture": "test_resnet", "pretrained_cfg": {
        "mean": mean, "std": std, "input_size": [3, size, size], "interpolation": "bicubic", "crop_pct": 0.9}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder / "model.safetensors"


def test_the_weights_preprocessing_reaches_the_pipeline_and_the_record(smoke_cfg, tmp_path, caplog):
    weights = _hub_folder(tmp_path, [0.1, 0.2, 0.3], [0.4, 0.5, 0.6])
    cfg = smoke_cfg(*TIMM_RESNET, "treatment=external", "n=2", f"source.weights={weights}")
    ws = Workspace.from_config(cfg)
    assert ws.preprocessing.mean == (0.1, 0.2, 0.3) and ws.preprocessing.std == (0.4, 0.5, 0.6)
    white = torch.full((1, 3, 1, 1), 255, dtype=torch.uint8)
    assert torch.allclose(ws.normalize(white).flatten(), torch.tensor([0.9 / 0.4, 0.8 / 0.5, 0.7 / 0.6]))
    assert "expect inputs normalised with mean [0.1, 0.2, 0.3]" in caplog.text
    record = execute(cfg, tmp_path / "XnB2")
    assert record["status"] == "ok" and record["model"] == "timm:test_resnet"
    assert record["preprocessing"]["mean"] == [0.1, 0.2, 0.3] and record["preprocessing"]["input_size"] == 24
    base = execute(smoke_cfg(*TIMM_RESNET, f"source.weights={weights}", "analysis.measures=[linear_probe]"),
                   tmp_path / "baseB")
    probe = base["linear_probe"]  # the cheap XnB: the pretrained source read out block by block
    assert len(probe[EXTERNAL_SOURCE]) == len(probe[OWN]) == 5 and all(0 <= v <= 1 for v in probe[EXTERNAL_SOURCE])
    plain = execute(smoke_cfg(*TIMM_RESNET), tmp_path / "plain")  # no source: the dataset's, another base
    assert base["preprocessing"]["mean"] == [0.1, 0.2, 0.3] and plain["preprocessing"]["origin"] == "dataset"
    assert base["network_file"] != plain["network_file"]


def test_torchvision_weights_bring_their_normalisation_not_the_datasets(smoke_cfg):
    """The bug this replaced: pretrained torchvision weights were fed the dataset's mean and std
    (with dataset=imagenet, Caffe's: pixel minus mean on the 0..255 scale, inputs about 58 times
    larger than the weights were trained on)."""
    cfg = smoke_cfg("model=resnet18", "model.width=64", "treatment=external", "n=2", "source.weights=IMAGENET1K_V1")
    caffe = SimpleNamespace(mean=(0.4824, 0.4588, 0.4078), std=(0.003922,) * 3, image_size=227)
    preprocessing = run_preprocessing(cfg, caffe)
    assert preprocessing.mean == (0.485, 0.456, 0.406) and preprocessing.std == (0.229, 0.224, 0.225)
    assert preprocessing.input_size == 224 and preprocessing.interpolation == "bilinear"
    assert Workspace.from_config(cfg).preprocessing == preprocessing  # what the run's pipeline uses


def test_timm_weights_by_tag_name_their_preprocessing_without_downloading(smoke_cfg):
    cfg = smoke_cfg("model=timm", "model.arch=resnet18", "treatment=external", "n=2", "source.weights=a1_in1k")
    ws = Workspace.from_config(cfg)
    assert ws.preprocessing.origin == "timm resnet18.a1_in1k" and ws.preprocessing.crop_pct == 0.95


def test_offline_zoo_weights_name_the_file_to_fetch(smoke_cfg, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once, at import
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cfg = smoke_cfg("model=timm", "model.arch=resnet18", "treatment=external", "n=2", "source.weights=a1_in1k")
    with pytest.raises(UserError, match=r"huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors"
                                        r".*source.weights=PATH"):
        execute(cfg, tmp_path / "XnB2")


@pytest.mark.parametrize("overrides, message", [
    (["model=timm", "model.arch=resnet_18"], r"not a timm architecture; did you mean resnet18"),
    (["model=torchvision", "model.arch=resnet_18"], r"not a torchvision classifier; did you mean resnet18"),
    (["model=timm", "model.arch=test_resnet", "model.blocks=[conv1+bn1,layer1,layer2,layer3]"],
     r"parameter layer4\.0\.conv1\.weight is in no block and not in the head"),
    (["model=timm", "model.arch=test_resnet", "model.blocks=[conv1+bn1,layer1,layer1.0,layer2,layer3,layer4]"],
     r"parameter layer1\.0\.conv1\.weight is in more than one block \(layer1, layer1\.0\)"),
    (["model=timm", "model.arch=test_resnet", "model.blocks=[conv1+bn1,layer9]"],
     r"model.blocks names 'layer9', which the model does not have"),
    (["model=timm", "model.arch=test_resnet", "treatment=transfer", "n=6"], r"n=6 is outside 0\.\.5"),
    (["model=timm", "model.arch=test_resnet", "treatment=external", "n=2", "source.weights=nope_in1k"],
     r"nor a pretrained tag of timm's test_resnet; use one of r160_in1k"),
])
def test_bad_zoo_input_is_one_error(smoke_cfg, tmp_path, overrides, message):
    with pytest.raises(UserError, match=message):
        execute(smoke_cfg(*overrides), tmp_path / "run")
    assert not (tmp_path / "run" / "result.json").exists()


def test_explicit_blocks_are_the_models_own_names(smoke_cfg):
    cfg = smoke_cfg(*TIMM_RESNET, "model.blocks=[conv1+bn1,layer1+layer2,layer3,layer4]")
    assert model_blocks(cfg) == ["conv1+bn1", "layer1+layer2", "layer3", "layer4"]
    assert model_blocks(smoke_cfg(*TIMM_RESNET)) == ["stem", "layer1", "layer2", "layer3", "layer4"]


def test_weights_of_another_size_or_architecture_name_the_first_block_that_differs(smoke_cfg, tmp_path):
    path = tmp_path / "vit.safetensors"
    save_file(_timm_state("test_vit"), path)  # trained at 160 px: 100 patches
    config = {"pretrained_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3, "input_size": [3, 160, 160]}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    cfg = smoke_cfg("model=timm", "model.arch=test_vit", "+model.kwargs.img_size=24", "+model.kwargs.patch_size=8",
                    "treatment=external", "n=2", f"source.weights={path}")
    with pytest.raises(UserError, match=r"block 1 'stem' differs \(net.pos_embed: source \[1, 101, 64\], "
                                        r"model \[1, 10, 64\]\).*trained on 160 px images and the dataset gives 24 px"):
        execute(cfg, tmp_path / "XnB2")
    other = smoke_cfg(*TIMM_RESNET, "treatment=external", "n=2", f"source.weights={path}")
    with pytest.raises(UserError, match=r"holds another model's weights"):
        execute(other, tmp_path / "XnB2-resnet")


def test_unknown_architecture_is_one_error_line_on_the_command_line(tmp_path):
    result = run_main("experiment=smoke", "model=timm", "model.arch=convnext_tinyy", cwd=tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "did you mean convnext_tiny" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
