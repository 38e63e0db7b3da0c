"""Schema of the ``train`` group (conf/train/*.yaml): one recipe shape for every model.

The keys with a default here are the ones most recipes share; a recipe writes its name, its
length, batch sizes and learning rate, and only the defaults it changes. A new training key
is its line here (with ``older=``, the value that reproduces runs written before it) and its
use in benchmark/train.py.
"""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.schema.keys import Check, at_least, between, key, one_of, positive, store


def _warmup() -> Check:
    return Check(lambda v, train: 0 <= v < train.epochs, "must be in 0..train.epochs-1", 0, -1)


@dataclass
class Augment:
    crop_padding: int = key(at_least(0))  # random crop after padding by this many px (0: none)
    flip: bool = key()                    # random horizontal mirror


@dataclass
class Train:
    name: str = key()
    epochs: int = key(at_least(1))
    batch_size: int = key(at_least(1))
    eval_batch_size: int = key(at_least(1))
    # evaluate the held-out images after every k-th epoch (and always after the last)
    eval_every: int = key(at_least(1), default=1, older=1)
    optimizer: str = key(one_of(("sgd", "adamw")), default="sgd")
    lr: float = key(positive(0.01))
    momentum: float = key(between(0, 1, 0.9, open_high=True), default=0.9)  # AdamW's beta1
    nesterov: bool = key(default=False)
    weight_decay: float = key(at_least(0), default=5.0e-4)
    bias_weight_decay: bool = key(default=False)  # decay biases, norms and tokens too
    bias_lr_scale: float = key(at_least(0), default=1.0)  # Caffe's lr_mult on biases
    schedule: str = key(one_of(("step", "cosine", "constant")), default="cosine")
    step_size: int = key(at_least(1), default=10)  # epochs between steps (schedule=step)
    gamma: float = key(between(0, 1, 0.1, open_low=True), default=0.1)  # factor of each step
    warmup_epochs: int = key(_warmup(), default=0)  # linear learning-rate warm-up before the schedule
    # torch.compile the network (GPU: faster after a compile of about a minute)
    compile: bool = key(default=False)
    # a frozen prefix in eval mode fed un-augmented inputs trains on its cached outputs
    feature_cache: bool = key(default=True)
    augment: Augment = key()


SCHEMAS = {"recipe": Train}
store("train", "recipe", Train)
