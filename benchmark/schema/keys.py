"""How a schema key is declared (:func:`key`), checked (:class:`Check`) and explained.

A key is a dataclass field: its type is checked by OmegaConf when Hydra composes the
config (a wrong type is answered by :func:`type_error`), its allowed values by the
checks in its metadata (:func:`validate`). Each check carries a value it refuses, so a
test can walk the schema and try every key (:func:`schema_leaves`).
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from benchmark.errors import UserError

SEED_RANGE = (0, 2**32 - 1)  # numpy.random.seed's range, which the random split uses


@dataclass(frozen=True)
class Check:
    """A rule for one key's value: ``ok(value, parent)`` (the parent node, for rules that
    compare keys), ``rule`` completing "KEY=VALUE ...", an ``example`` that passes and a
    ``bad`` value that fails (None: no out-of-range value can be written)."""

    ok: Callable[[Any, DictConfig], bool]
    rule: str
    example: Any
    bad: Any = None
    choices: tuple[str, ...] | None = None  # the allowed values, where they are a list


ABSENT = object()  # a key that has no older value: it existed when the first results were written


def key(*checks: Check, default: Any = MISSING, determines: bool = True, older: Any = ABSENT) -> Any:
    """A schema field with its ``checks``. Its value comes from conf/ unless the schema gives a
    ``default`` (then a recipe only writes it where it differs).

    ``determines=False``: the key changes where or how a run executes, never its numbers, so it
    stays out of fingerprints and base-cache keys. ``older``: for a key added after results were
    first written, the value that does what runs did before it existed; at that value the key
    stays out of them too, so finished work keeps its fingerprint (benchmark/store/fingerprint.py).
    """
    return field(default=default, metadata={"checks": checks, "determines": determines, "older": older})


def plugin_key(base: type, name: str, *checks: Check) -> Any:
    """Field ``name`` of a plugin's config class ``base`` (a Hydra launcher's or sweeper's) with its
    default kept and ``checks`` added: a subclass of ``base`` redeclares the field with it."""
    original = next(f for f in dataclasses.fields(base) if f.name == name)
    return field(default=original.default, default_factory=original.default_factory,
                 metadata={"checks": checks})


def at_least(low: float, why: str = "") -> Check:
    """``why``: the reason for the bound, shown in the error after it (e.g. a library's limit)."""
    return Check(lambda v, _: v >= low, f"must be at least {low}" + (f" ({why})" if why else ""), low, low - 1)


def positive(example: float) -> Check:
    return Check(lambda v, _: v > 0, "must be positive", example, -example)


def between(low: float, high: float, example: float, open_low: bool = False,
            open_high: bool = False) -> Check:
    """``low <= v <= high``; an open end excludes its bound (written as in maths: ``(0, 1]``)."""
    def ok(value: float, _: DictConfig) -> bool:
        above = value > low if open_low else value >= low
        below = value < high if open_high else value <= high
        return above and below
    interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    bad = high + 1 if isinstance(high, int) else high + 0.5
    return Check(ok, f"must be in {interval}", example, bad)


def matches(pattern: str, rule: str, example: str, bad: str) -> Check:
    """A text the regular expression ``pattern`` matches whole."""
    compiled = re.compile(pattern)
    return Check(lambda v, _: compiled.fullmatch(v) is not None, rule, example, bad)


def one_of(choices: Sequence[str], rule: str = "is unknown") -> Check:
    return Check(lambda v, _: v in choices, f"{rule}; use one of {', '.join(choices)}", choices[0],
                 "nonsense", tuple(choices))


def seed_range() -> Check:
    low, high = SEED_RANGE
    return Check(lambda v, _: low <= v <= high, f"is outside the random generator's range {low}..{high}",
                 0, high + 1)


def optional(check: Check) -> Check:
    """The same rule for a key that may also be null (``~``: not set)."""
    return dataclasses.replace(check, ok=lambda v, parent: v is None or check.ok(v, parent))


def store(group: str, name: str, node: type) -> None:
    """Register ``node`` as schema ``/schema/<group>/<name>`` (a group option's YAML file
    names it first in its defaults list: ``/schema/<group>/<name>@_here_``)."""
    ConfigStore.instance().store(group=f"schema/{group}" if group else "schema", name=name, node=node)


# a Hydra plugin's own config class (by its dotted name: Hydra imports plugins anew) -> the schema
# that checks its keys
PLUGIN_SCHEMAS: dict[str, type] = {}


def _dotted(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def check_plugin(plugin_conf: type, schema: type) -> None:
    """Check the keys of an option a Hydra plugin stores itself (``hydra/launcher=joblib``, config
    class ``plugin_conf``) with ``schema``: a subclass of ``plugin_conf`` whose fields add checks
    (:func:`plugin_key`)."""
    PLUGIN_SCHEMAS[_dotted(plugin_conf)] = schema


def schema_of(kind: Any) -> Any:
    """The schema that checks a node of type ``kind``: the schema a plugin's class is checked with,
    or ``kind`` itself."""
    return PLUGIN_SCHEMAS.get(_dotted(kind), kind) if isinstance(kind, type) else kind


# ---------------------------------------------------------------- walking the schema

@dataclass(frozen=True)
class Leaf:
    """One key of the schema: its dotted ``path`` in the config, its type and checks."""

    path: str
    type: Any
    checks: tuple[Check, ...]


def schema_leaves(cfg: DictConfig, prefix: str = "") -> Iterator[Leaf]:
    """Every key under ``cfg`` whose node has a schema, with its type and checks."""
    schema = schema_of(OmegaConf.get_type(cfg))
    if not dataclasses.is_dataclass(schema):
        return
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        path = f"{prefix}{f.name}"
        child = cfg._get_node(f.name)
        if isinstance(child, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(child)):
            yield from schema_leaves(child, f"{path}.")
        else:
            yield Leaf(path, hints[f.name], tuple(f.metadata.get("checks", ())))


def validate(cfg: DictConfig, prefix: str = "") -> None:
    """Raise :class:`UserError` for the first value its key's checks refuse (``prefix``:
    where ``cfg`` sits in the whole config, for the message)."""
    for leaf in schema_leaves(cfg):
        parent_path, _, name = leaf.path.rpartition(".")
        parent = OmegaConf.select(cfg, parent_path) if parent_path else cfg
        value = parent[name]
        for check in leaf.checks:
            if not check.ok(value, parent):
                where = prefix + leaf.path
                raise UserError(f"{where}={_written(value)} {check.rule}; fix it, e.g. "
                                f"{where}={_written(check.example)}")


def _written(value: Any) -> str:
    """A value as it is written on the command line."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)) or OmegaConf.is_list(value):
        return "[" + ",".join(_written(v) for v in value) + "]"
    return str(value)


# ---------------------------------------------------------------- wrong types

def type_words(kind: Any) -> tuple[str, str]:
    """What a value of this type is, in words, and one example of it."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and args:
        if len(args) == 1:
            words, example = type_words(args[0])
            return f"{words} or null", example
        return " or ".join(type_words(a)[0] for a in args), type_words(args[0])[1]
    if typing.get_origin(kind) in (dict, typing.Dict):
        return "a mapping of names to values", "{name:value}"
    if typing.get_origin(kind) in (list, typing.List):
        words, example = type_words(args[0]) if args else ("a value", None)
        example = example or "a"
        return f"a list of {words.removeprefix('a ').removeprefix('an ')}s", f"[{example},{example}]"
    return {int: ("a whole number", "1"), float: ("a number", "0.5"), bool: ("true or false", "true"),
            str: ("a string", None)}.get(kind, ("a value of type " + getattr(kind, "__name__", str(kind)), "..."))


def type_error(full_key: str, value: Any, schema: type | None) -> UserError:
    """The one line for a value OmegaConf could not convert to its key's type."""
    name = full_key.rsplit(".", 1)[-1]
    schema = schema_of(schema)
    fields = {f.name: f for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else {}
    if name not in fields:
        return UserError(f"{full_key}={_written(value)} has the wrong type; check the value "
                         "(python -m benchmark --cfg job prints every key)")
    checks = fields[name].metadata.get("checks", ())
    words, example = type_words(typing.get_type_hints(schema)[name])
    if checks and " or " in words and "null" not in words:  # a choice of types: the rule says it
        return UserError(f"{full_key}={_written(value)} {checks[0].rule}")
    if checks:
        example = _written(checks[0].example)
    if example is None:
        return UserError(f"{full_key}={_written(value)} is not {words}; write it as text (in quotes "
                         "if it has commas or brackets)")
    return UserError(f"{full_key}={_written(value)} is not {words}; write e.g. {full_key}={example}")
