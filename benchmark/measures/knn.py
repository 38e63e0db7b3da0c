"""k-NN top-1: each held-out image takes the classes of its k most similar training images
(cosine similarity of a block's pooled outputs, votes weighted by exp(similarity / T)), as the
DINO evaluation does (benchmark/measures/readout.py)."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from benchmark.errors import UserError
from benchmark.measures.labelled import ReadoutMeasure
from benchmark.measures.measure import register
from benchmark.measures.readout import knn


class KNN(ReadoutMeasure):
    name = record_key = settings_key = "knn"

    def score(self, train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor,
              test_labels: torch.Tensor, num_classes: int, settings: DictConfig) -> float:
        try:
            return knn(train, train_labels, test, test_labels, num_classes, settings.k, settings.temperature)
        except ValueError as error:
            raise UserError(f"analysis.knn.k={settings.k}: {error}") from None


register(KNN())
