"""CaffeNet (AlexNet as trained by Caffe), exactly as in Yosinski et al. 2014.

Grouped convolutions, LRN after pool1/pool2, dropout on fc6/fc7, Gaussian init
(std 0.01; fc6/fc7 0.005) and bias constants (0 for conv1, conv3, fc8; 1 elsewhere).
Input: 227 x 227 RGB.
"""
from __future__ import annotations

from omegaconf import DictConfig
from torch import nn

from benchmark.errors import UserError
from benchmark.models.net import ChainNet
from benchmark.models.registry import register


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, groups: int = 1,
          bias: float = 0.0) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups)
    nn.init.normal_(conv.weight, std=0.01)
    nn.init.constant_(conv.bias, bias)
    return conv


def _fc(cin: int, cout: int, std: float, bias: float) -> nn.Linear:
    fc = nn.Linear(cin, cout)
    nn.init.normal_(fc.weight, std=std)
    nn.init.constant_(fc.bias, bias)
    return fc


def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=1.0)


def caffenet(num_classes: int, dropout: float = 0.5) -> ChainNet:
    pool = lambda: nn.MaxPool2d(3, 2)  # noqa: E731
    blocks = {
        "conv1": nn.Sequential(_conv(3, 96, 11, stride=4), nn.ReLU(inplace=True), pool(), _lrn()),
        "conv2": nn.Sequential(_conv(96, 256, 5, pad=2, groups=2, bias=1.0), nn.ReLU(inplace=True),
                               pool(), _lrn()),
        "conv3": nn.Sequential(_conv(256, 384, 3, pad=1), nn.ReLU(inplace=True)),
        "conv4": nn.Sequential(_conv(384, 384, 3, pad=1, groups=2, bias=1.0), nn.ReLU(inplace=True)),
        "conv5": nn.Sequential(_conv(384, 256, 3, pad=1, groups=2, bias=1.0), nn.ReLU(inplace=True),
                               pool()),
        "fc6": nn.Sequential(nn.Flatten(), _fc(256 * 6 * 6, 4096, 0.005, 1.0), nn.ReLU(inplace=True),
                             nn.Dropout(dropout)),
        "fc7": nn.Sequential(_fc(4096, 4096, 0.005, 1.0), nn.ReLU(inplace=True), nn.Dropout(dropout)),
    }
    return ChainNet(blocks, _fc(4096, num_classes, 0.01, 0.0))


@register("caffenet")
def from_config(cfg: DictConfig, num_classes: int, image_size: int) -> ChainNet:
    if image_size != 227:
        raise UserError(f"model=caffenet needs 227 px inputs but the dataset gives {image_size} px; "
                        "use model=convnet8 for small images")
    return caffenet(num_classes, dropout=cfg.dropout)
