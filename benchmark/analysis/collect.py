"""Find, validate and de-duplicate the ``result.json`` files of a sweep.

A broken file never stops the aggregation: it is returned as a problem with
its path and what is wrong with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.store.record import RunRecord
from benchmark.store.results import read_result, result_files, source_base_results


@dataclass(frozen=True)
class Collection:
    """Readable runs (the newest of each identity), unreadable files, dropped copies."""

    results: list[RunRecord]
    problems: list[dict]
    duplicates: list[str]


def run_identity(record: RunRecord) -> tuple:
    """Two records with the same identity are repeats of one run (a base network reported as
    the source of another half's runs is not a repeat of that half's own base run)."""
    return (record.label, record.seed, record.target, record.source_for, *record.experiment())


def collect(sweep_dir: Path) -> Collection:
    """Load every result.json below ``sweep_dir``; keep the newest (by mtime) of repeats.

    Each kept record gets its ``path``: its file, relative to ``sweep_dir`` (a source base
    network that a base run reports: that file, ``#`` and the source's label).
    """
    newest: dict[tuple, tuple[float, RunRecord]] = {}
    problems: list[dict] = []
    duplicates: list[str] = []
    for path in result_files(sweep_dir):
        relative = path.relative_to(sweep_dir).as_posix()
        try:
            record = read_result(path).but(path=relative)
        except ValueError as exc:
            problems.append({"path": relative, "error": str(exc)})
            continue
        mtime = path.stat().st_mtime
        for source in source_base_results(record):
            _keep_newest(newest, duplicates, mtime, source.but(path=f"{relative}#{source.label}"))
        _keep_newest(newest, duplicates, mtime, record)
    return Collection([result for _, result in newest.values()], problems, duplicates)


def _keep_newest(newest: dict[tuple, tuple[float, RunRecord]], duplicates: list[str], mtime: float,
                 record: RunRecord) -> None:
    candidate = (mtime, record)
    key = run_identity(record)
    if key in newest:
        older, candidate = sorted((newest[key], candidate), key=lambda item: item[0])
        duplicates.append(older[1].path)
    newest[key] = candidate
