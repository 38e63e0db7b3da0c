"""Schema of ``analysis`` (conf/config.yaml): how the sweep's runs are aggregated, which
per-block measures they take, and the thresholds of the paper's findings. None of these keys
changes what a network learns, so none is part of a fingerprint."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from benchmark.protocol import METRICS
from benchmark.schema.keys import Check, at_least, between, key, one_of, optional, positive
from benchmark.reference import available

POOLS = ("flatten", "mean")  # how block outputs become one row per image (benchmark/measures/)
MIN_BATCH = 4  # the unbiased HSIC divides by n (n - 3)


def _reference() -> Check:
    return Check(lambda v, _: v is None or v in available(),
                 "is not a published reference; use yosinski2014 or null", "yosinski2014", "nonsense")


def _once_each() -> Check:
    return Check(lambda v, _: len(set(v)) == len(v), "names a measure twice; name each once", ["cka"],
                 ["cka", "cka"])


def _low_high() -> Check:
    ok = lambda v, _: len(v) == 2 and 0 <= v[0] < v[1] <= 1  # noqa: E731
    return Check(ok, "must be [low, high]: fractions of L with low < high", [0.3, 0.75], [0.8, 0.2])


@dataclass
class Similarity:
    """analysis.similarity: linear CKA of block outputs (benchmark/measures/cka.py)."""

    enabled: bool = key()
    images: int = key(at_least(MIN_BATCH))
    pool: str = key(one_of(POOLS))
    batch_size: int = key(at_least(MIN_BATCH))


@dataclass
class Readout:
    """analysis.readout: the images and pooling every readout measure (linear_probe, knn, logme:
    benchmark/measures/labelled.py) reads each block on."""

    pool: int = key(at_least(1))  # conv maps averaged onto a pool x pool grid (1: global average)
    train_images: Optional[int] = key(optional(at_least(2)))  # of the target half's training images
    images: Optional[int] = key(optional(at_least(1)))        # of its held-out images (null: all)
    batch_size: int = key(at_least(1))


@dataclass
class LinearProbe:
    weight_decays: list[float] = key(Check(lambda v, _: len(v) > 0 and min(v) > 0,
                                           "must be L2 strengths above 0", [1e-3, 1e-2], [0.0]))
    validation_fraction: float = key(between(0, 1, 0.2, open_low=True, open_high=True))


@dataclass
class Knn:
    k: int = key(at_least(1))
    temperature: float = key(positive(0.07))


@dataclass
class Agreement:
    """analysis.agreement: how the cheap measures' curves are compared with the protocol's."""

    threshold: float = key(between(0, 1, 0.95, open_low=True))  # generality below it: transfer costs
    bootstrap: int = key(at_least(100))                          # resamples of the intervals over units
    min_units: int = key(at_least(2))  # fewer splits in a condition: the spread, not an interval


@dataclass
class FindingsSettings:
    """``analysis.findings``: significance level, layer ranges (fractions of the depth L) and
    thresholds in points; see conf/config.yaml and benchmark/analysis/findings.py. The
    aggregation also reads these keys outside Hydra (``--set``) and checks them against this."""

    alpha: float = key(between(0, 1, 0.05, open_low=True, open_high=True))
    negligible: float = key(between(0, 1, 0.25, open_low=True, open_high=True))
    first_layers: float = key(between(0, 1, 0.3))
    near_points: float = key(positive(2.0))
    middle_layers: list[float] = key(_low_high())
    dip_points: float = key(positive(2.0))
    same_points: float = key(positive(2.0))
    boost_points: float = key(positive(1.0))
    top_layers: float = key(between(0, 1, 0.7))
    gap_points: float = key(positive(2.0))
    random_from: float = key(between(0, 1, 0.3))
    far_points: float = key(positive(10.0))
    improving_points: float = key(at_least(0))
    tail_epochs: int = key(at_least(1))
    above_points: float = key(at_least(0))


@dataclass
class Analysis:
    reference: Optional[str] = key(_reference())
    metric: str = key(one_of(METRICS))
    figures: bool = key()
    measures: list[str] = key(_once_each())  # per-block measures (benchmark/measures/); the preflight
                                             # checks each name against the registry
    similarity: Similarity = key()
    readout: Readout = key()
    linear_probe: LinearProbe = key()
    knn: Knn = key()
    agreement: Agreement = key()
    findings: FindingsSettings = key()
