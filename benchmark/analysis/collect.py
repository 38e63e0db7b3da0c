"""Find, validate and de-duplicate the ``result.json`` files of a sweep.

A broken file never stops the aggregation: it is returned as a problem with
its path and what is wrong with it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

RESULT_NAME = "result.json"
TREATMENTS = ("base", "selffer", "transfer", "random")
REQUIRED = ("label", "treatment", "n", "target", "seed", "status")


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
    """Two results with the same identity are repeats of one run."""
    return (result["label"], result["seed"], result["target"], *experiment_identity(result))


def load_result(path: Path) -> dict:
    """Parse and check one result.json; raise ValueError saying what is wrong."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable JSON ({exc})") from exc
    if not isinstance(result, dict):
        raise ValueError("not a JSON object")
    missing = [key for key in REQUIRED if key not in result]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    if result["treatment"] not in TREATMENTS:
        raise ValueError(f"unknown treatment {result['treatment']!r}, expected one of {TREATMENTS}")
    for key in ("n", "seed"):
        if not isinstance(result[key], int) or isinstance(result[key], bool):
            raise ValueError(f"{key} must be an integer, got {result[key]!r}")
    return result


def collect(sweep_dir: Path) -> Collection:
    """Load every result.json below ``sweep_dir``; keep the newest (by mtime) of repeats.

    Each kept result gets a ``path`` entry: its file, relative to ``sweep_dir``.
    """
    newest: dict[tuple, tuple[float, dict]] = {}
    problems: list[dict] = []
    duplicates: list[str] = []
    for path in sorted(sweep_dir.rglob(RESULT_NAME)):
        relative = path.relative_to(sweep_dir).as_posix()
        try:
            result = load_result(path)
        except ValueError as exc:
            problems.append({"path": relative, "error": str(exc)})
            continue
        result["path"] = relative
        candidate = (path.stat().st_mtime, result)
        key = run_identity(result)
        if key in newest:
            older, candidate = sorted((newest[key], candidate), key=lambda item: item[0])
            duplicates.append(older[1]["path"])
        newest[key] = candidate
    return Collection([result for _, result in newest.values()], problems, duplicates)
