"""Pretrained weights by name, their preprocessing, and state dicts in a zoo's key layout
renamed to ours.

An architecture registers a :class:`Weights` (benchmark.models.registry): torchvision's
enums for our ResNets and ViT-B/16 and for ``model=torchvision``, timm's pretrained tags and
Hugging Face hub ids for ``model=timm`` (benchmark/models/timm_models.py).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import torch
from omegaconf import DictConfig

from benchmark.preprocessing import Preprocessing
from benchmark.errors import UserError

State = dict[str, torch.Tensor]
OUR_PREFIXES = ("blocks.", "head.", "net.")
# A zoo's state-dict key -> ours (None: drop it, e.g. the classifier); a key the function does not
# know comes back unchanged, and the caller reports it.
Rename = Callable[[str, DictConfig], str | None]


class Weights(Protocol):
    """An architecture's pretrained weights."""

    def state(self, cfg: DictConfig, name: str, image_size: int) -> State:
        """The weights called ``name`` in our layout for a model built for ``image_size`` px
        inputs (downloaded when not cached)."""

    def preprocessing(self, cfg: DictConfig, name: str) -> Preprocessing:
        """What the weights ``name`` were trained on (known without downloading them)."""

    def to_ours(self, cfg: DictConfig, state: Mapping[str, torch.Tensor]) -> State:
        """A state dict in the zoo's own layout, renamed to ours."""


def renamed(cfg: DictConfig, state: Mapping[str, torch.Tensor], rename: Rename, zoo: str) -> State:
    """``state`` with each key renamed by ``rename``; a key it does not know is an error."""
    ours = {}
    for key, value in state.items():
        new = rename(key, cfg)
        if new is not None and not new.startswith(OUR_PREFIXES):
            raise UserError(f"the state dict's key {key!r} is neither this benchmark's layout nor "
                            f"{zoo}'s for model={cfg.name}; give a state dict of that architecture, "
                            f"saved by this benchmark or by {zoo}")
        if new is not None:
            ours[new] = value
    return ours


@dataclass(frozen=True)
class TorchvisionWeights:
    """torchvision's weight enums (e.g. ``IMAGENET1K_V2``) of ``torchvision_name(cfg)``."""

    torchvision_name: Callable[[DictConfig], str | None]
    rename: Rename

    def state(self, cfg: DictConfig, name: str, image_size: int) -> State:
        spec = self._enum(cfg, name)
        try:
            state = spec.get_state_dict(progress=False)
        except OSError as error:  # urllib's URLError and socket errors are OSErrors
            raise UserError(f"cannot download torchvision's {self.torchvision_name(cfg)} weights {name} from "
                            f"{spec.url} ({error}); put that file at {checkpoint_path(spec.url)} (the "
                            "directory follows TORCH_HOME), or give its path as source.weights=PATH") from None
        return self.to_ours(cfg, state)

    def preprocessing(self, cfg: DictConfig, name: str) -> Preprocessing:
        spec = self._enum(cfg, name)
        transform = spec.transforms()
        crop, resize = transform.crop_size[0], transform.resize_size[0]
        return Preprocessing(tuple(transform.mean), tuple(transform.std),
                             f"torchvision {self.torchvision_name(cfg)} {name}", crop,
                             transform.interpolation.value, round(crop / resize, 4))

    def to_ours(self, cfg: DictConfig, state: Mapping[str, torch.Tensor]) -> State:
        return renamed(cfg, state, self.rename, "torchvision")

    def _enum(self, cfg: DictConfig, name: str) -> Any:
        torchvision_name = self.torchvision_name(cfg)
        if torchvision_name is None:
            raise UserError(f"torchvision has no pretrained weights for model={cfg.name}; give a weights "
                            "file as source.weights=PATH (a network of this architecture)")
        from torchvision.models import get_model_weights  # slow to import; only this path needs it
        options = get_model_weights(torchvision_name)
        if name not in options.__members__:
            raise UserError(f"source.weights={name} is neither a file nor a torchvision weights name for "
                            f"{torchvision_name}; use one of {', '.join(options.__members__)}, or the path "
                            "of a weights file")
        return options[name]


def checkpoint_path(url: str) -> Path:
    """Where torch.hub keeps (and first looks for) the file at ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
