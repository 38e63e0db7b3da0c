"""Measures a finished run did not take (added after it ran, or switched off then), taken from
the networks the runs saved, without training anything, before the aggregation reports them
(the sweep's report and ``python -m benchmark.analysis`` hand :func:`complete` to it).

It rebuilds a run's workspace (data, split, networks), so it sits beside the sweep, above both
the measures and the analysis, and the analysis never imports networks or training.

A base run's network is a verified file (its record's ``network_file``), and so is the other
half's base (the base run of the other target, or the source base a first-wave base run
reports), so its base-vs-base entries and its readouts can be taken at any time, on the same
seeded images the run would have used. A copying run keeps no trained network (only its source's
file): its vs-source entries need the run again (in a new sweep directory).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from benchmark.measures.labelled import read_out
from benchmark.measures.measure import BASE_VS_BASE, Measure, enabled_measures, take_measures
from benchmark.networks import Workspace, network_of
from benchmark.protocol import OTHER, OWN, TREATMENTS, other_half
from benchmark.store.atomic import bytes_to_tensors, read_verified
from benchmark.store.record import RunRecord

log = logging.getLogger(__name__)


def complete(records: Sequence[RunRecord], analysis: DictConfig) -> list[RunRecord]:
    """``records`` with the enabled measures they lack taken where their networks are saved."""
    enabled = enabled_measures(analysis)
    files = {(r.experiment(), r.seed, r.target): r.network_file for r in records
             if TREATMENTS[r.treatment].is_base and r.network_file}
    completed = []
    for record in records:
        missing = [(m, s) for m, s in enabled if record.measures.get(m.record_key) is None]
        other = files.get((record.experiment(), record.seed, other_half(record.target)))
        if missing and _takes_later(record) and other is not None:
            record = _with_base_measures(record, Path(other), missing)
        completed.append(record)
    return completed


def _takes_later(record: RunRecord) -> bool:
    """A base run's own record (not a source base reported by another) with its network saved."""
    return (record.ok and TREATMENTS[record.treatment].is_base and record.source_for is None
            and record.network_file is not None and record.config is not None)


def _with_base_measures(record: RunRecord, other: Path, missing: list[tuple[Measure, DictConfig]]
                        ) -> RunRecord:
    files = (Path(record.network_file), other)
    absent = [str(f) for f in files if not f.is_file()]
    if absent:
        log.warning("%s seed %d: %s no longer there; its %s not taken", record.label, record.seed,
                    ", ".join(absent), ", ".join(m.name for m, _ in missing))
        return record
    cfg = OmegaConf.create(record.config)
    ws = Workspace.from_config(cfg)  # the run's data, split and preprocessing
    base, other_base = (network_of(ws, half, bytes_to_tensors(read_verified(path)))
                        for half, path in zip((record.target, other_half(record.target)), files))
    entries = take_measures(missing, ws.task(record.target).val, record.seed, ws.normalize, base,
                            other_base, BASE_VS_BASE, ws.device)
    entries.update(read_out(missing, ws.task(record.target), record.seed, ws.normalize, ws.device,
                            {OWN: base, OTHER: other_base}, ws.new_model))
    taken = {key: entry for key, entry in entries.items() if entry is not None}
    log.info("%s seed %d: %s taken now from its saved networks", record.label, record.seed,
             ", ".join(m.name for m, _ in missing))
    return record.but(measures={**record.measures, **taken})
