"""The schema of the run config's own keys (conf/config.yaml); the groups' schemas are
in the modules beside this one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

from benchmark.protocol import EVERY_LAYER, HALVES, LAYER_RULE, TREATMENTS
from benchmark.schema.analysis import Analysis
from benchmark.schema.keys import (Check, at_least, between, key, matches, one_of, optional,
                                   positive, seed_range, store)

DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d+)?"


def _layer() -> Check:
    ok = lambda v, _: v == EVERY_LAYER or (isinstance(v, int) and v >= 0)  # noqa: E731
    return Check(ok, LAYER_RULE, 3, -1)


def _device() -> Check:
    return matches(DEVICE_PATTERN, "is not a device; use auto, cpu, cuda, cuda:INDEX or mps", "auto",
                   "tpu")


@dataclass
class Source:
    checkpoint: Optional[str] = key()
    weights: Optional[str] = key()


@dataclass
class Freeze:
    bn: str = key(one_of(("eval", "train")))


@dataclass
class Data:
    root: str = key(determines=False)
    train_per_class: Optional[int] = key(optional(at_least(1)))
    target_fraction: Optional[float] = key(optional(between(0, 1, 0.1, open_low=True)))
    num_workers: Optional[int] = key(optional(at_least(0)), determines=False)


@dataclass
class Wandb:
    mode: str = key(one_of(("auto", "online", "offline", "disabled")))
    project: str = key()
    entity: Optional[str] = key()
    init_timeout: float = key(positive(30))


def _stale() -> Check:
    return Check(lambda v, parent: v > 2 * parent.heartbeat_s, "must be more than twice "
                 "lock.heartbeat_s (a live holder must not look gone between two heartbeats)", 120, 1)


@dataclass
class Lock:
    heartbeat_s: float = key(positive(10))
    stale_s: float = key(_stale())
    poll_s: float = key(positive(2))


@dataclass
class Config:
    """conf/config.yaml. The groups (dataset, model, train, split) have their own schemas."""

    treatment: str = key(one_of(tuple(TREATMENTS)))
    n: Union[int, str] = key(_layer())
    finetune: bool = key()
    target: str = key(one_of(HALVES, rule="is not a class half"))
    seed: int = key(seed_range())
    source: Source = key()
    finetune_lr_scale: float = key(at_least(0))
    freeze: Freeze = key()
    data: Data = key()
    cache_dir: str = key(determines=False)
    warm_sources: bool = key(determines=False)
    lock: Lock = key(determines=False)
    device: str = key(_device(), determines=False)
    threads: Optional[int] = key(optional(at_least(1)), determines=False)
    wandb: Wandb = key(determines=False)
    sweep_name: str = key(determines=False)
    analysis: Analysis = key(determines=False)
    dataset: Any = key()  # after seed: split.seed is ${seed}, and the error names the key given
    model: Any = key()
    train: Any = key()
    split: Any = key()


store("", "config", Config)
