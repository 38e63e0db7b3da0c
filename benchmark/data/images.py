"""Image sets selected by class: in-memory uint8 tensors here, files in streaming.py."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import torch


class ImageSet(ABC):
    """Labelled images, however stored. Selecting by class reads only ``labels``, so every
    kind of set shares it and only says how to take a subset (:meth:`subset`)."""

    labels: torch.Tensor
    image_size: int

    @abstractmethod
    def subset(self, index: torch.Tensor, labels: torch.Tensor) -> Self:
        """The images at ``index`` (in that order), with ``labels`` as their new labels."""

    def __len__(self) -> int:
        return len(self.labels)

    def select_classes(self, classes: Sequence[int]) -> Self:
        """Keep only ``classes``, relabelled 0..k-1 in the order given."""
        remap = torch.full((int(self.labels.max()) + 1,), -1, dtype=torch.long)
        remap[torch.as_tensor(list(classes), dtype=torch.long)] = torch.arange(len(classes))
        new_labels = remap[self.labels]
        keep = (new_labels >= 0).nonzero().squeeze(1)
        return self.subset(keep, new_labels[keep])

    def per_class(self, limit: int, seed: int) -> Self:
        """At most ``limit`` images of each class, chosen deterministically by ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=generator)
        labels = self.labels[order]
        rank = torch.zeros_like(labels)
        for c in labels.unique():
            at = labels == c
            rank[at] = torch.arange(int(at.sum()))
        keep = order[rank < limit].sort().values
        return self.subset(keep, self.labels[keep])

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels)


@dataclass
class ImageTensors(ImageSet):
    """Images as ``uint8 [N, C, H, W]`` with ``int64 [N]`` labels."""

    images: torch.Tensor
    labels: torch.Tensor

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, index: torch.Tensor, labels: torch.Tensor) -> "ImageTensors":
        return ImageTensors(self.images[index], labels)

    def to(self, device: torch.device) -> "ImageTensors":
        """Resident on ``device`` (a GPU): batches are then index selects, no copies."""
        return ImageTensors(self.images.to(device), self.labels.to(device))


@dataclass
class LabelledImages:
    """A dataset with its class names, class families and train/val parts."""

    name: str
    class_names: list[str]
    families: list[str]
    train: ImageSet
    val: ImageSet
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def image_size(self) -> int:
        return self.train.image_size
