"""How images become a network's input: per-channel mean and std (and, for pretrained weights,
the input size, resize and crop they were trained with).

Pretrained weights carry their own (timm's ``pretrained_cfg``, torchvision's
``weights.transforms()``): a network fed another normalisation computes something else.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


DATASET_PREPROCESSING = "dataset"  # the origin of a dataset's own mean and std


@dataclass(frozen=True)
class Preprocessing:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    origin: str                       # DATASET_PREPROCESSING, or the weights it comes from
    input_size: int | None = None     # the image size the weights were trained on
    interpolation: str | None = None  # their resize's interpolation
    crop_pct: float | None = None     # their validation crop: the image size / the resize

    def to_json(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}
