"""Simulated sweeps with known effects, as run records a real sweep would write.

The model: a unit is a seed's class split. Every network of a (seed, target half) scores
``level + the seed's offset + the true effect of its role at n + its own noise`` (points); the
seed's offset (N(0, seed_sd)) is shared by both directions of a split when both halves are
targets, each network's noise is independent (N(0, network_sd); random frozen networks,
which vary more, N(0, random_network_sd)). The true effects (:class:`Effects`), one per finding:

1. AnB - baseB = -fall (n - 1) / (L - 1): 0 at n = 1, -fall at n = L;
2. BnB = baseB - dip at the middle layers, baseB elsewhere;
3. BnB+ = baseB + tuned_selffer at every layer;
4. AnB+ = baseB + boost at every layer;
5. on a split other than the random one, AnB falls by ``gap`` more at the top layers;
6. RnB = AnB - far at every layer (finding 6 reads those from random_from on).

The layer ranges (middle, top) are the findings' own (:func:`layer_ranges`). conf/calibration/
default.yaml gives the numbers and where they come from; docs/calibration.md explains the model.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from benchmark.analysis.findings import layer_ranges
from benchmark.protocol import (BASE, RANDOM_CONTROL, SELFFER, SELFFER_TUNED, SERIES_BY_KEY, TRANSFER,
                                TRANSFER_TUNED, run_label, source_half)
from benchmark.schema.analysis import FindingsSettings
from benchmark.schema.calibration import Noise
from benchmark.schema.split import RANDOM_SPLIT
from benchmark.store.record import OK, RunRecord

DATASET, MODEL = "simulated", "convnet8"  # what the records name (the blocks are the config's)
COPYING_ROLES = (SELFFER, SELFFER_TUNED, TRANSFER, TRANSFER_TUNED, RANDOM_CONTROL)


@dataclass(frozen=True)
class Effects:
    """The true effect behind each finding, in points, positive in the finding's direction
    (fall: how far AnB falls below baseB from n = 1 to n = L; dip: baseB - BnB at the middle
    layers; tuned_selffer: BnB+ - baseB; boost: AnB+ - baseB; gap: the dissimilar split's extra
    top-layer drop; far: AnB - RnB)."""

    fall: float = 0.0
    dip: float = 0.0
    tuned_selffer: float = 0.0
    boost: float = 0.0
    gap: float = 0.0
    far: float = 0.0


def role_effects(effects: Effects, depth: int, settings: FindingsSettings,
                 dissimilar: bool) -> dict[str, np.ndarray]:
    """The true shift from baseB (points) of each copying role at n = 1..depth."""
    ranges = layer_ranges(depth, settings)
    n = np.arange(1, depth + 1)
    middle, top = np.isin(n, ranges["middle"]), np.isin(n, ranges["top"])
    transfer = -effects.fall * (n - 1) / (depth - 1) - (effects.gap * top if dissimilar else 0.0)
    return {SELFFER: -effects.dip * middle, SELFFER_TUNED: np.full(depth, effects.tuned_selffer),
            TRANSFER: transfer, TRANSFER_TUNED: np.full(depth, effects.boost),
            RANDOM_CONTROL: transfer - effects.far}


def simulate_sweep(effects: Effects, seeds: int, noise: Noise, rng: np.random.Generator,
                   settings: FindingsSettings, blocks: Sequence[str], targets: Sequence[str] = ("B",),
                   splits: Sequence[str] = (RANDOM_SPLIT,),
                   roles: Sequence[str] = COPYING_ROLES) -> list[RunRecord]:
    """The run records of one sweep per split (seeds 0..seeds-1, each target half, baseB and
    each of ``roles`` at n = 1..L, L = len(blocks)), accuracies drawn from the model above.
    Splits other than RANDOM_SPLIT get ``effects.gap`` (finding 5 compares them); each split
    has its own base networks, so its own seed offsets."""
    depth = len(blocks)
    records = []
    for split in splits:
        shifts = role_effects(effects, depth, settings, dissimilar=split != RANDOM_SPLIT)
        shifts = {role: shifts[role] for role in roles}
        levels = rng.normal(noise.level, noise.seed_sd, size=seeds)  # a seed's split: both directions share it
        for seed, level in enumerate(levels):
            for target in targets:
                records += _unit_records(level, shifts, noise, rng, list(blocks),
                                         dict(seed=seed, target=target, split=split))
    return records


def _unit_records(level: float, shifts: dict[str, np.ndarray], noise: Noise, rng: np.random.Generator,
                  blocks: list[str], unit: dict) -> list[RunRecord]:
    """baseB and each role of ``shifts`` at every n of one (split, seed, target half) whose
    networks score ``level`` on average before their role's shift."""
    records = [_record(BASE, 0, level + rng.normal(0.0, noise.network_sd), blocks, unit)]
    for role, shift in shifts.items():
        sd = noise.random_network_sd if role == RANDOM_CONTROL else noise.network_sd
        scores = level + shift + rng.normal(0.0, sd, size=shift.size)
        records += [_record(role, n, score, blocks, unit) for n, score in enumerate(scores, start=1)]
    return records


def _record(role: str, n: int, points: float, blocks: list[str], unit: dict) -> RunRecord:
    series = SERIES_BY_KEY[role]
    target = unit["target"]
    return RunRecord(label=run_label(series.treatment, n, series.finetune, target), treatment=series.treatment,
                     n=n, finetune=series.finetune, source=source_half(series.treatment, target),
                     block=blocks[n - 1] if n else None, blocks=blocks, dataset=DATASET, model=MODEL,
                     status=OK, metrics={"top1": float(points) / 100}, **unit)
