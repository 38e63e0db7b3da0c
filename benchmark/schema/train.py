"""Schema of the ``train`` group (conf/train/*.yaml): one recipe shape for every model."""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.schema.keys import Check, at_least, between, key, one_of, positive, store


def _warmup() -> Check:
    return Check(lambda v, train: 0 <= v < train.epochs, "must be in 0..train.epochs-1", 0, -1)


@dataclass
class Augment:
    crop_padding: int = key(at_least(0))
    flip: bool = key()


@dataclass
class Train:
    name: str = key()
    epochs: int = key(at_least(1))
    batch_size: int = key(at_least(1))
    eval_batch_size: int = key(at_least(1))
    eval_every: int = key(at_least(1))
    optimizer: str = key(one_of(("sgd", "adamw")))
    lr: float = key(positive(0.01))
    momentum: float = key(between(0, 1, 0.9, open_high=True))
    nesterov: bool = key()
    weight_decay: float = key(at_least(0))
    bias_weight_decay: bool = key()
    bias_lr_scale: float = key(at_least(0))
    schedule: str = key(one_of(("step", "cosine", "constant")))
    step_size: int = key(at_least(1))
    gamma: float = key(between(0, 1, 0.1, open_low=True))
    warmup_epochs: int = key(_warmup())
    compile: bool = key()
    feature_cache: bool = key()
    augment: Augment = key()


store("train", "recipe", Train)
