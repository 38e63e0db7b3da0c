"""LogME (You et al. 2021): the evidence of a Bayesian linear model of the labels on each block's
pooled output, per training image, by its fixed-point iteration (benchmark/measures/readout.py).
Higher is better; it is a log-likelihood, not an accuracy, so its cheap generality compares
differences from the least evidence, not ratios (benchmark/analysis/agreement.py)."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from benchmark.measures.labelled import ReadoutMeasure
from benchmark.measures.measure import register
from benchmark.measures.readout import logme


class LogME(ReadoutMeasure):
    name = record_key = "logme"
    ratio = False

    def score(self, train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor,
              test_labels: torch.Tensor, num_classes: int, settings: DictConfig) -> float:
        return logme(train, train_labels, num_classes)


register(LogME())
