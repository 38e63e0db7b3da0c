"""Which config decides a result, derived from the schema (benchmark/schema/): the
fingerprint of a run's config, and the key of a base network in the base cache.

Each schema key declares whether it determines a result and, when it was added after results
were first written, its ``older`` value: keys that do not determine a result, and later keys
at their older value, stay out of both, so finished work keeps its fingerprint and a sweep
directory written by an earlier version resumes without training anything.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmark.schema import GROUP_SCHEMAS, ROOT
from benchmark.schema.keys import ABSENT
from benchmark.store.atomic import sha256

CACHE_FORMAT = 1
# config groups whose options decide what a base network learns (with the split, the half and
# the seed): a base cache key holds exactly these
DETERMINING_GROUPS = ("dataset", "model", "train")

# A policy, per key name: DROP (never determines), ("older", value) (determines unless at that
# value), or a nested policy for a key whose value is itself a config node.
DROP = "drop"
Policy = dict[str, Any]


def _policy(schemas: tuple[type, ...]) -> Policy:
    """The keys of ``schemas`` (the options of one node) that are not simply determining."""
    policy: Policy = {}
    for schema in schemas:
        hints = typing.get_type_hints(schema)
        for field in dataclasses.fields(schema):
            meta, kind = field.metadata, hints[field.name]
            if not meta.get("determines", True):
                policy[field.name] = DROP
            elif meta.get("older", ABSENT) is not ABSENT:
                policy[field.name] = ("older", meta["older"])
            elif field.name in GROUP_SCHEMAS:
                policy[field.name] = _policy(GROUP_SCHEMAS[field.name])
            elif dataclasses.is_dataclass(kind) and _policy((kind,)):
                policy[field.name] = _policy((kind,))
    return policy


POLICY = _policy((ROOT,))


def determining_view(config: dict, policy: Policy = POLICY) -> dict:
    """``config`` (a plain container) without the keys that do not determine a result."""
    view = {}
    for name, value in config.items():
        rule = policy.get(name)
        if rule == DROP or (isinstance(rule, tuple) and value == rule[1]):
            continue
        view[name] = determining_view(value, rule) if isinstance(rule, dict) and isinstance(value, dict) \
            else value
    return view


def not_determining() -> set[str]:
    """Dotted paths of the keys that never determine a result (``wandb``, ``data.root``, ...)."""
    def walk(policy: Policy, prefix: str) -> set[str]:
        paths = set()
        for name, rule in policy.items():
            if rule == DROP:
                paths.add(prefix + name)
            elif isinstance(rule, dict):
                paths |= walk(rule, f"{prefix}{name}.")
        return paths
    return walk(POLICY, "")


def later_keys() -> dict[str, dict[str, Any]]:
    """Per config group, the keys added later and the value that reproduces older runs."""
    return {group: {name: rule[1] for name, rule in POLICY[group].items() if isinstance(rule, tuple)}
            for group in DETERMINING_GROUPS}


LATER_KEYS = later_keys()


def config_fingerprint(cfg: DictConfig) -> str:
    """Hash of the resolved config that determines a run's result."""
    config = determining_view(OmegaConf.to_container(cfg, resolve=True))
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def base_fields(cfg: DictConfig, half: str, preprocessing: dict | None = None) -> dict[str, Any]:
    """Exactly the config that determines the base network of ``half`` (its cache key); a
    ``preprocessing`` other than the dataset's (a pretrained source's) is part of it."""
    pick = lambda key: OmegaConf.to_container(cfg[key], resolve=True)  # noqa: E731
    target = half == cfg.target
    return {**{group: determining_view(pick(group), POLICY[group]) for group in DETERMINING_GROUPS},
            "split": pick("split"), "half": half, "seed": cfg.seed,
            "train_per_class": cfg.data.train_per_class if target else None,
            "target_fraction": cfg.data.target_fraction if target else None,
            **({"preprocessing": preprocessing} if preprocessing else {})}


def cache_key(fields: dict[str, Any]) -> str:
    canonical = json.dumps({"format": CACHE_FORMAT, **fields}, sort_keys=True, default=str)
    return sha256(canonical.encode())[:16]
