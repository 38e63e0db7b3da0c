"""What a per-block measure is, the registry of them, and the one pass that feeds them all.

A run compares two networks block by block on a :class:`HeldOutSample`: a base run its base
network with the other half's (``BASE_VS_BASE``), a copying run its trained network with its
source (``VS_SOURCE``). Each enabled measure keeps what it needs of every block output as the
forward pass makes it (its reducer) and accumulates it over the minibatches; its entry goes
into the run's record under the measure's ``record_key``.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Protocol

import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.data.batches import Normalizer
from benchmark.data.images import ImageSet
from benchmark.errors import UserError
from benchmark.measures.sample import HeldOutSample, Reducer
from benchmark.models import TransferNet
from benchmark.seeds import derive_seed

log = logging.getLogger(__name__)

BASE_VS_BASE = "base_vs_base"  # a base run: its base network (rows) vs the other half's (columns)
VS_SOURCE = "vs_source"        # a copying run: each block of the trained network vs its source's
# how errors name the two networks of each comparison
NETWORK_NAMES = {BASE_VS_BASE: ("the target half's base", "the other half's base"),
                 VS_SOURCE: ("the trained network", "its source")}


class Accumulator(Protocol):
    def update(self, x: list[torch.Tensor], y: list[torch.Tensor]) -> None:
        """One minibatch: per block, what the reducer kept of each network's output."""

    def result(self) -> dict[str, Any]:
        """The entry's values (JSON-ready), under the comparison's name and any of the measure's
        own (e.g. its chance level); ValueError saying why it is undefined."""


class Measure:
    """A per-block measure. ``name``: its entry in ``analysis.measures``; ``record_key``: where
    its entries go in result.json and summary.json; ``settings_key``: its settings,
    ``analysis.<settings_key>``. A subclass computes (a :class:`PairedMeasure` compares two
    networks, a :class:`benchmark.measures.labelled.ReadoutMeasure` scores one against the
    target half's labels); what reports its entries (summary.json, figures, W&B objects) is the
    analysis', found there by ``record_key`` (benchmark/analysis/measure_reports.py), so this
    package computes and records and imports nothing above it."""

    name: str
    record_key: str
    settings_key: str

    def settings(self, analysis: DictConfig) -> DictConfig | None:
        """This measure's settings, None when they switch it off."""
        settings = analysis[self.settings_key]
        return settings if settings.get("enabled", True) else None


class PairedMeasure(Measure):
    """Compares two networks block by block on a held-out sample (CKA)."""

    def sample_size(self, settings: DictConfig) -> tuple[int, int]:
        """(images, minibatch size) of the held-out sample it is measured on."""
        return settings.images, settings.batch_size

    def describe(self, settings: DictConfig, sample: HeldOutSample) -> dict:
        """How an entry was measured (written beside its value)."""
        return {"images": len(sample), "batch_size": sample.batch_size}

    def reducer(self, settings: DictConfig) -> Reducer:
        raise NotImplementedError

    def accumulator(self, comparison: str, settings: DictConfig, x_names: list[str],
                    y_names: list[str], device: torch.device) -> Accumulator:
        raise NotImplementedError


MEASURES: dict[str, Measure] = {}


def register(measure: Measure) -> Measure:
    if measure.name in MEASURES:
        raise ValueError(f"measure {measure.name!r} is registered twice")
    MEASURES[measure.name] = measure
    return measure


def check_measures(names: Sequence[str]) -> None:
    """Every name of ``analysis.measures`` is a registered measure; :class:`UserError` otherwise."""
    unknown = [name for name in names if name not in MEASURES]
    if unknown:
        raise UserError(f"analysis.measures names {', '.join(unknown)}, which is no measure; use some "
                        f"of {', '.join(MEASURES)}, e.g. analysis.measures=[{next(iter(MEASURES))}]")


def enabled_measures(analysis: DictConfig) -> list[tuple[Measure, DictConfig]]:
    """The measures ``analysis.measures`` names and their settings do not switch off."""
    chosen = [MEASURES[name] for name in analysis.measures]
    return [(m, s) for m in chosen if (s := m.settings(analysis)) is not None]


def unmeasured() -> dict[str, None]:
    """Every measure's entry of a run that takes none (switched off, or nothing to compare)."""
    return {measure.record_key: None for measure in MEASURES.values()}


