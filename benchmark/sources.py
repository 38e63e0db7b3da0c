"""External sources: a network, not trained by this run's sweep, whose first n blocks a
run copies (``treatment=external``), and the preprocessing its weights were trained with.

``source.checkpoint=PATH`` or ``source.weights=PATH``: a weights file of the same architecture:
a base network from another sweep (``cache_dir/<key>/model.pt``, whose path every base run
records in its result.json), safetensors, or a ``torch.save`` file (``.pth``, ``.pt``, ``.bin``)
of a state dict (ours, or the zoo's layout: timm's, torchvision's) or of a dict holding one under
``state_dict``/``model``. A weights file is data, never code: a pickle that needs more than
tensors is refused. A ``config.json`` beside the file with a timm ``pretrained_cfg`` (as
Hugging Face hub folders hold) gives its preprocessing.
``source.weights=NAME``: the zoo's pretrained weights by name (benchmark.models.pretrained_state).
"""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from omegaconf import DictConfig

from benchmark.data.images import LabelledImages
from benchmark.preprocessing import DATASET_PREPROCESSING, Preprocessing
from benchmark.errors import UserError
from benchmark.models import TransferNet, model_label, pretrained_state, to_our_layout, weights_preprocessing
from benchmark.models.net import under
from benchmark.models.timm_models import from_pretrained_cfg
from benchmark.store.atomic import read_verified

log = logging.getLogger(__name__)
State = dict[str, torch.Tensor]
WEIGHTS_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
UNSAFE_PICKLE = "Unsupported global"  # torch.load(weights_only=True) on a pickle that runs code
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6: a zip archive
WEIGHTS_CONFIG = "config.json"  # beside a weights file: {"pretrained_cfg": {"mean": ..., ...}}


def _file(source: DictConfig) -> Path | None:
    """The source's weights file, when it is one (source.checkpoint, or a path in source.weights)."""
    given = source.checkpoint if source.checkpoint is not None else source.weights
    if given is None:
        return None
    path = Path(given).expanduser().absolute()
    if source.checkpoint is not None or path.exists() or str(given).endswith(WEIGHTS_SUFFIXES):
        return path
    return None


def external_state(source: DictConfig, model: DictConfig, image_size: int) -> tuple[State, str]:
    """The source network's state dict in our layout (zoo weights by name: for a model built for
    ``image_size`` px inputs), and a description of where it came from."""
    path = _file(source)
    if path is not None:
        return to_our_layout(model, read_checkpoint(path)), str(path)
    return pretrained_state(model, source.weights, image_size), f"{model_label(model)} weights {source.weights}"


def source_preprocessing(source: DictConfig, model: DictConfig) -> Preprocessing | None:
    """The preprocessing the source's weights were trained with; None when unknown (no
    source, or a file without a config beside it)."""
    path = _file(source)
    if path is None:
        return None if source.weights is None else weights_preprocessing(model, source.weights)
    config = path.parent / WEIGHTS_CONFIG
    if not config.is_file():
        return None
    try:
        pretrained_cfg = json.loads(config.read_text())["pretrained_cfg"]
        return from_pretrained_cfg(pretrained_cfg, str(config))
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{config} (beside the weights) is not a timm config with a pretrained_cfg holding mean, "
                        f"std and input_size ({error!r}); fix it or move it away") from None


def run_preprocessing(cfg: DictConfig, dataset: LabelledImages) -> Preprocessing:
    """The run's input preprocessing: the source weights' own when known (every run of the sweep,
    base networks included, so their comparison is fair), else the dataset's."""
    weights = source_preprocessing(cfg.source, cfg.model)
    if weights is None:
        return Preprocessing(tuple(dataset.mean), tuple(dataset.std), DATASET_PREPROCESSING)
    _warn_contradictions(weights, dataset)
    return weights


def _warn_contradictions(weights: Preprocessing, dataset: LabelledImages) -> None:
    if (tuple(dataset.mean), tuple(dataset.std)) != (weights.mean, weights.std):
        log.warning("the source weights (%s) expect inputs normalised with mean %s and std %s; the run uses "
                    "them instead of dataset.mean=%s and dataset.std=%s", weights.origin, list(weights.mean),
                    list(weights.std), list(dataset.mean), list(dataset.std))
    if weights.input_size is not None and weights.input_size != dataset.image_size:
        log.warning("the source weights (%s) were trained on %d px images (%s resize, crop %s) but the dataset "
                    "gives %d px; set dataset.image_size=%d where the dataset has it (imagefolder, imagenet)",
                    weights.origin, weights.input_size, weights.interpolation, weights.crop_pct,
                    dataset.image_size, weights.input_size)


