"""Architectures: block layouts, forward shapes, costs, torchvision's layouts and weights."""
import hashlib
import re
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision
from omegaconf import DictConfig, OmegaConf

from benchmark.config import compose_config
from benchmark.errors import UserError
from benchmark.flops import block_forward_flops
from benchmark.models import TransferNet, block_names, build_model, pretrained_state, to_our_layout
from benchmark.models.convnet8 import convnet8

MODEL_DIR = Path(__file__).resolve().parent.parent / "conf" / "model"
CONVNET8_BLOCKS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
RESNET_STAGES = ["stem", "layer1", "layer2", "layer3", "layer4"]
TINY_VIT = {"hidden_dim": 32, "num_heads": 2, "mlp_dim": 64}


def model_cfg(name: str, **overrides) -> DictConfig:
    """The ``model`` group's option ``name`` as composed, with ``model.<key>=value`` overrides."""
    return OmegaConf.merge(compose_config(f"model={name}").model, overrides)


def residual_blocks(depths: tuple[int, ...]) -> list[str]:
    return [f"layer{stage}_{k}" for stage, depth in enumerate(depths, 1) for k in range(depth)]


def encoders(depth: int) -> list[str]:
    return [f"encoder_{i}" for i in range(1, depth + 1)]


# every architecture and granularity, small enough to be fast: (name, overrides, image size, blocks)
CASES = {
    "convnet8": ("convnet8", {"width": 4, "fc_width": 16}, 24, CONVNET8_BLOCKS),
    "resnet18-stage": ("resnet18", {"width": 8}, 32, RESNET_STAGES),
    "resnet18-block": ("resnet18", {"width": 8, "granularity": "block"}, 32,
                       ["stem", *residual_blocks((2, 2, 2, 2))]),
    "resnet50-stage": ("resnet50", {"width": 8}, 32, RESNET_STAGES),
    "resnet50-block": ("resnet50", {"width": 8, "granularity": "block"}, 32,
                       ["stem", *residual_blocks((3, 4, 6, 3))]),
    "vit": ("vit", TINY_VIT, 32, ["embed", *encoders(6)]),
    "vit_b16": ("vit_b16", {**TINY_VIT, "patch_size": 8}, 32, ["embed", *encoders(12)]),
}
EXPECTED_DEPTH = {"convnet8": 7, "resnet18-stage": 5, "resnet18-block": 9, "resnet50-stage": 5,
                  "resnet50-block": 17, "vit": 7, "vit_b16": 13}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request) -> tuple[DictConfig, int, list[str], int]:
    name, overrides, size, blocks = CASES[request.param]
    return model_cfg(name, **overrides), size, blocks, EXPECTED_DEPTH[request.param]


@pytest.mark.parametrize("size", [24, 32, 64])
def test_convnet8_has_seven_transferable_blocks_and_a_head(size):
    net = convnet8(num_classes=10, image_size=size, width=8)
    assert net.block_names == CONVNET8_BLOCKS
    assert net.num_transferable == 7
    assert net(torch.zeros(2, 3, size, size)).shape == (2, 10)


def _output_scale(net: TransferNet) -> float:
    torch.manual_seed(0)
    return net.forward_prefix(torch.randn(64, 3, 24, 24), 7).std().item()


def test_kaiming_init_keeps_the_signal_of_convnet8_without_batchnorm():
    """PyTorch's default init shrinks activations layer by layer, which only BatchNorm undoes;
    He init keeps them at the input's scale, so a net without BatchNorm can train."""
    torch.manual_seed(0)
    shrunk = _output_scale(convnet8(10, 24, batchnorm=False).eval())
    torch.manual_seed(0)
    kept = _output_scale(convnet8(10, 24, batchnorm=False, init="kaiming").eval())
    assert shrunk < 0.05 and 0.3 < kept < 3


def test_every_architecture_has_its_blocks_a_head_and_block_costs(case):
    cfg, size, blocks, depth = case
    net = build_model(cfg, 10, size)
    assert net.block_names == blocks and net.num_transferable == depth
    assert net(torch.zeros(2, 3, size, size)).shape == (2, 10)
    flops = block_forward_flops(net, size)
    assert len(flops) == depth + 1 and all(f > 0 for f in flops)


