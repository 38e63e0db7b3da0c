"""Find, validate and de-duplicate the ``result.json`` files of a sweep.

A broken file never stops the aggregation: it is returned as a problem with
its path and what is wrong with it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.store.results import SOURCE_FOR, read_result, result_files, source_base_results


@dataclass(frozen=True)
class Collection:
    """Readable runs (the newest of each identity), unreadable files, dropped copies."""

    results: list[dict]
    problems: list[dict]
    duplicates: list[str]


EXPERIMENT_FIELDS = ("dataset", "split", "model", "train_per_class", "target_fraction")


def experiment_identity(result: dict) -> tuple:
    """The fields that must agree for two runs to be compared: dataset, class split, model
    and the amount of target data."""
    return tuple(result.get(key) for key in EXPERIMENT_FIELDS)


def run_identity(result: dict) -> tuple:
    """Two results with the same identity are repeats of one run (a base network reported as
    the source of another half's runs is not a repeat of that half's own base run)."""
    return (result["label"], result["seed"], result["target"], result.get(SOURCE_FOR),
            *experiment_identity(result))


def collect(sweep_dir: Path) -> Collection:
    """Load every result.json below ``sweep_dir``; keep the newest (by mtime) of repeats.

    Each kept result gets a ``path`` entry: its file, relative to ``sweep_dir`` (a source
    base network that a base run reports: that file, ``#`` and the source's label).
    """
    newest: dict[tuple, tuple[float, dict]] = {}
    problems: list[dict] = []
    duplicates: list[str] = []
    for path in result_files(sweep_dir):
        relative = path.relative_to(sweep_dir).as_posix()
        try:
            result = read_result(path)
        except ValueError as exc:
            problems.append({"path": relative, "error": str(exc)})
            continue
        result["path"] = relative
        mtime = path.stat().st_mtime
        for source in source_base_results(result):
            _keep_newest(newest, duplicates, mtime, {**source, "path": f"{relative}#{source['label']}"})
        _keep_newest(newest, duplicates, mtime, result)
    return Collection([result for _, result in newest.values()], problems, duplicates)


def _keep_newest(newest: dict[tuple, tuple[float, dict]], duplicates: list[str], mtime: float,
                 result: dict) -> None:
    candidate = (mtime, result)
    key = run_identity(result)
    if key in newest:
        older, candidate = sorted((newest[key], candidate), key=lambda item: item[0])
        duplicates.append(older[1]["path"])
    newest[key] = candidate
