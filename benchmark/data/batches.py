"""Mini-batches of uint8 images, normalised and augmented as whole batches on the device.

In-memory images need no DataLoader workers: a batch is an index select. Image
files (:class:`FileImages`, ImageNet) are decoded and cropped by worker processes
(benchmark/data/streaming.py). Either way the float conversion and the training
augmentation (padded random crop, flip) run on the device the model runs on.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmark.data.images import ImageSet, ImageTensors
from benchmark.data.streaming import FileImages, streamed


@dataclass(frozen=True)
class Augment:
    crop_padding: int = 0
    flip: bool = False

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def random_on(self, data: ImageSet) -> bool:
        """Whether training batches of ``data`` vary between epochs beyond their order: this
        augmentation, or the random crops of image files. (The feature cache needs fixed ones.)"""
        return self.active or isinstance(data, FileImages) and data.random_crop


class Normalizer:
    """uint8 -> float, minus the mean, over the std (per channel)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> None:
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() - self.mean) / self.std


def _random_crop_flip(x: torch.Tensor, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    if augment.crop_padding:
        p = augment.crop_padding
        windows = F.pad(x, (p, p, p, p)).unfold(2, h, 1).unfold(3, w, 1)  # [n, c, dy, dx, h, w]
        dy, dx = torch.randint(0, 2 * p + 1, (2, n), generator=generator).to(x.device)
        x = windows[torch.arange(n, device=x.device), :, dy, dx]
    if augment.flip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def _in_memory(data: ImageTensors, batch_size: int, generator: torch.Generator | None
               ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    n = len(data)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    order = order.to(data.images.device)  # index GPU-resident images without a copy back
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        yield data.images[index], data.labels[index]


def batches(data: ImageSet, batch_size: int, normalize: Normalizer | None, device: torch.device,
            generator: torch.Generator | None = None, augment: Augment = Augment()
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(inputs, labels)``; shuffled and augmented when a ``generator`` is given.
    ``normalize=None``: the data are model inputs already (cached prefix features)."""
    if isinstance(data, FileImages):
        source = streamed(data, batch_size, device, generator)
    else:
        source = _in_memory(data, batch_size, generator)
    for images, labels in source:
        x = images.to(device, non_blocking=True)
        if normalize is not None:
            x = normalize(x)
        if generator is not None and augment.active:
            x = _random_crop_flip(x, augment, generator)
        yield x, labels.to(device, non_blocking=True)
