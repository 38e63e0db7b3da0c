"""Schemas of the ``dataset`` group (conf/dataset/*.yaml), and of the synthetic generator's
knobs (benchmark/data/synthetic.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from benchmark.schema.keys import Check, at_least, between, key, optional, seed_range, store


@dataclass(unsafe_hash=True)  # not frozen: OmegaConf would make dataset.params read-only
class SyntheticSpec:
    """Every knob of the generator; values come from ``conf/dataset/synthetic.yaml`` (this
    class is also the schema of ``dataset.params``: each knob's allowed values are here).
    Hashable, as the key of the generated datasets' cache; never changed once made."""

    num_families: int = key(at_least(2))
    classes_per_family: int = key(at_least(1))
    parts_per_family: int = key(at_least(1))
    parts_per_class: int = key(between(1, 9, 3))  # slots of the 3 x 3 layout grid
    image_size: int = key(at_least(9))            # parts are drawn on thirds of the image
    train_per_class: int = key(at_least(1))
    val_per_class: int = key(at_least(1))
    jitter: int = key(at_least(0))
    distractors: int = key(at_least(0))
    part_dropout: float = key(between(0, 1, 0.3, open_high=True))
    noise: float = key(at_least(0))
    style_purity: float = key(between(0, 1, 0.7))
    world_seed: int = key(seed_range())

    @property
    def num_classes(self) -> int:
        return self.num_families * self.classes_per_family

    @property
    def patch_size(self) -> int:
        return self.image_size // 3


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
    cache_dir: str = key(determines=False)
    train_per_class: Optional[int] = key(optional(at_least(1)), older=None)


@dataclass
class Cifar(Images):
    download: bool = key(determines=False)


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
    num_workers: Optional[int] = key(optional(at_least(0)), determines=False)


SCHEMAS = {"synthetic": Synthetic, "cifar": Cifar, "fashion_mnist": FashionMnist,
           "imagefolder": ImageFolder, "tiny_imagenet": TinyImagenet, "imagenet": Imagenet}
for _name, _schema in SCHEMAS.items():
    store("dataset", _name, _schema)
