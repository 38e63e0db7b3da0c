"""The result store: what a run writes, how it is named, found, read and checked.

One ``result.json`` per run directory, written atomically; a config fingerprint in it
(benchmark/store/fingerprint.py) guards against overwriting a finished result of another
configuration. The run, the sweep's progress and the aggregation all name and read results
through this module.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

from benchmark.errors import UserError
from benchmark.protocol import TREATMENTS
from benchmark.store.atomic import atomic_write_json

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.pt"  # a run's per-epoch checkpoint, removed once its result is written
REQUIRED = ("label", "treatment", "n", "target", "seed", "status")
# a base run of a sweep's first wave lists here the source bases it trained (baseA for AnB)
SOURCE_BASES = "source_bases"
SOURCE_FOR = "source_for"  # in a source base's own result: the target half it is the source for


def finished_result(out_dir: Path, fingerprint: str) -> dict | None:
    """The result already written in ``out_dir`` if that run finished ``ok``, else None.

    An unreadable or failed result is reported and the run is done again; a finished
    result of a *different* configuration is never overwritten.
    """
    path = out_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        log.warning("%s is corrupt (%s); running this configuration again", path, error)
        return None
    if result.get("status") != "ok":
        return None
    if result.get("fingerprint") != fingerprint:
        raise UserError(f"{path} holds a finished result of a different configuration; keep it and "
                        "write this one elsewhere: set hydra.sweep.dir=... (or hydra.run.dir=...) "
                        "or sweep_name=...")
    return result


def write_result(out_dir: Path, result: dict) -> Path:
    path = out_dir / RESULT_FILE
    atomic_write_json(path, result)
    return path


def result_files(sweep_dir: Path) -> Iterator[Path]:
    """Every result.json below ``sweep_dir``, in a stable order."""
    return iter(sorted(sweep_dir.rglob(RESULT_FILE)))


def count_results(sweep_dir: Path) -> int:
    """Runs of a sweep that have written their result (one level below the sweep dir)."""
    return sum(1 for _ in sweep_dir.glob(f"*/{RESULT_FILE}"))


def read_result(path: Path) -> dict:
    """Parse and check one result.json; raise ValueError saying what is wrong (an unknown
    treatment is such a problem: it is reported, never pooled into another series)."""
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
        raise ValueError(f"unknown treatment {result['treatment']!r}, expected one of "
                         f"{', '.join(TREATMENTS)} (written by another version of transferbench?)")
    for key in ("n", "seed"):
        if not isinstance(result[key], int) or isinstance(result[key], bool):
            raise ValueError(f"{key} must be an integer, got {result[key]!r}")
    return result


def source_base_results(result: dict) -> list[dict]:
    """The source base networks a base run trained (``result[SOURCE_BASES]``) as results of
    their own: same experiment, seed and provenance, their own label, half and metrics, no
    training cost of their own (the base run paid it), ``source_for`` naming the target half."""
    shared = {k: v for k, v in result.items()
              if k not in (SOURCE_BASES, "cost", "wall_s", "metrics", "history", "network_file")}
    return [{**shared, **report, SOURCE_FOR: result["target"], "wall_s": 0.0,
             "cost": {"bases": [], "feature_cache": False}}
            for report in result.get(SOURCE_BASES) or []]
