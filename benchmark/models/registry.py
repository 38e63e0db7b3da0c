"""Architectures by name.

Each model module registers its builder with :func:`register`; importing
``benchmark.models`` imports every module of the package, so adding an architecture
is one module here plus one ``conf/model/<name>.yaml``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from benchmark.preprocessing import Preprocessing
from benchmark.errors import UserError
from benchmark.models.net import TransferNet
from benchmark.models.pretrained import OUR_PREFIXES, State, Weights

Builder = Callable[[DictConfig, int, int], TransferNet]


@dataclass(frozen=True)
class Architecture:
    build: Builder
    weights: Weights | None  # its pretrained weights by name (None: only files of our layout)


_ARCHITECTURES: dict[str, Architecture] = {}


def register(name: str, weights: Weights | None = None) -> Callable[[Builder], Builder]:
    """Decorator: ``build(cfg, num_classes, image_size)`` makes ``model=<name>``."""
    def decorate(build: Builder) -> Builder:
        if name in _ARCHITECTURES:
            raise ValueError(f"model {name!r} is registered twice")
        _ARCHITECTURES[name] = Architecture(build, weights)
        return build
    return decorate


def architecture(name: str) -> Architecture:
    if name not in _ARCHITECTURES:
        raise UserError(f"model={name} is unknown; use one of {', '.join(sorted(_ARCHITECTURES))} "
                        "(a new one is benchmark/models/<name>.py plus conf/model/<name>.yaml)")
    return _ARCHITECTURES[name]


def model_label(cfg: DictConfig) -> str:
    """The model's name in records and logs: ``convnet8``, or a zoo's ``timm:resnet50``."""
    return f"{cfg.name}:{cfg.arch}" if "arch" in cfg else cfg.name


def _weights(cfg: DictConfig) -> Weights:
    weights = architecture(cfg.name).weights
    if weights is None:
        raise UserError(f"model={cfg.name} has no pretrained weights by name; give a network of this "
                        "architecture saved by this benchmark (source.checkpoint=PATH)")
    return weights


def to_our_layout(cfg: DictConfig, state: Mapping[str, torch.Tensor]) -> State:
    """``state`` in the layout of the zoo ``model=cfg.name`` comes from, renamed to ours; a state
    dict in our layout already comes back unchanged."""
    if all(key.startswith(OUR_PREFIXES) for key in state):
        return dict(state)
    if architecture(cfg.name).weights is None:
        raise UserError(f"the state dict's keys (e.g. {next(iter(state))!r}) are not this benchmark's "
                        f"layout (blocks.<name>.…) and no zoo has model={cfg.name}; give a network "
                        "of this architecture saved by this benchmark")
    return _weights(cfg).to_ours(cfg, state)


def pretrained_state(cfg: DictConfig, name: str, image_size: int) -> State:
    """The pretrained weights ``name`` of ``model=cfg.name`` built for ``image_size`` px inputs, in
    our layout (downloaded when the
    zoo's cache lacks them; offline, one error naming the file to fetch)."""
    return _weights(cfg).state(cfg, name, image_size)


def weights_preprocessing(cfg: DictConfig, name: str) -> Preprocessing:
    """The preprocessing the pretrained weights ``name`` were trained with."""
    return _weights(cfg).preprocessing(cfg, name)


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
    """The transferable blocks' names, from a build on the meta device (no memory, no init cost;
    on the CPU for the few zoo models whose init reads its tensors)."""
    try:
        with torch.device("meta"):
            return architecture(cfg.name).build(cfg, 1, image_size).block_names
    except UserError:
        raise
    except Exception:  # noqa: BLE001 (a wrong setting fails again below, as one UserError)
        return build_model(cfg, 1, image_size).block_names

