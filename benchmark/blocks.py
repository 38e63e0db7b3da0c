"""The run config's model at the run's image size: the model (``benchmark.models``) knows no
dataset, the dataset (``benchmark.data``) no model; the run's config joins them here."""
from __future__ import annotations

from omegaconf import DictConfig

from benchmark.data import nominal_image_size
from benchmark.models import block_names


def model_blocks(cfg: DictConfig) -> list[str]:
    """The run config's model's transferable blocks (its depth L is their number), built for the
    dataset's image size and known before any data is loaded or weight allocated: what ``n``
    ranges over."""
    return block_names(cfg.model, nominal_image_size(cfg.dataset))