def test_a_frozen_prefix_stays_frozen_in_every_architecture(case):
    cfg, size, _, depth = case
    net = build_model(cfg, 10, size)
    net.freeze_prefix(2)
    net.train()
    assert [block.training for block in net.blocks.values()] == [False] * 2 + [True] * (depth - 2)
    net(torch.randn(2, 3, size, size)).sum().backward()
    learned = [any(p.grad is not None for p in block.parameters()) for block in net.blocks.values()]
    assert learned == [False] * 2 + [True] * (depth - 2)


def test_block_names_builds_on_the_meta_device(case, monkeypatch):
    cfg, size, blocks, _ = case
    built: list[TransferNet] = []
    init = TransferNet.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(TransferNet, "__init__", spy)
    assert block_names(cfg, size) == blocks
    assert all(t.is_meta for t in built[0].state_dict().values())


@pytest.mark.parametrize("name", sorted(p.stem for p in MODEL_DIR.glob("*.yaml")))
def test_every_model_yaml_names_a_registered_architecture(name):
    assert block_names(model_cfg(name), 227 if name == "caffenet" else 224)


def test_registry_rejects_caffenet_on_small_images(smoke_cfg):
    cfg = smoke_cfg("model=caffenet")
    with pytest.raises(UserError, match="227"):
        build_model(cfg.model, 10, 24)


def test_unknown_models_and_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="convnet8.*resnet18.*vit_b16"):
        build_model(OmegaConf.create({"name": "nope"}), 10, 32)
    with pytest.raises(UserError, match="227"):
        block_names(model_cfg("caffenet"), 24)
    with pytest.raises(UserError, match="model.patch_size.*30"):
        block_names(model_cfg("vit"), 30)
    with pytest.raises(UserError, match="stage, block"):
        block_names(model_cfg("resnet18", granularity="layer"), 32)


@pytest.mark.parametrize("size, kernel, pooled", [(32, 3, False), (64, 3, False), (96, 7, True)])
def test_resnet_stem_auto_is_small_for_small_images(size, kernel, pooled):
    with torch.device("meta"):
        stem = build_model(model_cfg("resnet18"), 10, size).blocks["stem"]
    assert stem[0].kernel_size == (kernel, kernel)
    assert isinstance(stem[-1], torch.nn.MaxPool2d) == pooled


# --- torchvision's layouts ---------------------------------------------------------------


@pytest.mark.parametrize("name, overrides, torchvision_name", [
    ("resnet18", {"granularity": "block"}, "resnet18"),
    ("resnet50", {}, "resnet50"),
    ("vit_b16", {}, "vit_b_16"),
], ids=["resnet18-block", "resnet50-stage", "vit_b16"])
def test_torchvision_networks_rename_onto_our_blocks(name, overrides, torchvision_name):
    cfg = model_cfg(name, **overrides)
    with torch.device("meta"):
        theirs = to_our_layout(cfg, torchvision.models.get_model(torchvision_name).state_dict())
        ours = build_model(cfg, 1000, 224).state_dict()
    assert {k: v.shape for k, v in theirs.items()} == {
        k: v.shape for k, v in ours.items() if k.startswith("blocks.")}


def _perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """A torchvision network whose every tensor (norms, tokens, BN statistics too) differs
    from its neighbours', so a swapped key shows in the logits."""
    torch.manual_seed(1)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.randn_like(value), alpha=0.05)
    return model.eval()


@pytest.fixture(scope="module")
def torchvision_resnet18() -> torch.nn.Module:
    return _perturbed(torchvision.models.resnet18(num_classes=10))


@pytest.fixture(scope="module")
def torchvision_vit() -> torch.nn.Module:
    return _perturbed(torchvision.models.VisionTransformer(
        image_size=32, patch_size=4, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10))


