"""Schema of conf/calibration/*.yaml: the simulated sweeps that measure the findings' error rates
(benchmark/analysis/simulate.py, benchmark/analysis/calibrate.py). Not part of a run's config."""
from __future__ import annotations

from dataclasses import dataclass

from benchmark.protocol import HALVES
from benchmark.schema.keys import Check, at_least, key, positive
from benchmark.schema.split import RANDOM_SPLIT


def _each(rule: str, ok, example: list, bad: list) -> Check:
    return Check(lambda v, _: len(v) > 0 and all(ok(x) for x in v), rule, example, bad)


def _halves() -> Check:
    return Check(lambda v, _: len(v) > 0 and len(set(v)) == len(v) and set(v) <= set(HALVES),
                 f"must name target halves, each once: {list(HALVES)} or [B]", ["B"], ["C"])


@dataclass
class Noise:
    """How simulated accuracies (points) spread: around ``level``, a seed's offset N(0, seed_sd)
    shared by every network of its split, and each network's own N(0, network_sd) (random frozen
    networks: random_network_sd)."""

    level: float = key(Check(lambda v, _: 0 < v < 100, "must be an accuracy in points, in (0, 100)",
                             80.0, 120.0))
    seed_sd: float = key(at_least(0))
    network_sd: float = key(positive(0.5))
    random_network_sd: float = key(positive(2.0))


@dataclass
class Fixed:
    """Each finding's true effect (points) while another finding's is varied."""

    fall: float = key()
    dip: float = key()
    tuned_selffer: float = key()
    boost: float = key()
    gap: float = key()
    far: float = key()


@dataclass
class Calibration:
    noise: Noise = key()
    blocks: list[str] = key(Check(lambda v, _: len(v) >= 3, "must name 3 or more blocks (a slope needs 3 layers)",
                                  ["conv1", "conv2", "conv3"], ["conv1"]))
    targets: list[str] = key(_halves())
    dissimilar_split: str = key(Check(lambda v, _: v != RANDOM_SPLIT, "must differ from the random split",
                                      "family", RANDOM_SPLIT))
    fixed: Fixed = key()
    seeds: list[int] = key(_each("must be seed counts of 2 or more", lambda x: x >= 2, [2, 3], [1]))
    effects: list[float] = key(_each("must be multiples of a margin, 0 or more", lambda x: x >= 0, [0.0, 1.0],
                                     [-1.0]))
    sims: int = key(at_least(1))
