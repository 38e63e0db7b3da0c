"""Datasets by name (one loader module each), and the names the rest of the benchmark uses.

Modules: ``images`` (image sets in memory), ``streaming`` (image files read batch by
batch), ``files`` (a dataset on disk: found, listed), ``decode`` (pixels to tensors, and
the decode cache), ``batches`` (normalised, augmented mini-batches), ``splits`` (class
halves and each half's task), ``classlists`` (the class lists shipped with the package);
one loader per dataset: ``synthetic``, ``cifar``, ``fashion_mnist``, ``tiny_imagenet``,
``imagefolder``, ``imagenet``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from omegaconf import DictConfig

from benchmark.data import cifar, fashion_mnist, imagefolder, imagenet, synthetic, tiny_imagenet
from benchmark.data.images import LabelledImages
from benchmark.data.splits import ClassSplit, HalfTask, half_task, split_classes, target_limit

SUBSET_SEED = 0  # dataset.train_per_class picks the same images whatever the run's seed

LOADERS: dict[str, Callable[[DictConfig, str], LabelledImages]] = {
    "synthetic": synthetic.load,
    "cifar10": cifar.load,
    "cifar100": cifar.load,
    "fashion_mnist": fashion_mnist.load,
    "tiny_imagenet": tiny_imagenet.load,
    "imagefolder": imagefolder.load,
    "imagenet": imagenet.load,
}


def load_dataset(cfg: DictConfig, root: str) -> LabelledImages:
    """Load (or generate) the dataset chosen by the ``dataset`` config group; an image
    dataset's ``train_per_class`` keeps at most that many training images of every class
    (the same ones in every run, both halves: a smaller dataset, not the small-target regime)."""
    dataset = LOADERS[cfg.name](cfg, root)
    per_class = cfg.get("train_per_class")  # the synthetic data is generated at its size
    if per_class is None:
        return dataset
    return replace(dataset, train=dataset.train.per_class(per_class, SUBSET_SEED))


def nominal_image_size(cfg: DictConfig) -> int:
    """The side (px) of the images :func:`load_dataset` gives for the ``dataset`` config
    ``cfg``, known without loading any data (so that a model can be sized first)."""
    return int((cfg.params if cfg.name == "synthetic" else cfg).image_size)


__all__ = ["ClassSplit", "HalfTask", "LabelledImages", "half_task", "load_dataset",
           "nominal_image_size", "split_classes", "target_limit"]