@pytest.mark.parametrize("cfg, theirs, head", [
    (model_cfg("resnet18", stem="imagenet"), "torchvision_resnet18", {"2": "fc"}),
    (model_cfg("resnet18", stem="imagenet", granularity="block"), "torchvision_resnet18", {"2": "fc"}),
    (model_cfg("vit", depth=2, **TINY_VIT), "torchvision_vit", {"0": "encoder.ln", "2": "heads.head"}),
], ids=["resnet18-stage", "resnet18-block", "vit"])
def test_a_torchvision_state_dict_gives_our_network_torchvisions_outputs(cfg, theirs, head, request):
    theirs = request.getfixturevalue(theirs)
    ours = build_model(cfg, 10, 32).eval()
    missing, unexpected = ours.load_state_dict(to_our_layout(cfg, theirs.state_dict()), strict=False)
    assert not unexpected and all(key.startswith("head.") for key in missing)
    for ours_index, their_module in head.items():  # the head is never transferred: copy it by hand
        ours.head.get_submodule(ours_index).load_state_dict(theirs.get_submodule(their_module).state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cfg, torchvision_model", [
    (model_cfg("resnet18", stem="imagenet"), lambda: torchvision.models.resnet18(num_classes=10)),
    (model_cfg("vit", depth=2, **TINY_VIT),
     lambda: torchvision.models.VisionTransformer(image_size=32, patch_size=4, num_layers=2, num_heads=2,
                                                  hidden_dim=32, mlp_dim=64, num_classes=10)),
], ids=["resnet18", "vit"])
def test_seeded_inits_are_torchvisions(cfg, torchvision_model):
    torch.manual_seed(0)
    theirs = to_our_layout(cfg, torchvision_model().state_dict())
    torch.manual_seed(0)
    ours = build_model(cfg, 10, 32).state_dict()
    assert all(torch.equal(value, ours[key]) for key, value in theirs.items())


def test_to_our_layout_keeps_ours_and_reports_foreign_keys():
    state = {"blocks.conv1.0.weight": torch.zeros(1), "head.weight": torch.zeros(1)}
    assert to_our_layout(model_cfg("convnet8"), state) == state
    with pytest.raises(UserError, match="no zoo has model=convnet8"):
        to_our_layout(model_cfg("convnet8"), {"features.0.weight": torch.zeros(1)})
    with pytest.raises(UserError, match="'features.0.weight'"):
        to_our_layout(model_cfg("resnet18"), {"features.0.weight": torch.zeros(1)})
    legacy = {"encoder.layers.encoder_layer_0.mlp.linear_1.weight": torch.zeros(1),
              "encoder.layers.encoder_layer_0.mlp.linear_2.bias": torch.zeros(1)}
    assert list(to_our_layout(model_cfg("vit_b16"), legacy)) == ["blocks.encoder_1.mlp.0.weight",
                                                                 "blocks.encoder_1.mlp.3.bias"]


# --- torchvision's pretrained weights ----------------------------------------------------


@pytest.fixture
def offline_torch_home(tmp_path, monkeypatch) -> Path:
    """An empty ``TORCH_HOME`` and no network: the weights file is where the test puts it."""
    def no_network(url, *args, **kwargs):
        raise URLError("no network in tests")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    assert Path(torch.hub.get_dir()) == tmp_path / "hub"
    return tmp_path / "hub" / "checkpoints"


RESNET18_FILE = Path(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url).name


def test_pretrained_state_reads_torch_hubs_file_into_our_layout(offline_torch_home):
    theirs = torchvision.models.resnet18().state_dict()
    offline_torch_home.mkdir(parents=True)
    torch.save(theirs, offline_torch_home / RESNET18_FILE)
    cfg = model_cfg("resnet18", stem="imagenet")
    state = pretrained_state(cfg, "IMAGENET1K_V1", 224)
    with torch.device("meta"):
        ours = build_model(cfg, 10, 224).state_dict()
    assert state.keys() == {k for k in ours if k.startswith("blocks.")}
    assert torch.equal(state["blocks.layer3.1.conv2.weight"], theirs["layer3.1.conv2.weight"])