def size_hint(weights: Preprocessing, image_size: int) -> str:
    """What to change when weights trained on other image sizes do not fit the model built here."""
    if weights.input_size is None or weights.input_size == image_size:
        return ""
    return (f"; the weights were trained on {weights.input_size} px images and the dataset gives {image_size} px: "
            f"a model with position embeddings (a ViT) takes them at that size (dataset.image_size="
            f"{weights.input_size}), or by name (a timm tag, source.weights=TAG: timm resamples them)")


ACCEPTED = ("a weights file is a torch.save file of a state dict (.pth, .pt, .bin, .ckpt) or safetensors; "
            "save the network's state_dict() with torch.save or fetch the file again")


def read_checkpoint(path: Path) -> State:
    """A state dict from a weights file, in whichever of the accepted forms it is; anything
    else (a folder, an empty, text or truncated file, a pickle that needs code) is one error."""
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in WEIGHTS_SUFFIXES)
        raise UserError(f"{path} is a folder, not a weights file; give the file itself"
                        + (f" (it holds {', '.join(inside[:3])})" if inside else f"; {ACCEPTED}"))
    if not path.is_file():
        raise UserError(f"the weights file {path} (source.checkpoint or source.weights) does not exist; give "
                        "the path of a weights file (e.g. a base network's model.pt, named in its run's result.json)")
    data = path.read_bytes()
    if not data.strip():
        raise UserError(f"{path} is empty, not a weights file; {ACCEPTED}")
    if path.suffix == ".safetensors":
        return _safetensors(data, path)
    try:
        data = read_verified(path)  # a base network from this tool's cache
    except ValueError:
        pass  # a plain torch.save file
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch's paragraphs, whatever the damage: one line)
        raise UserError(f"{path} {_not_weights(data, error)}; {ACCEPTED}") from None
    return _state_dict(loaded, path)


def _not_weights(data: bytes, error: Exception) -> str:
    """What the file is that torch could not load as weights."""
    needs = next((line.strip() for line in str(error).splitlines() if UNSAFE_PICKLE in line), None)
    if needs:
        return f"needs more than tensors to load ({needs[:200]}): a weights file is data, never code"
    if data.startswith(ZIP_MAGIC):
        return "is a damaged or truncated torch.save file (its zip archive is incomplete)"
    if _is_text(data):
        return "is a text file, not a weights file"
    return f"is not a weights file torch can read ({type(error).__name__})"


def _is_text(data: bytes) -> bool:
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= 4093  # only a character cut at the end of the window
    return b"\0" not in data[:4096]


def _safetensors(data: bytes, path: Path) -> State:
    from safetensors.torch import load

    try:
        return load(data)
    except Exception:  # noqa: BLE001 (safetensors raises its own SafetensorError on any damage)
        what = "a text file" if _is_text(data) else "a damaged or truncated safetensors file"
        raise UserError(f"{path} is {what}, not readable safetensors; {ACCEPTED}") from None


def _state_dict(loaded: object, path: Path) -> State:
    for key in ("state_dict", "model"):
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    if not (isinstance(loaded, Mapping) and loaded
            and all(isinstance(v, torch.Tensor) for v in loaded.values())):
        raise UserError(f"{path} holds no state dict (a mapping of parameter names to tensors); save the "
                        "network's state_dict() with torch.save")
    return dict(loaded)


def check_blocks_match(model: TransferNet, state: Mapping[str, torch.Tensor], model_name: str,
                       origin: str | None, hint: str = "") -> None:
    """Every block of ``model`` must find parameters and buffers of the same names and shapes
    in ``state``; otherwise one error naming the first block that does not match (and ``hint``)."""
    ours = model.state_dict()
    if state and not ours.keys() & state.keys():
        raise UserError(f"the source {origin} holds another model's weights: none of its {len(state)} names (e.g. "
                        f"{next(iter(state))!r}) is one of model={model_name}'s (e.g. {next(iter(ours))!r}); give "
                        f"weights of this architecture, or the model they belong to (model=..., model.arch=...){hint}")
    for index, name in enumerate(model.block_names, start=1):
        paths = model.block_paths(name)
        problem = _block_difference({k: v for k, v in ours.items() if under(k, paths)},
                                    {k: v for k, v in state.items() if under(k, paths)})
        if problem:
            raise UserError(f"the source {origin} does not match model={model_name}: block {index} "
                            f"'{name}' differs ({problem}); build the model with the settings the "
                            f"source was trained with (model=..., model.* such as width or stem){hint}")


def _block_difference(ours: Mapping[str, torch.Tensor], theirs: Mapping[str, torch.Tensor]) -> str | None:
    if not theirs:
        return "the source has no such block"
    missing, extra = sorted(ours.keys() - theirs.keys()), sorted(theirs.keys() - ours.keys())
    if missing or extra:
        return f"missing {missing[:3]}, unexpected {extra[:3]}"
    for key, value in ours.items():
        if theirs[key].shape != value.shape:
            return f"{key}: source {list(theirs[key].shape)}, model {list(value.shape)}"
    return None
