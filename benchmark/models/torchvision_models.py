"""Any torchvision classifier by name: ``model=torchvision model.arch=<name>``.

Blocks are the model's top-level children in registration (= execution) order, an
``nn.Sequential`` or ``nn.ModuleList`` among them opened one level (``features.0``, ``features.1``, ... of VGG,
AlexNet, EfficientNet, ConvNeXt; ``layer1.0``, ... of ResNet); a normalisation layer joins the
block before it (``conv1+bn1``), and children without parameters (activations, pooling,
dropout) go with the block before them. The last child with
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
from benchmark.models.net import under
from benchmark.models.zoo import (NET, Partition, ZooNet, block_name, check_partition, covering_paths,
                                   explicit_partition)


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


NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def _units(net: nn.Module) -> list[list[str]]:
    """Top-level children with parameters, a Sequential or ModuleList opened one level, in order; a
    normalisation layer joins the unit before it (a convolution and its BatchNorm are one layer)."""
    units: list[list[str]] = []
    for name, child in net.named_children():
        parts = child.named_children() if isinstance(child, (nn.Sequential, nn.ModuleList)) else [("", child)]
        for part, module in parts:
            if next(module.parameters(), None) is None:
                continue
            path = f"{name}.{part}" if part else name
            if isinstance(module, NORMS) and units:
                units[-1].append(path)
            else:
                units.append([path])
    return units


def torchvision_partition(net: nn.Module, cfg: DictConfig) -> Partition:
    how_to_fix = f"list them as model.blocks=[...] (module names of torchvision's {cfg.arch}, several joined by +)"
    *units, classifier = _units(net)
    parameters = [name for name, _ in net.named_parameters()]
    head = covering_paths(parameters, _under(parameters, classifier))
    if cfg.blocks:
        return explicit_partition(net, list(cfg.blocks), head, how_to_fix)
    own = [name for name, _ in net.named_parameters(recurse=False)]  # e.g. ViT's class token
    paths = [covering_paths(parameters, (own if i == 0 else []) + _under(parameters, unit))
             for i, unit in enumerate(units)]
    partition = Partition({block_name(p, i == 0): p for i, p in enumerate(paths)}, head)
    check_partition(net, partition, how_to_fix)
    return partition


def _under(parameters: list[str], paths: list[str]) -> list[str]:
    return [name for name in parameters if under(name, paths)]


@register("torchvision", TorchvisionWeights(lambda cfg: cfg.arch, lambda key, cfg: f"{NET}.{key}"))
def torchvision_model(cfg: DictConfig, num_classes: int, image_size: int) -> ZooNet:
    net = _create(cfg, num_classes)
    return ZooNet(net, torchvision_partition(net, cfg))
