"""torchvision's networks in our layout: its pretrained weights by name, and any state dict
in its key layout renamed to ours (``blocks.<block>.…``, classifier dropped)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from omegaconf import DictConfig

from benchmark.errors import UserError
from benchmark.models.registry import architecture

OUR_PREFIXES = ("blocks.", "head.")


def to_our_layout(cfg: DictConfig, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with torchvision's keys for ``model=cfg.name`` renamed to ours; a state dict
    already in our layout comes back unchanged."""
    if all(key.startswith(OUR_PREFIXES) for key in state):
        return dict(state)
    rename = architecture(cfg.name).rename
    if rename is None:
        raise UserError(f"the state dict's keys (e.g. {next(iter(state))!r}) are not this benchmark's "
                        f"layout (blocks.<name>.…) and torchvision has no model={cfg.name}; give a "
                        "network of this architecture saved by this benchmark")
    renamed = {}
    for key, value in state.items():
        ours = rename(key, cfg)
        if ours is not None and not ours.startswith("blocks."):
            raise UserError(f"the state dict's key {key!r} is neither this benchmark's layout nor "
                            f"torchvision's for model={cfg.name}; give a state dict of that "
                            "architecture, saved by this benchmark or by torchvision")
        if ours is not None:
            renamed[ours] = value
    return renamed


def pretrained_state(cfg: DictConfig, weights: str) -> dict[str, torch.Tensor]:
    """torchvision's pretrained ``weights`` (e.g. ``IMAGENET1K_V1``) for ``model=cfg.name``, in our
    layout; read from torch's hub cache (``$TORCH_HOME/hub/checkpoints``), else downloaded."""
    spec = _weights(cfg.name, weights)
    try:
        state = spec.get_state_dict(progress=False)
    except OSError as error:  # urllib's URLError and socket errors are OSErrors
        raise UserError(f"cannot download torchvision's {cfg.name} weights {weights} from {spec.url} "
                        f"({error}); put that file at {checkpoint_path(spec.url)} (the directory "
                        "follows TORCH_HOME), or use source.checkpoint=PATH") from None
    return to_our_layout(cfg, state)


def checkpoint_path(url: str) -> Path:
    """Where torch.hub keeps (and first looks for) the file at ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def _weights(model: str, weights: str) -> Any:
    torchvision_name = architecture(model).torchvision_name
    if torchvision_name is None:
        raise UserError(f"torchvision has no pretrained weights for model={model}; "
                        "use source.checkpoint=PATH (a network of this architecture saved with torch.save)")
    from torchvision.models import get_model_weights  # slow to import; only this path needs it
    options = get_model_weights(torchvision_name)
    if weights not in options.__members__:
        raise UserError(f"source.weights={weights} is not a torchvision weights name for model={model}; "
                        f"use one of {', '.join(options.__members__)}")
    return options[weights]
