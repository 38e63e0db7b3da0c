"""Image sets too large for memory (ILSVRC-2012): files decoded batch by batch in workers.

The paper's Caffe pipeline: every image is warped to ``resize`` x ``resize`` (aspect
ratio not kept), then an ``image_size`` crop is taken, at a random position for
training and in the centre for evaluation; batches leave as uint8 and are
normalised on the model's device. Every random choice (order, crop positions) is
drawn in the main process from the caller's generator and handed to the workers
as a plan, so a seed gives the same batches with any number of workers.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from benchmark.data.decode import available_cores
from benchmark.data.images import ImageSet
from benchmark.errors import UserError

# The default worker count's cap, polite on shared machines. One core decodes and crops about
# 500 ImageNet-sized JPEGs/s, less than one GPU trains CaffeNet on: on a dedicated node set
# data.num_workers to its core count.
MAX_WORKERS = 8


@dataclass
class FileImages(ImageSet):
    """Image files under ``root`` with their labels, read only when a batch needs them.

    ``paths`` are kept as one numpy string array, not a list of Python strings: forked
    workers then share it instead of copying it page by page as reference counts change.
    """

    root: str
    paths: np.ndarray | Sequence[str]  # relative to root
    labels: torch.Tensor
    image_size: int
    resize: int
    random_crop: bool = True           # training crops at random positions (else central)
    num_workers: int | None = None     # decoding processes; None: one per core, at most 8

    def __post_init__(self) -> None:
        self.paths = np.asarray(self.paths, dtype=np.str_)
        if self.resize < self.image_size:
            raise UserError(f"dataset.resize={self.resize} is smaller than dataset.image_size="
                            f"{self.image_size}; crops must fit in the resized image")

    def subset(self, index: torch.Tensor, labels: torch.Tensor) -> "FileImages":
        return replace(self, paths=self.paths[index.numpy()], labels=labels)

    def workers(self) -> int:
        return min(MAX_WORKERS, available_cores()) if self.num_workers is None else self.num_workers


def read_crop(path: str, resize: int, top: int, left: int, size: int) -> np.ndarray:
    """``uint8 [size, size, 3]``: the file warped to ``resize`` x ``resize``, then cropped."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (resize, resize))  # JPEG: let libjpeg decode at a reduced scale
            warped = image.convert("RGB").resize((resize, resize), Image.Resampling.BILINEAR)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"cannot read image {path} ({error}); remove or replace the file") from None
    return np.asarray(warped)[top:top + size, left:left + size]


class _Crops(Dataset):
    """One item per batch: a plan ``int64 [B, 3]`` of (image index, top, left) -> uint8 crops."""

    def __init__(self, data: FileImages) -> None:
        self.data = data

    def __getitem__(self, plan: torch.Tensor) -> torch.Tensor | UserError:
        """The crops as ``uint8 [B, 3, S, S]`` (channels-last memory, as the model runs on CUDA).

        An unreadable file comes back as its error, raised by the main process: raised
        here, it would reach the user wrapped in the worker's traceback.
        """
        d = self.data
        try:
            crops = [read_crop(os.path.join(d.root, d.paths[i]), d.resize, top, left, d.image_size)
                     for i, top, left in plan.tolist()]
        except UserError as error:
            return error
        return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)


def _plans(data: FileImages, batch_size: int, generator: torch.Generator | None
           ) -> list[torch.Tensor]:
    """The epoch's batches as crop plans: shuffled with random crops when a ``generator`` is
    given (random positions only if ``data.random_crop``), else in order, central."""
    n, margin = len(data), data.resize - data.image_size
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    if generator is not None and data.random_crop:
        corners = torch.randint(0, margin + 1, (n, 2), generator=generator)
    else:
        corners = torch.full((n, 2), margin // 2)
    return list(torch.cat([order[:, None], corners], 1).split(batch_size))


def streamed(data: FileImages, batch_size: int, device: torch.device,
             generator: torch.Generator | None = None
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(uint8 crops, labels)`` on the CPU, decoded by ``data.workers()`` processes.

    The whole epoch's plan is drawn before the first batch, so the caller may keep drawing
    from ``generator`` (flips) while workers read ahead.
    """
    plans = _plans(data, batch_size, generator)
    loader = DataLoader(_Crops(data), batch_size=None, sampler=plans, num_workers=data.workers(),
                        pin_memory=device.type == "cuda",
                        generator=torch.Generator())  # seeds idle workers, not torch's global RNG
    for plan, images in zip(plans, loader):
        if isinstance(images, UserError):
            raise images
        yield images, data.labels[plan[:, 0]]
