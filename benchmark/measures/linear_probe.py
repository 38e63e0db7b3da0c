"""Linear probe top-1: multinomial logistic regression on each block's pooled output over the
target half's training images, its L2 strength chosen on a split of those images, evaluated on
the held-out images (benchmark/measures/readout.py)."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from benchmark.measures.labelled import ReadoutMeasure
from benchmark.measures.measure import register
from benchmark.measures.readout import linear_probe


class LinearProbe(ReadoutMeasure):
    name = record_key = settings_key = "linear_probe"

    def score(self, train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor,
              test_labels: torch.Tensor, num_classes: int, settings: DictConfig) -> float:
        return linear_probe(train, train_labels, test, test_labels, num_classes,
                            tuple(settings.weight_decays), settings.validation_fraction)["top1"]


register(LinearProbe())
