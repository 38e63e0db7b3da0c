"""Architectures by name.

Each model module registers its builder with :func:`register`; importing
``benchmark.models`` imports every module of the package, so adding an architecture
is one module here plus one ``conf/model/<name>.yaml``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from benchmark.data import nominal_image_size
from benchmark.errors import UserError
from benchmark.models.net import TransferNet

Builder = Callable[[DictConfig, int, int], TransferNet]
# A torchvision state-dict key -> ours (None: drop it, e.g. the classifier); a key the
# function does not know comes back unchanged, and the caller reports it.
Rename = Callable[[str, DictConfig], str | None]


@dataclass(frozen=True)
class Architecture:
    build: Builder
    torchvision_name: str | None  # the torchvision.models name whose pretrained weights fit
    rename: Rename | None         # None: torchvision has no such network


_ARCHITECTURES: dict[str, Architecture] = {}


def register(name: str, torchvision_name: str | None = None,
             rename: Rename | None = None) -> Callable[[Builder], Builder]:
    """Decorator: ``build(cfg, num_classes, image_size)`` makes ``model=<name>``."""
    def decorate(build: Builder) -> Builder:
        if name in _ARCHITECTURES:
            raise ValueError(f"model {name!r} is registered twice")
        _ARCHITECTURES[name] = Architecture(build, torchvision_name, rename)
        return build
    return decorate


def architecture(name: str) -> Architecture:
    if name not in _ARCHITECTURES:
        raise UserError(f"model={name} is unknown; use one of {', '.join(sorted(_ARCHITECTURES))} "
                        "(a new one is benchmark/models/<name>.py plus conf/model/<name>.yaml)")
    return _ARCHITECTURES[name]


def build_model(cfg: DictConfig, num_classes: int, image_size: int) -> TransferNet:
    """A freshly initialised network from the ``model`` config group; settings of the wrong
    type or value (``model.width=abc``) end in one :class:`UserError`."""
    build = architecture(cfg.name).build
    try:
        return build(cfg, num_classes, image_size)
    except (TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"model={cfg.name} cannot be built from its settings ({error}); check the "
                        "model.* values (python -m benchmark --cfg job prints them)") from None


def block_names(cfg: DictConfig, image_size: int) -> list[str]:
    """The transferable blocks' names, from a build on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        return build_model(cfg, 1, image_size).block_names


def model_blocks(cfg: DictConfig) -> list[str]:
    """The run config's model's transferable blocks (its depth L is their number), known before
    any data is loaded or weight allocated: what ``n`` ranges over."""
    return block_names(cfg.model, nominal_image_size(cfg.dataset))
