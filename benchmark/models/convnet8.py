"""convnet8: CaffeNet's 5 conv + 3 fc topology scaled down for 24-64 px inputs.

Channel widths keep AlexNet's proportions (96:256:384:384:256 ~ 1:2.5:4:4:2.5 of
``width``); pooling after conv1, conv2 and conv5 as in AlexNet; optional
BatchNorm after every convolution; dropout on fc6/fc7.
"""
from __future__ import annotations

from omegaconf import DictConfig
from torch import nn

from benchmark.models.net import ChainNet
from benchmark.models.registry import register

CONV_WIDTHS = (1.0, 2.5, 4.0, 4.0, 2.5)
POOLED = (True, True, False, False, True)


def _conv_block(cin: int, cout: int, pool: bool, batchnorm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def _fc_block(cin: int, cout: int, dropout: float, flatten: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()] if flatten else []
    layers += [nn.Linear(cin, cout), nn.ReLU(inplace=True), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def convnet8(num_classes: int, image_size: int, width: int = 16, fc_width: int = 128,
             batchnorm: bool = True, dropout: float = 0.5, init: str = "default") -> ChainNet:
    channels = [3] + [max(1, round(width * m)) for m in CONV_WIDTHS]
    blocks: dict[str, nn.Module] = {}
    size = image_size
    for i, pool in enumerate(POOLED):
        blocks[f"conv{i + 1}"] = _conv_block(channels[i], channels[i + 1], pool, batchnorm)
        size = size // 2 if pool else size
    blocks["fc6"] = _fc_block(channels[-1] * size * size, fc_width, dropout, flatten=True)
    blocks["fc7"] = _fc_block(fc_width, fc_width, dropout)
    net = ChainNet(blocks, nn.Linear(fc_width, num_classes))
    if init == "kaiming":
        net.apply(_kaiming)
    return net


def _kaiming(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


@register("convnet8")
def from_config(cfg: DictConfig, num_classes: int, image_size: int) -> ChainNet:
    return convnet8(num_classes, image_size, width=cfg.width, fc_width=cfg.fc_width,
                    batchnorm=cfg.batchnorm, dropout=cfg.dropout, init=cfg.init)
