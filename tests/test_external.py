"""External sources: a run copies its first n blocks from a checkpoint file or from
torchvision's pretrained weights (read from a file the test writes: no network here)."""
import json

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

from benchmark.errors import UserError
from benchmark.networks import Workspace, base_network, target_network
from benchmark.run import execute


def _blocks(state, names):
    return {k: v for k, v in state.items() if k.startswith(tuple(f"blocks.{b}." for b in names))}


@pytest.fixture
def base_a_file(smoke_cfg, tmp_path):
    """A base network trained and cached by one run, named in its result.json."""
    result = execute(smoke_cfg("treatment=base", "target=A"), tmp_path / "baseA")
    return result["network_file"]


def test_external_run_from_a_base_networks_file(smoke_cfg, tmp_path, base_a_file):
    cfg = smoke_cfg("treatment=external", "n=3", f"source.checkpoint={base_a_file}")
    result = execute(cfg, tmp_path / "external")
    assert (result["label"], result["status"], result["block"]) == ("XnB3", "ok", "conv3")
    assert result["source_network"] == base_a_file and result["source"] is None
    assert json.loads((tmp_path / "external" / "result.json").read_text())["label"] == "XnB3"


@pytest.mark.parametrize("wrapped", [False, True])
def test_external_blocks_equal_the_checkpoint_and_stay_frozen(smoke_cfg, tmp_path, wrapped):
    cfg = smoke_cfg("treatment=external", "n=3", f"source.checkpoint={tmp_path / 'source.pt'}")
    ws = Workspace.from_config(cfg)
    source = base_network(ws, "A").model.state_dict()
    torch.save({"state_dict": source} if wrapped else source, tmp_path / "source.pt")
    target = target_network(ws, "XnB3")
    copied = _blocks(target.model.state_dict(), target.model.block_names[:3])
    assert copied and all(torch.equal(v, source[k]) for k, v in copied.items())  # after training
    assert not torch.equal(target.model.blocks["conv4"][0].weight, source["blocks.conv4.0.weight"])


def test_a_checkpoint_of_another_architecture_names_the_first_block_that_differs(smoke_cfg, tmp_path,
                                                                                base_a_file):
    cfg = smoke_cfg("treatment=external", "n=2", "model.width=8", f"source.checkpoint={base_a_file}")
    with pytest.raises(UserError, match=r"does not match model=convnet8: block 1 'conv1' differs "
                                        r"\(blocks.conv1.0.weight: source \[4, 3, 3, 3\], model \[8, 3, 3, 3\]\)"):
        execute(cfg, tmp_path / "bad")
    assert not (tmp_path / "bad" / "result.json").exists()


def _torch_file(path, state) -> None:
    torch.save(state, path)


def _truncated(path, write) -> None:
    write(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


SMALL_STATE = {"w": torch.zeros(64, 64)}
NOT_WEIGHTS = {  # a file name, how it is made, what the one error line says it is
    "text": ("notes.pth", lambda p: p.write_text("not a checkpoint\n"), "is a text file, not a weights file"),
    "empty": ("empty.pth", lambda p: p.write_bytes(b""), "is empty, not a weights file"),
    "truncated": ("cut.pth", lambda p: _truncated(p, lambda q: _torch_file(q, SMALL_STATE)),
                  r"is a damaged or truncated torch.save file"),
    "text safetensors": ("notes.safetensors", lambda p: p.write_text("not a checkpoint"),
                         "is a text file, not readable safetensors"),
    "truncated safetensors": ("cut.safetensors", lambda p: _truncated(p, lambda q: save_file(SMALL_STATE, q)),
                              "is a damaged or truncated safetensors file"),
    "folder": ("weights.pth", lambda p: p.mkdir(), "is a folder, not a weights file"),
}


@pytest.mark.parametrize("kind", NOT_WEIGHTS)
def test_a_file_that_is_no_weights_file_is_one_short_error(smoke_cfg, tmp_path, kind):
    name, make, message = NOT_WEIGHTS[kind]
    make(tmp_path / name)
    cfg = smoke_cfg("treatment=external", "n=2", f"source.weights={tmp_path / name}")
    with pytest.raises(UserError, match=message) as error:
        execute(cfg, tmp_path / "bad")
    text = str(error.value)
    assert "\n" not in text and len(text) < 400 and "weights_only" not in text, text
    assert "torch.save file of a state dict" in text or "give the file itself" in text
    assert not (tmp_path / "bad" / "result.json").exists()


def test_a_weights_file_of_another_model_is_one_error_naming_it(smoke_cfg, tmp_path):
    path = tmp_path / "vit.pth"
    torch.save(timm.create_model("test_vit").state_dict(), path)  # timm's layout, another architecture
    cfg = smoke_cfg("model=timm", "model.arch=test_resnet", "treatment=external", "n=2", f"source.weights={path}")
    with pytest.raises(UserError, match=r"holds another model's weights: none of its \d+ names \(e.g. 'net.cls_token'\)"
                                        r" is one of model=timm's \(e.g. 'net.conv1.0.weight'\)"):
        execute(cfg, tmp_path / "bad")


@pytest.fixture
def torchvision_weights(tmp_path, monkeypatch):
    """torchvision's resnet18 IMAGENET1K_V1 file, as a download would leave it (random values)."""
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    hub = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(hub))  # torch.hub.get_dir() follows it
    folder = hub / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, folder / weights.url.rsplit("/", 1)[-1])
    return state


def test_external_run_from_torchvision_pretrained_weights(smoke_cfg, tmp_path, torchvision_weights):
    cfg = smoke_cfg("model=resnet18", "model.width=64", "model.stem=imagenet", "treatment=external", "n=2",
                    "source.weights=IMAGENET1K_V1")
    ws = Workspace.from_config(cfg)
    target = target_network(ws, "XnB2")
    state = target.model.state_dict()
    assert torch.equal(state["blocks.stem.0.weight"], torchvision_weights["conv1.weight"])
    assert torch.equal(state["blocks.layer1.1.bn2.running_var"],
                       torchvision_weights["layer1.1.bn2.running_var"])
    assert not torch.equal(state["blocks.layer2.0.conv1.weight"],
                           torchvision_weights["layer2.0.conv1.weight"])
    assert target.source.origin == "resnet18 weights IMAGENET1K_V1"


def test_pretrained_weights_into_another_stem_name_the_stem(smoke_cfg, tmp_path, torchvision_weights):
    cfg = smoke_cfg("model=resnet18", "model.width=64", "model.stem=small", "treatment=external", "n=2",
                    "source.weights=IMAGENET1K_V1")
    with pytest.raises(UserError, match=r"block 1 'stem' differs \(blocks.stem.0.weight: source \[64, 3, 7, 7\], "
                                        r"model \[64, 3, 3, 3\]\)"):
        execute(cfg, tmp_path / "bad")
