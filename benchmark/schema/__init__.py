"""The config schema: every public key's type, allowed values, default and role, in one place.

Each YAML file of conf/ names its schema first in its defaults list
(``/schema/<group>/<name>@_here_``), so Hydra types every key as it composes (a wrong
type never reaches a run) and refuses keys the schema does not know. The allowed values
(ranges, choices, rules between keys) are the checks beside each key, which
:func:`validate` runs before any data is loaded or any file is written. Each key also says
whether it determines a result and, if it came later, the value that reproduces older runs
(:func:`benchmark.schema.keys.key`); fingerprints and base-cache keys follow from that.

The schema sits at the bottom of the package: it imports only the protocol's vocabulary,
the published references' names and the launchers' own config classes.
"""
from __future__ import annotations

# importing each module stores its schemas in Hydra's ConfigStore
from benchmark.schema import config, dataset, launcher, model, split, sweeper, train
from benchmark.schema.keys import Check, Leaf, schema_leaves, type_error, validate
from benchmark.schema.launcher import stored_options

__all__ = ["Check", "GROUP_SCHEMAS", "Leaf", "ROOT", "launcher", "schema_leaves",
           "stored_options", "type_error", "validate"]

ROOT = config.Config  # conf/config.yaml
# every schema an option of a config group may name, by group
GROUP_SCHEMAS: dict[str, tuple[type, ...]] = {
    "dataset": tuple(dataset.SCHEMAS.values()), "model": tuple(model.SCHEMAS.values()),
    "split": tuple(split.SCHEMAS.values()), "train": tuple(train.SCHEMAS.values())}

