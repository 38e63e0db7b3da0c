"""ILSVRC-2012 in wnid folders: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``.

1.28 million images do not fit in memory as decoded tensors, so this dataset
needs a streaming (multi-worker JPEG) training path that does not exist yet.
What exists: finding the layout, the classes in Caffe's order (any subset of the
1000 wnids) with their natural / man-made families, and clear errors.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from benchmark.data.classlists import caffe_order, imagenet_families
from benchmark.data.files import class_names
from benchmark.data.images import LabelledImages
from benchmark.data.locate import candidates, first_with, missing
from benchmark.errors import UserError


@dataclass(frozen=True)
class ImageNetLayout:
    base: Path
    wnids: list[str]      # Caffe class order
    families: list[str]   # "natural" | "manmade", per class


def find_imagenet(cfg: DictConfig, root: str) -> ImageNetLayout:
    """Locate ILSVRC-2012 under ``root/<dataset.dir>/`` or ``root/`` and check its classes."""
    looked_in = candidates(root, [cfg.dir])
    base = first_with(looked_in, "train", "val")
    if base is None:
        raise missing(cfg.name, "ILSVRC-2012 as train/<wnid>/*.JPEG and val/<wnid>/*.JPEG "
                      "(val sorted into wnid folders)", looked_in)
    train, val = class_names(base / "train"), class_names(base / "val")
    if not train or train != val:
        raise UserError(f"dataset={cfg.name}: {base}/train and {base}/val must hold the same, "
                        f"non-empty set of wnid folders (train has {len(train)}, val {len(val)})")
    wnids = caffe_order(train)
    families = imagenet_families(wnids, cfg.name)  # rejects wnids outside ILSVRC-2012
    for folder in (base / part / w for part in ("train", "val") for w in wnids):
        if next(folder.iterdir(), None) is None:
            raise UserError(f"dataset={cfg.name}: {folder} is empty; restore its images")
    return ImageNetLayout(base, wnids, families)


def load(cfg: DictConfig, root: str) -> LabelledImages:
    """Check the data, then stop: training on ImageNet needs the streaming path (not built)."""
    layout = find_imagenet(cfg, root)
    raise UserError(f"dataset={cfg.name}: found {len(layout.wnids)} ILSVRC-2012 classes in "
                    f"{layout.base}, but training on full ImageNet (streamed from JPEG, not held "
                    "in memory) is not implemented yet; use dataset=tiny_imagenet for now")
