"""The config schema: every public key's type and allowed values, in one place.

Each YAML file of conf/ names its schema first in its defaults list
(``/schema/<group>/<name>@_here_``), so Hydra types every key as it composes (a wrong
type never reaches a run) and refuses keys the schema does not know. The allowed values
(ranges, choices, rules between keys) are the checks beside each key, which
:func:`validate` runs before any data is loaded or any file is written.
"""
from __future__ import annotations

from benchmark.schema.keys import Check, Leaf, schema_leaves, type_error, validate

__all__ = ["Check", "Leaf", "register", "schema_leaves", "type_error", "validate"]


def register() -> None:
    """Store every schema in Hydra's ConfigStore (before the first composition)."""
    from benchmark.schema import config, dataset, launcher, model, split, train  # noqa: F401  (each stores its own)
