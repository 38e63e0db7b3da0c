"""The result store: what a run writes, how it is named, found, read and checked.

One ``result.json`` per run directory, written atomically; a config fingerprint in it
(benchmark/store/fingerprint.py) guards against overwriting a finished result of another
configuration. The run, the sweep's progress and the aggregation all name and read results
through this module.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from benchmark.errors import UserError
from benchmark.store.atomic import atomic_write_json
from benchmark.store.record import Cost, RunRecord

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.pt"  # a run's per-epoch checkpoint, removed once its result is written
RUN_LOCK_FILE = "run.lock"  # held by the process training the run (benchmark/store/lock.py)


def finished_result(out_dir: Path, fingerprint: str, failed_too: bool = False) -> RunRecord | None:
    """The record already written in ``out_dir`` if that run finished ``ok`` (``failed_too``: or
    failed, in this configuration: another process has just recorded it), else None.

    An unreadable or failed result is reported and the run is done again; a finished
    result of a *different* configuration is never overwritten.
    """
    path = out_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        record = read_result(path)
    except ValueError as error:
        log.warning("%s is corrupt (%s); running this configuration again", path, error)
        return None
    if not record.ok:
        return record if failed_too and record.fingerprint == fingerprint else None
    if record.fingerprint != fingerprint:
        raise UserError(f"{path} holds a finished result of a different configuration; keep it and "
                        "write this one elsewhere: set hydra.sweep.dir=... (or hydra.run.dir=...) "
                        "or sweep_name=...")
    return record


def write_result(out_dir: Path, record: RunRecord | Mapping[str, Any]) -> Path:
    """Write ``record`` (or its JSON form, checked by reading it as a record) atomically."""
    record = record if isinstance(record, RunRecord) else RunRecord.from_json(dict(record))
    path = out_dir / RESULT_FILE
    atomic_write_json(path, record.to_json())
    return path


def result_files(sweep_dir: Path) -> Iterator[Path]:
    """Every result.json below ``sweep_dir``, in a stable order."""
    return iter(sorted(sweep_dir.rglob(RESULT_FILE)))


def count_results(sweep_dir: Path) -> int:
    """Runs of a sweep that have written their result (one level below the sweep dir)."""
    return sum(1 for _ in sweep_dir.glob(f"*/{RESULT_FILE}"))


def read_result(path: Path) -> RunRecord:
    """Read one result.json as a record (of any version); ValueError saying what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable JSON ({exc})") from exc
    return RunRecord.from_json(data)


def source_base_results(record: RunRecord) -> list[RunRecord]:
    """The source base networks a base run trained (``record.source_bases``) as records of
    their own: same experiment, seed and provenance, their own label, half and metrics, no
    training cost of their own (the base run paid it), ``source_for`` naming the target half,
    and no measures (those of the base run are its own: copied here, a base-vs-base matrix
    would count twice)."""
    return [record.but(label=base.label, target=base.target, metrics=base.metrics, history=base.history,
                       network_file=base.network_file, source_for=record.target, source_bases=[],
                       wall_s=0.0, cost=Cost(), measures={})
            for base in record.source_bases]
