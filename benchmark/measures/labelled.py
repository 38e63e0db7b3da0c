"""Measures of one network against the target half's labels: how well each block's output,
read by a cheap classifier or score, predicts the classes of the target half (a linear probe,
k-NN, LogME). They are the cheap answer to the protocol's question: read each block of the
source on the target data instead of re-training the layers above it.

A base run reads its own base network's blocks (``own``: cheap BnB) and, when it is at hand,
the other half's (``other``: cheap AnB), both on its target half's images; the aggregation
turns other / own into the cheap generality curve beside the protocol's (its report:
benchmark/analysis/agreement.py, for every readout measure). One forward pass per network over a seeded subset of the target half's training
images and one over its held-out images give every block's features, pooled to a small spatial
grid (global average pooling loses what a probe needs); then one small fit per block and measure.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from benchmark.data.batches import Normalizer, batches
from benchmark.data.images import ImageSet
from benchmark.data.splits import HalfTask
from benchmark.measures.measure import Measure
from benchmark.models import TransferNet
from benchmark.protocol import RANDOM_INIT
from benchmark.seeds import derive_seed

log = logging.getLogger(__name__)

READOUT = "readout"          # analysis.readout: the images and pooling every readout measure shares


class ReadoutMeasure(Measure):
    """Scores each block of one network by how well its features predict the target half's
    labels. Its settings are ``analysis.readout`` merged with its own node (``settings_key``,
    None: it has none)."""

    settings_key: str | None = None
    ratio = True  # an accuracy: other / own is the cheap generality (else: other - own)

    def settings(self, analysis: DictConfig) -> DictConfig | None:
        own = OmegaConf.to_container(analysis[self.settings_key]) if self.settings_key else {}
        return OmegaConf.create({**OmegaConf.to_container(analysis[READOUT]), **own})

    def score(self, train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor,
              test_labels: torch.Tensor, num_classes: int, settings: DictConfig) -> float:
        """The block's score: fit on ``train`` (features, labels), evaluate on ``test``."""
        raise NotImplementedError


def pooled(output: torch.Tensor, grid: int) -> torch.Tensor:
    """One row per image: conv maps averaged onto a ``grid`` x ``grid`` grid and flattened, token
    sequences averaged over tokens, vectors as they are (float32)."""
    if output.ndim == 4:
        output = F.adaptive_avg_pool2d(output, grid)
    elif output.ndim == 3:
        output = output.mean(dim=1)
    return output.flatten(1).float()


@torch.no_grad()
def block_features(model: TransferNet, images: ImageSet, normalize: Normalizer, device: torch.device,
                   batch_size: int, grid: int) -> list[torch.Tensor]:
    """Every block's pooled output for every image, from one forward pass (on the CPU after)."""
    model.eval()
    parts: list[list[torch.Tensor]] = [[] for _ in model.block_names]
    for x, _ in batches(images, batch_size, normalize, device):
        model.visit_block_outputs(x, lambda index, output: parts[index].append(pooled(output, grid).cpu()))
    return [torch.cat(p) for p in parts]


def _subset(images: ImageSet, count: int | None, seed: int) -> ImageSet:
    """``count`` images drawn by ``seed`` (all when None or fewer), in their stored order."""
    if count is None or count >= len(images):
        return images
    index = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    index = index.to(images.labels.device)
    return images.subset(index, images.labels[index])


def read_out(measures: Sequence[tuple[Measure, DictConfig]], task: HalfTask, seed: int,
             normalize: Normalizer, device: torch.device, networks: dict[str, TransferNet],
             new_model: Callable[[int, int], TransferNet]) -> dict[str, dict]:
    """Each readout measure's entry on ``task`` for the ``networks`` (by role: protocol.OWN,
    OTHER) and for a freshly initialised one (RANDOM_INIT, made by ``new_model(classes, seed)``):
    the per-block scores of every network, by role, and how they were measured."""
    readouts = [(m, s) for m, s in measures if isinstance(m, ReadoutMeasure)]
    if not readouts:
        return {}
    networks = {**networks, RANDOM_INIT: new_model(task.num_classes, derive_seed(seed, "readout-random"))}
    shared = readouts[0][1]  # analysis.readout is one node: every readout measure shares it
    start = time.time()
    train = _subset(task.train, shared.train_images, derive_seed(seed, "readout-train"))
    test = _subset(task.val, shared.images, derive_seed(seed, "readout-test"))
    entries = {m.record_key: {"pool": shared.pool, "train_images": len(train), "images": len(test)}
               for m, _ in readouts}
    for role, model in networks.items():
        features = [block_features(model, part, normalize, device, shared.batch_size, shared.pool)
                    for part in (train, test)]
        for measure, settings in readouts:
            entries[measure.record_key][role] = [
                measure.score(train_x, train.labels.cpu(), test_x, test.labels.cpu(), task.num_classes, settings)
                for train_x, test_x in zip(*features)]
    seconds = round(time.time() - start, 3)
    for entry in entries.values():
        entry["seconds"] = seconds
    log.info("%s of %s: %d training and %d held-out images in %.2f s", ", ".join(m.name for m, _ in readouts),
             ", ".join(networks), len(train), len(test), seconds)
    return entries