def take_measures(measures: Sequence[tuple[Measure, DictConfig]], held_out: ImageSet, seed: int,
                  normalize: Normalizer, x: TransferNet, y: TransferNet, comparison: str,
                  device: torch.device, y_key: Hashable | None = None) -> dict[str, dict | None]:
    """Every measure's entry (None where it is not taken) for ``comparison`` of ``x`` and ``y``
    on the target half's held-out images: one sample per sample size, drawn from the run's
    ``seed`` (the same for every network of a seed), one forward pass of each network per sample.
    ``y_key``: names ``y`` and ``held_out`` (e.g. a cached base network and the target half) for
    :func:`compare_networks` to keep what the measures kept of ``y``'s outputs."""
    groups: dict[tuple[int, int], list[tuple[PairedMeasure, DictConfig]]] = {}
    for measure, settings in measures:
        if not isinstance(measure, PairedMeasure):
            continue
        groups.setdefault(measure.sample_size(settings), []).append((measure, settings))
    entries: dict[str, dict | None] = unmeasured()
    for (images, batch_size), group in groups.items():
        sample = HeldOutSample.draw(held_out, images, batch_size, derive_seed(seed, "similarity"),
                                    normalize, device)
        key = None if y_key is None else (y_key, seed, images, batch_size)
        entries.update(compare_networks(group, sample, x, y, comparison, key))
    return entries


# Every copying run of a seed compares its network with the same source on the same images: a
# process (a sweep's worker runs many such runs) keeps what the measures kept of the last few
# sources' block outputs, by key, instead of running each source again for every run.
KEPT_SOURCES = 8
_kept_outputs: OrderedDict[Hashable, list[list[list[torch.Tensor]]]] = OrderedDict()


def _outputs_of(y: TransferNet, sample: HeldOutSample, reducers: Sequence[Reducer],
                key: Hashable | None) -> Iterable[list[list[torch.Tensor]]]:
    """``sample.block_outputs(y, reducers)``, kept under ``key`` (None: not kept)."""
    if key is None:
        return sample.block_outputs(y, reducers)
    if key not in _kept_outputs:
        _kept_outputs[key] = list(sample.block_outputs(y, reducers))
        if len(_kept_outputs) > KEPT_SOURCES:
            _kept_outputs.popitem(last=False)
    _kept_outputs.move_to_end(key)
    return _kept_outputs[key]


def compare_networks(measures: Sequence[tuple[PairedMeasure, DictConfig]], sample: HeldOutSample,
                     x: TransferNet, y: TransferNet, comparison: str, y_key: Hashable | None = None
                     ) -> dict[str, dict]:
    """Every measure's entry for ``comparison`` of ``x`` and ``y`` on ``sample``, by record key,
    from one forward pass of each network; ``y_key`` names ``y`` and ``sample``: what the
    measures kept of its outputs is kept for the next call with the same key and measures (None:
    ``y`` runs every call). A measure that is undefined (a constant block) gets an ``error`` entry
    and a warning, never NaN: the run stays ok."""
    names = NETWORK_NAMES[comparison]
    start = time.time()
    accumulators = [m.accumulator(comparison, s, [f"block {b} of {names[0]}" for b in x.block_names],
                                  [f"block {b} of {names[1]}" for b in y.block_names], sample.device)
                    for m, s in measures]
    reducers = [m.reducer(s) for m, s in measures]
    key = None if y_key is None else (y_key, comparison, tuple(
        (m.name, OmegaConf.to_yaml(s)) for m, s in measures))
    with torch.no_grad():
        for xs, ys in zip(sample.block_outputs(x, reducers), _outputs_of(y, sample, reducers, key)):
            for accumulator, x_values, y_values in zip(accumulators, xs, ys):
                accumulator.update(x_values, y_values)
    seconds = round(time.time() - start, 3)
    entries = {}
    for (measure, settings), accumulator in zip(measures, accumulators):
        entry = measure.describe(settings, sample)
        try:
            entry.update(accumulator.result())
        except ValueError as error:
            log.warning("%s %s not measured: %s", measure.name, comparison, error)
            entry["error"] = str(error)
        entry["seconds"] = seconds
        log.info("%s %s: %d images in %.2f s", measure.name, comparison, len(sample), seconds)
        entries[measure.record_key] = entry
    return entries
