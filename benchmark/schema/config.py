"""The schema of the run config's own keys (conf/config.yaml); the groups' schemas are
in the modules beside this one."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Union

from benchmark.analysis.findings import FindingsSettings
from benchmark.protocol import EVERY_LAYER, HALVES, LAYER_RULE, TREATMENTS
from benchmark.results import METRICS
from benchmark.schema.keys import (Check, at_least, between, key, one_of, optional, positive,
                                   seed_range, store)
from benchmark.similarity import MIN_BATCH, POOLS

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _layer() -> Check:
    ok = lambda v, _: v == EVERY_LAYER or (isinstance(v, int) and v >= 0)  # noqa: E731
    return Check(ok, LAYER_RULE, 3, -1)


def _device() -> Check:
    return Check(lambda v, _: DEVICE_PATTERN.fullmatch(v) is not None,
                 "is not a device; use auto, cpu, cuda, cuda:INDEX or mps", "auto", "tpu")


def _reference() -> Check:
    def ok(value: str | None, _: Any) -> bool:
        from benchmark.analysis.reference import available  # the figure code: only when asked
        return value is None or value in available()
    return Check(ok, "is not a published reference; use yosinski2014 or null", "yosinski2014",
                 "nonsense")


@dataclass
class Source:
    checkpoint: Optional[str] = key()
    weights: Optional[str] = key()


@dataclass
class Freeze:
    bn: str = key(one_of(("eval", "train")))


@dataclass
class Data:
    root: str = key()
    train_per_class: Optional[int] = key(optional(at_least(1)))
    target_fraction: Optional[float] = key(optional(between(0, 1, 0.1, open_low=True)))
    num_workers: Optional[int] = key(optional(at_least(0)))


@dataclass
class Wandb:
    mode: str = key(one_of(("auto", "online", "offline", "disabled")))
    project: str = key()
    entity: Optional[str] = key()
    init_timeout: float = key(positive(30))


@dataclass
class Similarity:
    """analysis.similarity: linear CKA of block outputs (benchmark/similarity.py)."""

    enabled: bool = key()
    images: int = key(at_least(MIN_BATCH))
    pool: str = key(one_of(POOLS))
    batch_size: int = key(at_least(MIN_BATCH))


@dataclass
class Analysis:
    reference: Optional[str] = key(_reference())
    metric: str = key(one_of(METRICS))
    similarity: Similarity = key()
    findings: FindingsSettings = key()  # its keys' checks: benchmark/analysis/findings.py


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
    cache_dir: str = key()
    warm_sources: bool = key()
    device: str = key(_device())
    threads: Optional[int] = key(optional(at_least(1)))
    wandb: Wandb = key()
    sweep_name: str = key()
    analysis: Analysis = key()
    dataset: Any = key()  # after seed: split.seed is ${seed}, and the error names the key given
    model: Any = key()
    train: Any = key()
    split: Any = key()


store("", "config", Config)
