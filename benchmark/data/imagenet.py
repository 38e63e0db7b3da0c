"""ILSVRC-2012 in wnid folders: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``.

1.28 million images do not fit in memory as decoded tensors, so both parts are
:class:`FileImages`, decoded batch by batch (benchmark/data/streaming.py). Listing
the files takes minutes on a network disk, so the listing (paths and labels) is
cached in ``dataset.cache_dir``, keyed by the class folders (a folder's
modification time changes when files are added or removed) and rebuilt only then.
Classes are any subset of the 1000 wnids, in Caffe's order, with their natural /
man-made families.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.data.classlists import caffe_order, imagenet_families
from benchmark.data.decode import fingerprint, read_or_build
from benchmark.data.files import candidates, class_folder_files, class_names, first_with, missing
from benchmark.data.images import LabelledImages
from benchmark.data.streaming import FileImages
from benchmark.errors import UserError
from benchmark.store.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

PARTS = ("train", "val")
VAL_LAYOUT = ("sort the validation images into val/<wnid>/ folders, as torchvision's ImageFolder "
              "reads them")


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
                      f"({VAL_LAYOUT})", looked_in)
    train, val = class_names(base / "train"), class_names(base / "val")
    if not train or train != val:
        raise UserError(f"dataset={cfg.name}: {base}/train and {base}/val must hold the same, "
                        f"non-empty set of wnid folders (train has {len(train)}, val {len(val)}); "
                        f"{VAL_LAYOUT}")
    wnids = caffe_order(train)
    families = imagenet_families(wnids, cfg.name)  # rejects wnids outside ILSVRC-2012
    for folder in (base / part / w for part in PARTS for w in wnids):
        if next(folder.iterdir(), None) is None:
            raise UserError(f"dataset={cfg.name}: {folder} is empty; restore its images")
    return ImageNetLayout(base, wnids, families)


def _list_files(base: Path) -> dict[str, np.ndarray]:
    """Every image's path (relative to ``base``) and label, per part. Labels follow the sorted
    folder order, which is Caffe's order (synsets.txt is sorted)."""
    files = class_folder_files(base / "train", base / "val")
    listing = {}
    for part, labelled in zip(PARTS, (files.train, files.val)):
        listing[f"{part}_paths"] = np.array([path.relative_to(base).as_posix()
                                             for path, _ in labelled], dtype=np.str_)
        listing[f"{part}_labels"] = np.array([label for _, label in labelled], dtype=np.int64)
    return listing


def _read_listing(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files}
    except Exception as error:  # any damage means: list the files again
        log.warning("cached file list %s is unreadable (%s); listing the files again", path, error)
        return None


def _write_listing(path: Path, listing: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **listing)
    atomic_write_bytes(path, buffer.getvalue())


def _listing(cfg: DictConfig, layout: ImageNetLayout) -> dict[str, np.ndarray]:
    """The file listing from ``cfg.cache_dir``, or listed now (once, under a lock)."""
    folders = [layout.base / part / w for part in PARTS for w in layout.wnids]
    key = fingerprint(OmegaConf.masked_copy(cfg, ["name"]), folders)
    path = Path(cfg.cache_dir) / f"{cfg.name}-files-{key}.npz"
    return read_or_build(path, _read_listing, lambda: _list_files(layout.base), _write_listing,
                         f"listing the images of {layout.base}")


def load(cfg: DictConfig, root: str) -> LabelledImages:
    """ILSVRC-2012 as file-backed train / val sets."""
    layout = find_imagenet(cfg, root)
    listing = _listing(cfg, layout)
    parts = [FileImages(str(layout.base), listing[f"{part}_paths"],
                        torch.from_numpy(listing[f"{part}_labels"]), cfg.image_size, cfg.resize,
                        cfg.random_crop, cfg.num_workers)
             for part in PARTS]
    log.info("%s: %d classes, %d training and %d validation images in %s", cfg.name,
             len(layout.wnids), len(parts[0]), len(parts[1]), layout.base)
    return LabelledImages(cfg.name, layout.wnids, layout.families, *parts, tuple(cfg.mean),
                          tuple(cfg.std))