def test_pretrained_state_errors_name_the_fix(offline_torch_home):
    with pytest.raises(UserError, match="IMAGENET1K_V1, IMAGENET1K_V2"):
        pretrained_state(model_cfg("resnet50"), "IMAGENET22K", 224)
    with pytest.raises(UserError, match=re.escape(str(offline_torch_home / RESNET18_FILE)) + ".*TORCH_HOME"):
        pretrained_state(model_cfg("resnet18"), "IMAGENET1K_V1", 224)
    for name in ("convnet8", "vit"):
        with pytest.raises(UserError, match=r"source\.(checkpoint|weights)=PATH"):
            pretrained_state(model_cfg(name), "IMAGENET1K_V1", 224)


# --- the paper's networks ----------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_caffenet() -> TransferNet:
    torch.manual_seed(0)
    return build_model(model_cfg("caffenet"), 500, 227)


@torch.no_grad()  # float() of parameters
def test_caffenet_matches_the_reference_architecture(seeded_caffenet):
    net = seeded_caffenet
    conv = {name: net.blocks[name][0] for name in ["conv1", "conv2", "conv3", "conv4", "conv5"]}
    assert [c.out_channels for c in conv.values()] == [96, 256, 384, 384, 256]
    assert [c.groups for c in conv.values()] == [1, 2, 1, 2, 2]
    assert conv["conv1"].kernel_size == (11, 11) and conv["conv1"].stride == (4, 4)
    assert isinstance(net.blocks["conv1"][3], torch.nn.LocalResponseNorm)
    assert isinstance(net.blocks["fc6"][-1], torch.nn.Dropout)
    bias = {n: float(net.blocks[n][0].bias.mean()) for n in conv} | {
        "fc6": float(net.blocks["fc6"][1].bias.mean()), "fc7": float(net.blocks["fc7"][0].bias.mean()),
        "fc8": float(net.head.bias.mean())}
    assert bias == {"conv1": 0, "conv2": 1, "conv3": 0, "conv4": 1, "conv5": 1, "fc6": 1, "fc7": 1,
                    "fc8": 0}
    assert abs(float(conv["conv3"].weight.std()) - 0.01) < 1e-3
    assert abs(float(net.blocks["fc7"][0].weight.std()) - 0.005) < 1e-4
    assert net.head.out_features == 500
    net.eval()
    assert net(torch.zeros(1, 3, 227, 227)).shape == (1, 500)


def _fingerprint(state: dict[str, torch.Tensor]) -> tuple[str, float, float]:
    """Names and shapes exactly; values as two order-sensitive sums (exact equality would
    also compare CPU random-number kernels, whose last bits differ between machines)."""
    layout = hashlib.sha256(repr([(k, tuple(v.shape)) for k, v in state.items()]).encode()).hexdigest()
    norms = sum(i * float(torch.linalg.vector_norm(v.float(), dtype=torch.float64))
                for i, v in enumerate(state.values(), 1))
    leading = sum(i * float(v.flatten()[:8].double().sum()) for i, v in enumerate(state.values(), 1))
    return layout[:16], norms, leading


# computed from the models before the registry (git: ea97818), seeded with 0
BEFORE_REGISTRY = {
    "convnet8": ("26f813afd4781f28", 1870.7250294257433, 1250.3319773465628),
    "convnet8-nobn": ("61fe3d50d0eda03f", 199.13239127809538, -4.507652301079361),
    "caffenet": ("8e3e4929c4a348e9", 3046.0244125975523, 383.71047481778805),
}


def _assert_same_init(state: dict[str, torch.Tensor], expected: tuple[str, float, float]) -> None:
    layout, norms, leading = _fingerprint(state)
    assert layout == expected[0]
    assert (norms, leading) == pytest.approx(expected[1:], rel=1e-6)


@pytest.mark.parametrize("name, overrides, size", [
    ("convnet8", {}, 32),
    ("convnet8-nobn", {"width": 8, "fc_width": 32, "batchnorm": False}, 24),
])
def test_convnet8_init_is_unchanged_by_the_registry(name, overrides, size):
    torch.manual_seed(0)
    _assert_same_init(build_model(model_cfg("convnet8", **overrides), 10, size).state_dict(),
                      BEFORE_REGISTRY[name])


def test_caffenet_init_is_unchanged_by_the_registry(seeded_caffenet):
    _assert_same_init(seeded_caffenet.state_dict(), BEFORE_REGISTRY["caffenet"])
