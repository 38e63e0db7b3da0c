"""The settings a sweep's runs were made with, read from their records: the config keys that
determine a result (benchmark/store/fingerprint.py), flattened, and those that differ between
runs beyond the protocol's own point (treatment, n, finetune, target, seed)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from benchmark.store.fingerprint import determining_view
from benchmark.store.record import RunRecord

# the point of the protocol: varies within every sweep by design (split.seed is ${seed})
POINT_KEYS = ("treatment", "n", "finetune", "target", "seed", "split.seed")


def flat_config(record: RunRecord) -> dict[str, Any]:
    """The record's determining config as ``{dotted.key: value}`` (empty for a record without one)."""
    return _flatten(determining_view(record.config or {}))


def varying_keys(records: Iterable[RunRecord]) -> list[str]:
    """The dotted keys whose value differs between the records, the protocol's point left out."""
    flats = [flat_config(r) for r in records if r.config]
    keys = sorted({k for flat in flats for k in flat} - set(POINT_KEYS))
    return [k for k in keys if len({_hashable(flat.get(k)) for flat in flats}) > 1]


def values_of(records: Sequence[RunRecord], key: str) -> list[Any]:
    """The distinct values of ``key`` (dotted) in the records' whole config, sorted."""
    seen = {_hashable(value): value for value in (_flatten(r.config or {}).get(key) for r in records)}
    return [seen[k] for k in sorted(seen)]


def _flatten(node: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for name, value in node.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[prefix + name] = value
    return flat


def _hashable(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
