"""Zoo models by name (timm, torchvision): every timm family partitions into blocks that hold
each parameter exactly once; weights files in every accepted form round-trip as a source; the
weights' preprocessing reaches the data pipeline and the record; bad input is one error each.
Nothing here downloads: zoo weights come from files the tests write."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import timm
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from benchmark.errors import UserError
from benchmark.blocks import model_blocks
from benchmark.models import block_names, build_model
from benchmark.models.net import under
from benchmark.models.timm_models import classifier_paths
from benchmark.networks import Workspace
from benchmark.protocol import EXTERNAL_SOURCE, OWN
from benchmark.run import execute
from benchmark.sources import external_state, run_preprocessing
from conftest import run_cli

# families whose models timm gives no group_matcher: the blocks must be listed (model.blocks)
UNGROUPED = {"csatv2", "metaformer", "pit"}
FINE_ONLY = {"rdnet"}  # grouped only block by block (model.granularity=fine)
TIMM_RESNET = ["model=timm", "model.arch=test_resnet"]


def zoo_cfg(name: str, arch: str, **settings) -> OmegaConf:
    defaults = {"name": name, "arch": arch, "blocks": None, "kwargs": {}, "granularity": "coarse"}
    return OmegaConf.create({**defaults, **settings})


def _owners(net, name: str) -> int:
    paths = [net.block_paths(b) for b in net.block_names]
    return sum(under(name, p) for p in paths)


@pytest.mark.parametrize("family", timm.list_modules())
def test_every_timm_family_partitions_each_parameter_into_exactly_one_block(family):
    arch = timm.list_models(module=family)[0]
    granularity = "fine" if family in FINE_ONLY else "coarse"
    if family in UNGROUPED:
        with pytest.raises(UserError, match="no block grouping.*model.blocks="):
            block_names(zoo_cfg("timm", arch), 224)
        return
    with torch.device("meta"):
        net = build_model(zoo_cfg("timm", arch, granularity=granularity), 3, 224)
    classifier = tuple(f"net.{path}" for path in classifier_paths(net.net))
    for name, _ in net.named_parameters():
        assert _owners(net, name) + under(name, net.head_paths) == 1, name  # exactly once
        assert not under(name, classifier) or under(name, net.head_paths), name  # the classifier: head
    assert net.num_transferable >= 2 and len(set(net.block_names)) == net.num_transferable


def test_families_that_cannot_be_grouped_are_few():
    families = timm.list_modules()
    assert len(UNGROUPED) / len(families) <= 0.05  # the target: 95% partition


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
    ours, origin = external_state(source, zoo_cfg("timm", "test_resnet"))
    assert origin == str(path) and ours.keys() == {f"net.{k}" for k in state}
    assert all(torch.equal(ours[f"net.{k}"], v) for k, v in state.items())


def test_a_pickle_that_needs_code_is_refused(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": _timm_state(), "recipe": Path("/x")}, path)  # a PosixPath needs code
    source = OmegaConf.create({"checkpoint": None, "weights": str(path)})
    with pytest.raises(UserError, match="needs more than tensors.*data, never code"):
        external_state(source, zoo_cfg("timm", "test_resnet"))


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
    (["model=timm", "model.arch=pit_ti_224"], r"timm's pit_ti_224 has no block grouping .*model.blocks=\[\.\.\.\]"),
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
    with pytest.raises(UserError, match=r"block 1 'stem' differs \(the source has no such block\)"):
        execute(other, tmp_path / "XnB2-resnet")


def test_unknown_architecture_is_one_error_line_on_the_command_line(tmp_path):
    result = run_cli("experiment=smoke", "model=timm", "model.arch=convnext_tinyy", cwd=tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "did you mean convnext_tiny" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
