"""Datasets by name, class splits, and the per-half task data."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

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


def half_task(dataset: LabelledImages, split: ClassSplit, half: str,
              train_per_class: int | None = None, subsample_seed: int = 0) -> HalfTask:
    """Select one half's classes; optionally keep only ``train_per_class`` training images."""
    classes = split.half(half)
    train = dataset.train.select_classes(classes)
    if train_per_class is not None:
        available = int(train.class_counts().min())
        if train_per_class > available:
            raise UserError(f"data.train_per_class={train_per_class} but some class of half {half} "
                            f"has only {available} training images; use at most {available}")
        train = train.per_class(train_per_class, subsample_seed)
    return HalfTask(half, classes, [dataset.class_names[c] for c in classes], train,
                    dataset.val.select_classes(classes))


__all__ = ["ClassSplit", "HalfTask", "LabelledImages", "half_task", "load_dataset", "split_classes"]
