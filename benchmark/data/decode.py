"""Source pixels -> ``uint8 [N, 3, S, S]``, decoded once and then read from an on-disk cache.

Every real dataset ends up square, 3-channel and of one size: grey images are
replicated to RGB, and other sizes are resized (shorter side to ``S``, bilinear)
and centre-cropped, the same way for image files (decoded in parallel) and for
in-memory arrays.

Decoding 60,000 JPEG files takes seconds to minutes; reading one uint8 tensor file
takes a fraction of a second. The cache file is keyed by the source files (path, size,
modification time) and by the dataset options that change pixels (image size ...),
so a changed source or option rebuilds it and nothing stale is ever read. A file
lock makes parallel jobs of a sweep wait for one decode instead of each decoding.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from filelock import FileLock
from omegaconf import DictConfig, OmegaConf
from PIL import Image, ImageOps

from benchmark.data.images import ImageTensors, LabelledImages
from benchmark.errors import UserError
from benchmark.store.atomic import atomic_write_bytes, sha256, tensors_to_bytes

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- decoding

# Files per worker task: large enough to amortise inter-process transfer, small
# enough to keep every worker busy on 60,000-file datasets.
CHUNK = 1000


def _fit(image: Image.Image, size: int) -> np.ndarray:
    """An RGB PIL image as ``uint8 [S, S, 3]``: shorter side to ``size``, centre crop."""
    if image.size != (size, size):
        image = ImageOps.fit(image, (size, size), method=Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def _decode_file(path: str, size: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG: let libjpeg decode at a reduced scale
            return _fit(image.convert("RGB"), size)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"cannot read image {path} ({error}); remove or replace the file") from None


def _decode_chunk(paths: Sequence[str], size: int) -> np.ndarray:
    return np.stack([_decode_file(p, size) for p in paths])


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _decoded_chunks(chunks: list[list[str]], size: int) -> Iterator[np.ndarray]:
    """Chunks decoded in order: in worker processes (threads would serialise on the GIL
    for small images), or in this process when there is only one chunk or one core."""
    workers = min(available_cores(), len(chunks))
    if workers <= 1:
        yield from (_decode_chunk(chunk, size) for chunk in chunks)
        return
    with ProcessPoolExecutor(workers) as pool:
        try:
            yield from pool.map(_decode_chunk, chunks, [size] * len(chunks))
        finally:  # on an unreadable file, do not wait for the chunks still queued
            pool.shutdown(cancel_futures=True)


def decode_files(paths: Sequence[Path], size: int) -> torch.Tensor:
    """Decode image files with PIL into one preallocated ``uint8 [N, 3, S, S]`` tensor."""
    images = torch.empty((len(paths), 3, size, size), dtype=torch.uint8)
    names = [str(p) for p in paths]
    chunks = [names[i:i + CHUNK] for i in range(0, len(names), CHUNK)]
    for start, array in zip(range(0, len(names), CHUNK), _decoded_chunks(chunks, size)):
        images[start:start + len(array)] = torch.from_numpy(array).permute(0, 3, 1, 2)
    return images


def fit_arrays(images: np.ndarray, size: int, pad: bool = False) -> torch.Tensor:
    """``uint8 [N, H, W]`` (grey) or ``[N, H, W, 3]`` arrays as ``uint8 [N, 3, S, S]``.

    ``pad``: centre the images on a zero canvas of ``size`` instead of resizing them
    (LeNet's way of feeding 28 px MNIST digits to a 32 px net).
    """
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    height, width = images.shape[1:3]
    if pad:
        if size < max(height, width):
            raise UserError(f"cannot pad {height}x{width} images to image_size={size}; "
                            f"use image_size >= {max(height, width)} or turn padding off")
        top, left = (size - height) // 2, (size - width) // 2
        images = np.pad(images, ((0, 0), (top, size - height - top), (left, size - width - left),
                                 (0, 0)))
    elif (height, width) != (size, size):
        images = np.stack([_fit(Image.fromarray(image), size) for image in images])
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


# ---------------------------------------------------------------- the decode cache

FORMAT = 1  # bump when decoding changes, so old cache files are not read
_NOT_PIXELS = frozenset({"cache_dir", "download", "mean", "std"})

T = TypeVar("T")


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
