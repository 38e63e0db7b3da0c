"""Writers for results.csv and summary.json; every output file is written atomically."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path

from benchmark.analysis.recipe import flat_config, varying_keys
from benchmark.protocol import RUN_METRICS, TREATMENTS
from benchmark.store.record import RunRecord
from benchmark.store.atomic import atomic_write_bytes

RUN_FIELDS = ("label", "treatment", "n", "block", "finetune", "source", "target", "seed", "status")
TAIL_FIELDS = ("wall_s", "dataset", "model", "split", "reason", "source_for", "git_commit", "path")


def write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(data: dict, path: Path) -> Path:
    """Strict JSON: a NaN reaching here is a bug, not something to write as ``NaN``."""
    return write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_results_csv(results: Iterable[RunRecord], path: Path) -> Path:
    """One row per run; metrics beyond the standard four get their own columns at the end, then
    the config keys whose value differs between the runs (the protocol's point aside, e.g.
    ``train.epochs`` when a sweep pools two recipes), each under its dotted name."""
    results = sorted(results, key=_row_order)
    extra = sorted({m for r in results for m in (r.metrics or {})} - set(RUN_METRICS))
    recipe = varying_keys(results)
    columns = [*RUN_FIELDS, *RUN_METRICS, *TAIL_FIELDS, *extra, *recipe]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for result in results:
        metrics = result.metrics or {}
        config = flat_config(result)
        writer.writerow({**{c: metrics.get(c) if c in RUN_METRICS or c in extra else getattr(result, c)
                            for c in columns if c not in recipe},
                         **{key: _cell(config.get(key)) for key in recipe}})
    return write_text(path, buffer.getvalue())


def _cell(value: object) -> object:
    """A config value in a CSV cell: lists and mappings as JSON, the rest as it is."""
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _row_order(record: RunRecord) -> tuple:
    return (list(TREATMENTS).index(record.treatment), record.n, bool(record.finetune),
            str(record.target), str(record.label), record.seed)
