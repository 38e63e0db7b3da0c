import pytest
import torch

from benchmark.models.caffenet import caffenet as build_caffenet
from benchmark.models.convnet8 import convnet8
from benchmark.protocol import NUM_LAYERS


@pytest.mark.parametrize("size", [24, 32, 64])
def test_convnet8_has_seven_transferable_blocks_and_a_head(size):
    net = convnet8(num_classes=10, image_size=size, width=8)
    assert net.block_names == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    assert net.num_transferable == NUM_LAYERS
    assert net(torch.zeros(2, 3, size, size)).shape == (2, 10)


def test_caffenet_matches_the_reference_architecture():
    net = build_caffenet(num_classes=500)
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


def test_registry_rejects_caffenet_on_small_images(smoke_cfg):
    from benchmark.errors import UserError
    from benchmark.models import build_model

    cfg = smoke_cfg("model=caffenet")
    with pytest.raises(UserError, match="227"):
        build_model(cfg.model, 10, 24)
