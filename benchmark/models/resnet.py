"""ResNet-18 and ResNet-50 (He et al. 2016) from torchvision's own residual blocks.

``model.granularity`` cuts the network into transferable blocks: ``stage`` gives
``stem, layer1..layer4``; ``block`` gives ``stem`` and every residual block
(``layer1_0, layer1_1, ...``). Modules are named as in torchvision (``conv1``/``bn1``
become ``stem.0``/``stem.1``), so its state dicts rename 1:1 (:func:`torchvision_key`),
and the init is torchvision's in the same order: seeded, ``width=64`` with the ImageNet
stem gives torchvision's network exactly.
"""
from __future__ import annotations

import re

from omegaconf import DictConfig
from torch import nn

from benchmark.errors import UserError
from benchmark.models.net import ChainNet
from benchmark.models.pretrained import TorchvisionWeights
from benchmark.models.registry import register

SMALL_STEM_MAX_SIZE = 64  # stem=auto: the small (CIFAR-style) stem up to this image size
STEMS = ("imagenet", "small")
GRANULARITIES = ("stage", "block")
STEM_KEYS = {"conv1": "stem.0", "bn1": "stem.1"}  # torchvision's module -> ours


def _stem_kind(stem: str, image_size: int) -> str:
    if stem == "auto":
        return "small" if image_size <= SMALL_STEM_MAX_SIZE else "imagenet"
    if stem not in STEMS:
        raise UserError(f"model.stem={stem} is not one of auto, {', '.join(STEMS)}; pick one of them")
    return stem


def _stem(kind: str, width: int) -> nn.Sequential:
    """imagenet: torchvision's 7x7/2 conv + max-pool (4x downsampling); small: one 3x3/1 conv."""
    if kind == "imagenet":
        return nn.Sequential(nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(width),
                             nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                         nn.ReLU(inplace=True))


def _stage(block: type[nn.Module], inplanes: int, planes: int, depth: int, stride: int) -> list[nn.Module]:
    """The residual blocks of one stage, as torchvision's ``ResNet._make_layer`` makes them."""
    from torchvision.models.resnet import conv1x1

    out = planes * block.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(conv1x1(inplanes, out, stride), nn.BatchNorm2d(out))
    return [block(inplanes, planes, stride, downsample), *(block(out, planes) for _ in range(depth - 1))]


def _init(net: nn.Module) -> None:
    """torchvision's ResNet init, applied (as there) after every module exists."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.constant_(module.weight, 1)
            nn.init.constant_(module.bias, 0)


def resnet(block: type[nn.Module], depths: tuple[int, ...], cfg: DictConfig, num_classes: int,
           image_size: int) -> ChainNet:
    """A ResNet of ``block``s, ``depths[i]`` of them in stage i+1 (planes width, 2w, 4w, 8w)."""
    if cfg.granularity not in GRANULARITIES:
        raise UserError(f"model.granularity={cfg.granularity} is not one of {', '.join(GRANULARITIES)}; "
                        "pick one of them")
    blocks: dict[str, nn.Module] = {"stem": _stem(_stem_kind(cfg.stem, image_size), cfg.width)}
    inplanes = cfg.width
    for index, depth in enumerate(depths):
        planes = cfg.width * 2 ** index
        residual = _stage(block, inplanes, planes, depth, stride=1 if index == 0 else 2)
        inplanes = planes * block.expansion
        stage = f"layer{index + 1}"
        if cfg.granularity == "stage":
            blocks[stage] = nn.Sequential(*residual)
        else:
            blocks |= {f"{stage}_{k}": module for k, module in enumerate(residual)}
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(inplanes, num_classes))
    net = ChainNet(blocks, head)
    _init(net)
    return net


def torchvision_key(key: str, cfg: DictConfig) -> str | None:
    """torchvision's ResNet state-dict key -> ours (the classifier ``fc`` is dropped)."""
    module, _, rest = key.partition(".")
    if module == "fc":
        return None
    if module in STEM_KEYS:
        return f"blocks.{STEM_KEYS[module]}.{rest}"
    match = re.fullmatch(r"(layer\d+)\.(\d+)\.(.+)", key)
    if match is None:
        return key
    stage, index, rest = match.groups()
    separator = "." if cfg.granularity == "stage" else "_"
    return f"blocks.{stage}{separator}{index}.{rest}"


@register("resnet18", TorchvisionWeights(lambda cfg: "resnet18", torchvision_key))
def resnet18(cfg: DictConfig, num_classes: int, image_size: int) -> ChainNet:
    from torchvision.models.resnet import BasicBlock  # slow to import; only ResNets need it

    return resnet(BasicBlock, (2, 2, 2, 2), cfg, num_classes, image_size)


@register("resnet50", TorchvisionWeights(lambda cfg: "resnet50", torchvision_key))
def resnet50(cfg: DictConfig, num_classes: int, image_size: int) -> ChainNet:
    from torchvision.models.resnet import Bottleneck  # slow to import; only ResNets need it

    return resnet(Bottleneck, (3, 4, 6, 3), cfg, num_classes, image_size)
