"""External sources: a network, not trained by this run's sweep, whose first n blocks a
run copies (``treatment=external``).

``source.checkpoint=PATH``: a file of the same architecture: a base network from
another sweep (``cache_dir/<key>/model.pt``, whose path every base run records in its
result.json), a state dict saved with ``torch.save`` (ours, or torchvision's layout for
the architectures torchvision has), or a dict holding one under ``state_dict``/``model``.
``source.weights=NAME``: torchvision's pretrained weights (benchmark.models.pretrained_state).
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import torch
from omegaconf import DictConfig

from benchmark.errors import UserError
from benchmark.models import TransferNet, pretrained_state, to_our_layout
from benchmark.store.atomic import read_verified

State = dict[str, torch.Tensor]


def external_state(source: DictConfig, model: DictConfig) -> tuple[State, str]:
    """The source network's state dict in our layout, and a description of where it came from."""
    if source.checkpoint is not None:
        path = Path(source.checkpoint).expanduser().absolute()
        return to_our_layout(model, read_checkpoint(path)), str(path)
    return pretrained_state(model, source.weights), f"torchvision {model.name} {source.weights}"


def read_checkpoint(path: Path) -> State:
    """A state dict from a checkpoint file, in whichever of the accepted forms it is."""
    if not path.is_file():
        raise UserError(f"source.checkpoint={path} does not exist; give the path of a checkpoint "
                        "file (e.g. a base network's model.pt, named in its run's result.json)")
    data = path.read_bytes()
    try:
        data = read_verified(path)  # a base network from this tool's cache
    except ValueError:
        pass  # a plain torch.save file
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        raise UserError(f"source.checkpoint={path} is not a readable PyTorch checkpoint ({error}); "
                        "save the network's state_dict() with torch.save") from None
    return _state_dict(loaded, path)


def _state_dict(loaded: object, path: Path) -> State:
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not (isinstance(loaded, Mapping) and loaded
            and all(isinstance(v, torch.Tensor) for v in loaded.values())):
        raise UserError(f"source.checkpoint={path} holds no state dict (a mapping of parameter "
                        "names to tensors); save the network's state_dict() with torch.save")
    return dict(loaded)


def check_blocks_match(model: TransferNet, state: Mapping[str, torch.Tensor], model_name: str,
                       origin: str | None) -> None:
    """Every block of ``model`` must find parameters and buffers of the same names and shapes
    in ``state``; otherwise one error naming the first block that does not match."""
    for index, name in enumerate(model.block_names, start=1):
        problem = _block_difference(model.blocks[name].state_dict(), state, f"blocks.{name}.")
        if problem:
            raise UserError(f"the source {origin} does not match model={model_name}: block {index} "
                            f"'{name}' differs ({problem}); build the model with the settings the "
                            "source was trained with (model=..., model.* such as width or stem)")


def _block_difference(ours: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor],
                      prefix: str) -> str | None:
    theirs = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not theirs:
        return "the source has no such block"
    missing, extra = sorted(ours.keys() - theirs.keys()), sorted(theirs.keys() - ours.keys())
    if missing or extra:
        return f"missing {missing[:3]}, unexpected {extra[:3]}"
    for key, value in ours.items():
        if theirs[key].shape != value.shape:
            return f"{key}: source {list(theirs[key].shape)}, model {list(value.shape)}"
    return None
