"""Decode once, then read tensors: the on-disk cache every real dataset goes through.

Decoding 60,000 JPEG files takes seconds to minutes; reading one uint8 tensor file
takes a fraction of a second. The file is keyed by the source files (path, size,
modification time) and by the dataset options that change pixels (image size ...),
so a changed source or option rebuilds it and nothing stale is ever read. A file
lock makes parallel jobs of a sweep wait for one decode instead of each decoding.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from benchmark.data.images import ImageTensors, LabelledImages
from benchmark.storage import atomic_write_bytes, sha256, tensors_to_bytes

log = logging.getLogger(__name__)

T = TypeVar("T")

FORMAT = 1  # bump when decoding changes, so old cache files are not read
_NOT_PIXELS = frozenset({"cache_dir", "download", "mean", "std"})


@dataclass
class Decoded:
    """What the cache holds: class names and uint8 images of both parts."""

    class_names: list[str]
    train: ImageTensors
    val: ImageTensors


def fingerprint(cfg: DictConfig, inputs: Sequence[Path]) -> str:
    """Hash of the dataset options that shape the pixels and of every source file's identity."""
    options = {key: value for key, value in OmegaConf.to_container(cfg, resolve=True).items()
               if key not in _NOT_PIXELS}
    files = [(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
             for path in inputs for stat in [os.stat(path)]]
    return sha256(json.dumps([FORMAT, options, files], sort_keys=True).encode())[:16]


def _read(path: Path) -> Decoded | None:
    if not path.exists():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        return Decoded(list(data["class_names"]),
                       ImageTensors(data["train_images"], data["train_labels"]),
                       ImageTensors(data["val_images"], data["val_labels"]))
    except Exception as error:  # any damage means: decode again
        log.warning("cached dataset %s is unreadable (%s); decoding the source again", path, error)
        return None


def _write(path: Path, decoded: Decoded) -> None:
    atomic_write_bytes(path, tensors_to_bytes({
        "class_names": decoded.class_names,
        "train_images": decoded.train.images, "train_labels": decoded.train.labels,
        "val_images": decoded.val.images, "val_labels": decoded.val.labels}))


def read_or_build(path: Path, read: Callable[[Path], T | None], build: Callable[[], T],
                  write: Callable[[Path, T], None], what: str) -> T:
    """``read(path)``, or else ``build()`` and ``write`` it once, under a file lock, so that
    parallel jobs wait for one build instead of each doing it."""
    found = read(path)
    if found is not None:
        return found
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"):
        found = read(path)  # another job may have built it while we waited
        if found is None:
            log.info("%s into %s (once)", what, path)
            found = build()
            write(path, found)
    return found


def cached(cfg: DictConfig, inputs: Sequence[Path], build: Callable[[], Decoded]) -> Decoded:
    """The decoded dataset from ``cfg.cache_dir``, or ``build()`` it once and store it.

    ``inputs``: every source file whose change must rebuild the cache.
    """
    path = Path(cfg.cache_dir) / f"{cfg.name}-{cfg.image_size}px-{fingerprint(cfg, inputs)}.pt"
    return read_or_build(path, _read, build, _write,
                         f"decoding {cfg.name} from {len(inputs)} source files")


def labelled(cfg: DictConfig, decoded: Decoded, families: Sequence[str] | None = None
             ) -> LabelledImages:
    """The dataset as the benchmark uses it; ``families`` default to the class names
    (a family split then equals a random split of the classes)."""
    names = decoded.class_names
    return LabelledImages(cfg.name, names, list(families if families is not None else names),
                          decoded.train, decoded.val, tuple(cfg.mean), tuple(cfg.std))
