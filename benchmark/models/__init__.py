"""Architectures by name. Each builds a :class:`TransferNet` of 7 transferable blocks."""
from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from benchmark.errors import UserError
from benchmark.models.caffenet import caffenet
from benchmark.models.convnet8 import convnet8
from benchmark.models.net import TransferNet

__all__ = ["TransferNet", "build_model", "MODELS"]


def _build_convnet8(cfg: DictConfig, num_classes: int, image_size: int) -> TransferNet:
    return convnet8(num_classes, image_size, width=cfg.width, fc_width=cfg.fc_width,
                    batchnorm=cfg.batchnorm, dropout=cfg.dropout)


def _build_caffenet(cfg: DictConfig, num_classes: int, image_size: int) -> TransferNet:
    if image_size != 227:
        raise UserError(f"model=caffenet needs 227 px inputs but the dataset gives {image_size} px; "
                        "use model=convnet8 for small images")
    return caffenet(num_classes, dropout=cfg.dropout)


MODELS: dict[str, Callable[[DictConfig, int, int], TransferNet]] = {
    "convnet8": _build_convnet8,
    "caffenet": _build_caffenet,
}


def build_model(cfg: DictConfig, num_classes: int, image_size: int) -> TransferNet:
    """Build a freshly initialised network from the ``model`` config group."""
    return MODELS[cfg.name](cfg, num_classes, image_size)
