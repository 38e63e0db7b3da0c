"""The images every per-block measure of a run sees: a fixed seeded subset of the target half's
held-out images, the same for every network of a seed (so that a frozen copied block compares
exactly equal to its source), and one forward pass that gives every block's outputs."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from benchmark.data.batches import Normalizer, batches
from benchmark.data.images import ImageSet
from benchmark.models import TransferNet

Reducer = Callable[[torch.Tensor], torch.Tensor]  # a block's output -> what a measure keeps of it


@dataclass(frozen=True)
class HeldOutSample:
    """Images, their normalisation and device, and how they are batched: near-equal minibatches
    of at least ``batch_size`` images, or one of them all when there are fewer."""

    images: ImageSet
    normalize: Normalizer
    device: torch.device
    batch_size: int

    @classmethod
    def draw(cls, held_out: ImageSet, count: int, batch_size: int, seed: int, normalize: Normalizer,
             device: torch.device) -> "HeldOutSample":
        """``count`` held-out images (all when there are fewer), drawn by ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(held_out), generator=generator)[:count].sort().values
        index = index.to(held_out.labels.device)
        return cls(held_out.subset(index, held_out.labels[index]), normalize, device, batch_size)

    def block_outputs(self, model: TransferNet, reducers: Sequence[Reducer]
                      ) -> Iterator[list[list[torch.Tensor]]]:
        """One forward pass per minibatch; each block's output is handed to every reducer as it
        comes (a measure keeps what it needs of it, e.g. a Gram matrix, never every block's
        activations at once). Yields per minibatch, per reducer, its values for every block.
        Call it under ``torch.no_grad()``: a generator must not hold a grad-mode context, which
        two interleaved generators would leave switched off."""
        model.eval()
        chunks = torch.arange(len(self.images)).tensor_split(max(1, len(self.images) // self.batch_size))
        for index in chunks:
            index = index.to(self.images.labels.device)
            part = self.images.subset(index, self.images.labels[index])
            x, _ = next(batches(part, len(part), self.normalize, self.device))
            reduced: list[list[torch.Tensor]] = [[] for _ in reducers]

            def reduce_all(_: int, output: torch.Tensor) -> None:
                for values, reduce in zip(reduced, reducers):
                    values.append(reduce(output))

            model.visit_block_outputs(x, reduce_all)
            yield reduced

    def __len__(self) -> int:
        return len(self.images)
