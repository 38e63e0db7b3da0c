"""Datasets by name, class splits, and the per-half task data."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.data import cifar, fashion_mnist, imagefolder, imagenet, tiny_imagenet
from benchmark.data.images import ImageTensors, LabelledImages
from benchmark.data.splits import ClassSplit, split_classes
from benchmark.data.synthetic import SyntheticSpec, generate
from benchmark.errors import UserError


@lru_cache(maxsize=2)
def _synthetic(spec: SyntheticSpec) -> LabelledImages:
    return generate(spec)


def _load_synthetic(cfg: DictConfig, root: str) -> LabelledImages:
    return _synthetic(SyntheticSpec(**OmegaConf.to_container(cfg.params)))


LOADERS: dict[str, Callable[[DictConfig, str], LabelledImages]] = {
    "synthetic": _load_synthetic,
    "cifar10": cifar.load,
    "cifar100": cifar.load,
    "fashion_mnist": fashion_mnist.load,
    "tiny_imagenet": tiny_imagenet.load,
    "imagefolder": imagefolder.load,
    "imagenet": imagenet.load,
}


def load_dataset(cfg: DictConfig, root: str) -> LabelledImages:
    """Load (or generate) the dataset chosen by the ``dataset`` config group."""
    return LOADERS[cfg.name](cfg, root)


@dataclass
class HalfTask:
    """One half (A or B) as its own classification task, labels 0..k-1."""

    name: str
    classes: list[int]
    class_names: list[str]
    train: ImageTensors
    val: ImageTensors

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device) -> "HalfTask":
        """In-memory images move to ``device``; streamed ones stay where they are read."""
        move = lambda part: part.to(device) if isinstance(part, ImageTensors) else part  # noqa: E731
        return HalfTask(self.name, self.classes, self.class_names, move(self.train), move(self.val))


def target_limit(counts: list[int], per_class: int | None, fraction: float | None) -> int | None:
    """Training images to keep per class of the target half (None: all of them).

    ``fraction`` is taken of the largest class, so on balanced data every class keeps
    exactly that fraction; smaller classes keep what they have up to the limit.
    """
    if per_class is not None and fraction is not None:
        raise UserError("data.train_per_class and data.target_fraction are both set; keep one "
                        "and set the other to null")
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise UserError(f"data.target_fraction={fraction} must be in (0, 1], e.g. 0.1")
        return max(1, round(fraction * max(counts)))
    if per_class is not None and not 1 <= per_class <= min(counts):
        raise UserError(f"data.train_per_class={per_class} but the target half's classes have "
                        f"{min(counts)} to {max(counts)} training images; use 1..{min(counts)}")
    return per_class


def half_task(dataset: LabelledImages, split: ClassSplit, half: str,
              train_per_class: int | None = None, target_fraction: float | None = None,
              subsample_seed: int = 0) -> HalfTask:
    """Select one half's classes; optionally thin its training images (the small-data regime)."""
    classes = split.half(half)
    train = dataset.train.select_classes(classes)
    limit = target_limit(train.class_counts().tolist(), train_per_class, target_fraction)
    if limit is not None:
        train = train.per_class(limit, subsample_seed)
    return HalfTask(half, classes, [dataset.class_names[c] for c in classes], train,
                    dataset.val.select_classes(classes))


__all__ = ["ClassSplit", "HalfTask", "LabelledImages", "half_task", "load_dataset", "split_classes"]
