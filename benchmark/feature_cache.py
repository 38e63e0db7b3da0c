"""Train on pre-computed features of a frozen prefix instead of re-running it every epoch.

Exact only when the prefix is deterministic: frozen, in eval mode (no BatchNorm
updates, no dropout) and fed un-augmented inputs. :func:`usable` checks exactly
that; the test suite shows the two paths train to the same weights.
"""
from __future__ import annotations

import torch
from torch import nn

from benchmark.data.batches import Normalizer, batches
from benchmark.data.images import ImageSet, ImageTensors
from benchmark.models import ChainNet, TransferNet
from benchmark.train import TrainData, autocast


def usable(model: TransferNet, augmenting: bool) -> bool:
    """Whether the frozen prefix's outputs are fixed (and the network can be cut after it)."""
    return model.runs_as_chain and model.frozen_blocks > 0 and model.frozen_in_eval and not augmenting


class SuffixNet(nn.Module):
    """The trainable part of a frozen-prefix network, fed the prefix's cached outputs."""

    def __init__(self, model: ChainNet) -> None:
        super().__init__()
        self.model = model
        self.n = model.frozen_blocks

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.forward_suffix(features, self.n)

    def train(self, mode: bool = True) -> "SuffixNet":
        self.training = mode
        self.model.train(mode)
        return self


@torch.no_grad()
def prefix_features(model: ChainNet, data: ImageSet, normalize: Normalizer,
                    device: torch.device, batch_size: int) -> ImageTensors:
    """The frozen prefix's outputs for every image, kept on ``device``."""
    model.eval()
    with autocast(device):  # the same precision as the end-to-end frozen forward
        parts = [model.forward_prefix(x, model.frozen_blocks)
                 for x, _ in batches(data, batch_size, normalize, device)]
    return ImageTensors(torch.cat(parts), data.labels)


def cached_data(model: ChainNet, data: TrainData, batch_size: int) -> TrainData:
    """``data`` replaced by the frozen prefix's outputs: inputs of :class:`SuffixNet`."""
    train, val = (prefix_features(model, part, data.normalize, data.device, batch_size)
                  for part in (data.train, data.val))
    return TrainData(train, val, None, data.device)
