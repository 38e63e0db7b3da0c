"""In-memory image sets: uint8 tensors, decoded once, selected by class."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class ImageTensors:
    """Images as ``uint8 [N, C, H, W]`` with ``int64 [N]`` labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def select_classes(self, classes: Sequence[int]) -> "ImageTensors":
        """Keep only ``classes``, relabelled 0..k-1 in the order given."""
        remap = torch.full((int(self.labels.max()) + 1,), -1, dtype=torch.long)
        remap[torch.as_tensor(list(classes), dtype=torch.long)] = torch.arange(len(classes))
        new_labels = remap[self.labels]
        keep = new_labels >= 0
        return ImageTensors(self.images[keep], new_labels[keep])

    def per_class(self, limit: int, seed: int) -> "ImageTensors":
        """At most ``limit`` images of each class, chosen deterministically by ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=generator)
        labels = self.labels[order]
        rank = torch.zeros_like(labels)
        for c in labels.unique():
            at = labels == c
            rank[at] = torch.arange(int(at.sum()))
        keep = order[rank < limit].sort().values
        return ImageTensors(self.images[keep], self.labels[keep])

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels)


@dataclass
class LabelledImages:
    """A dataset with its class names, class families and train/val parts."""

    name: str
    class_names: list[str]
    families: list[str]
    train: ImageTensors
    val: ImageTensors
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])
