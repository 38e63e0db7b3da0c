"""Mini-batches from in-memory uint8 images, with augmentation done on whole batches.

No DataLoader workers: the images are already decoded, so a batch is an index
select, a float conversion and (for training) a random crop + flip, all on the
device the model runs on.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmark.data.images import ImageTensors


@dataclass(frozen=True)
class Augment:
    crop_padding: int = 0
    flip: bool = False

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip


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
        padded = F.pad(x, (p, p, p, p))
        dy, dx = torch.randint(0, 2 * p + 1, (2, n), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :]).to(x.device)
        cols = (dx[:, None] + torch.arange(w)[None, :]).to(x.device)
        x = padded[torch.arange(n, device=x.device)[:, None, None, None],
                   torch.arange(x.shape[1], device=x.device)[None, :, None, None],
                   rows[:, None, :, None], cols[:, None, None, :]]
    if augment.flip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def batches(data: ImageTensors, batch_size: int, normalize: Normalizer, device: torch.device,
            generator: torch.Generator | None = None, augment: Augment = Augment()
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(inputs, labels)``; shuffled and augmented when a ``generator`` is given."""
    n = len(data)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        x = normalize(data.images[index].to(device, non_blocking=True))
        if generator is not None and augment.active:
            x = _random_crop_flip(x, augment, generator)
        yield x, data.labels[index].to(device, non_blocking=True)
