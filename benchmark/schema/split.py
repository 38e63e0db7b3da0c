"""Schemas of the ``split`` group (conf/split/*.yaml)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from benchmark.schema.keys import key, one_of, seed_range, store

RANDOM_SPLIT = "random"  # the paper's random halves (finding 5 compares other splits with it)


@dataclass
class All:
    name: str = key()


@dataclass
class Random(All):
    seed: int = key(seed_range())


@dataclass
class Family(Random):
    families_A: Optional[list[str]] = key()


@dataclass
class NamedFamilies(Family):
    """A family split under its own name (natural_manmade, superclass)."""

    kind: str = key(one_of(("family",)))


@dataclass
class Classes(All):
    file: Optional[str] = key()
    A: Optional[list[str]] = key()
    B: Optional[list[str]] = key()


SCHEMAS = {"all": All, "random": Random, "family": Family, "named_families": NamedFamilies,
           "classes": Classes}
for _name, _schema in SCHEMAS.items():
    store("split", _name, _schema)
