"""Any torchvision classifier by name: ``model=torchvision model.arch=<name>``.

Blocks are the model's top-level children in registration (= execution) order, an
``nn.Sequential`` among them opened one level (``features.0``, ``features.1``, ... of VGG,
AlexNet, EfficientNet, ConvNeXt; ``layer1.0``, ... of ResNet); children without parameters
(activations, pooling, dropout) go with the block before them. The last child with
parameters is the classifier: the head. Parameters held by the model itself (ViT's class token)
go with the first block. ``model.blocks=[...]`` lists the blocks by module name instead.
Pretrained weights: torchvision's enums (``source.weights=IMAGENET1K_V2``) with the preprocessing
of their ``transforms()``.
"""
from __future__ import annotations

import difflib

from omegaconf import DictConfig, OmegaConf
from torch import nn

from benchmark.errors import UserError
from benchmark.models.pretrained import TorchvisionWeights
from benchmark.models.registry import register
from benchmark.models.zoo import NET, Partition, ZooNet, check_partition, explicit_partition


def _classifiers() -> list[str]:
    import torchvision.models

    return torchvision.models.list_models(module=torchvision.models)


def _create(cfg: DictConfig, num_classes: int) -> nn.Module:
    import torchvision.models

    if cfg.arch not in _classifiers():
        close = difflib.get_close_matches(cfg.arch, _classifiers(), n=5, cutoff=0.6)
        raise UserError(f"model.arch={cfg.arch} is not a torchvision classifier; "
                        + (f"did you mean {', '.join(close)}?" if close
                           else "torchvision.models.list_models(module=torchvision.models) lists them"))
    kwargs = OmegaConf.to_container(cfg.kwargs, resolve=True) if cfg.kwargs else {}
    return torchvision.models.get_model(cfg.arch, weights=None, num_classes=num_classes, **kwargs)


def _units(net: nn.Module) -> list[str]:
    """Top-level children with parameters, a Sequential opened one level, in order."""
    units = []
    for name, child in net.named_children():
        parts = child.named_children() if isinstance(child, nn.Sequential) else [("", child)]
        units += [f"{name}.{part}" if part else name for part, module in parts
                  if next(module.parameters(), None) is not None]
    return units


def torchvision_partition(net: nn.Module, cfg: DictConfig) -> Partition:
    how_to_fix = f"list them as model.blocks=[...] (module names of torchvision's {cfg.arch}, several joined by +)"
    *blocks, classifier = _units(net)
    if cfg.blocks:
        return explicit_partition(net, list(cfg.blocks), (classifier,), how_to_fix)
    own = tuple(name for name, _ in net.named_parameters(recurse=False))
    partition = Partition({name: (*(own if i == 0 else ()), name) for i, name in enumerate(blocks)},
                          (classifier,))
    check_partition(net, partition, how_to_fix)
    return partition


@register("torchvision", TorchvisionWeights(lambda cfg: cfg.arch, lambda key, cfg: f"{NET}.{key}"))
def torchvision_model(cfg: DictConfig, num_classes: int, image_size: int) -> ZooNet:
    net = _create(cfg, num_classes)
    return ZooNet(net, torchvision_partition(net, cfg))
