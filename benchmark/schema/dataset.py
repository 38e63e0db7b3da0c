"""Schemas of the ``dataset`` group (conf/dataset/*.yaml)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from benchmark.data.synthetic import SyntheticSpec
from benchmark.schema.keys import Check, at_least, key, optional, store


def _per_channel(example: float, positive: bool) -> Check:
    return Check(lambda v, _: len(v) == 3 and (not positive or min(v) > 0),
                 "must be 3 values (R, G, B)" + (", each above 0" if positive else ""),
                 [example] * 3, [example] * 2)


@dataclass
class Synthetic:
    name: str = key()
    params: SyntheticSpec = key()


@dataclass
class Images:
    """A dataset of image files or arrays, resized to ``image_size`` and normalised."""

    name: str = key()
    image_size: int = key(at_least(8))
    mean: list[float] = key(_per_channel(0.5, positive=False))
    std: list[float] = key(_per_channel(0.25, positive=True))
    cache_dir: str = key()
    train_per_class: Optional[int] = key(optional(at_least(1)))


@dataclass
class Cifar(Images):
    download: bool = key()


@dataclass
class FashionMnist(Cifar):
    pad: bool = key()


@dataclass
class ImageFolder(Images):
    val_dir: str = key()


@dataclass
class TinyImagenet(Images):
    dir: str = key()


@dataclass
class Imagenet(TinyImagenet):
    resize: int = key(Check(lambda v, parent: v >= parent.image_size,
                            "must be at least dataset.image_size (images are cropped from it)", 256, 1))
    random_crop: bool = key()
    num_workers: Optional[int] = key(optional(at_least(0)))


for _name, _schema in (("synthetic", Synthetic), ("cifar", Cifar), ("fashion_mnist", FashionMnist),
                       ("imagefolder", ImageFolder), ("tiny_imagenet", TinyImagenet),
                       ("imagenet", Imagenet)):
    store("dataset", _name, _schema)
