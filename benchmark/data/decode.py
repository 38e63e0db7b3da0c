"""Source pixels -> ``uint8 [N, 3, S, S]``: image files (in parallel) and in-memory arrays.

Every real dataset ends up square, 3-channel and of one size: grey images are
replicated to RGB, and other sizes are resized (shorter side to ``S``, bilinear)
and centre-cropped, the same way for files and for arrays.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from benchmark.errors import UserError

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
