"""The configuration reference page (docs/configuration-reference.md), made from the schema
(benchmark/schema/: each key's type, default and checks) and the comments beside each key (in
conf/config.yaml for the run config's own keys, in the schema's source for the groups' keys), so
the page never becomes a description of its own: ``python scripts/config_reference.py`` writes
it and tests/test_docs.py checks that the page in the repository is the one it writes."""
from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from pathlib import Path

from omegaconf import MISSING, OmegaConf

from benchmark.config import CONFIG_DIR, CONFIG_NAME, compose_config
from benchmark.help import default_text, type_name
from benchmark.schema import GROUP_SCHEMAS, Leaf, schema_leaves

PAGE = "configuration-reference.md"
HEADER = f"""# Configuration reference

Every key of the run config and of each config group's schema: its type, its default, the values
its checks allow and what it does. Generated from the schema (`benchmark/schema/`) and the comments
of `conf/config.yaml` by `python scripts/config_reference.py`: do not edit it by hand (the tests
check that it is current). `transferbench --help` prints the same keys for the config as composed,
and `python -m benchmark --cfg job [overrides]` prints the composed values.
"""
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w]*):(?P<rest>.*)$")
FIELD_LINE = re.compile(r"^\s+(?P<name>\w+):[^=]+=.*?(#\s*(?P<comment>.*))?$")


def reference_page() -> str:
    """The whole page, as Markdown."""
    cfg = compose_config()
    comments = yaml_comments(Path(CONFIG_DIR) / f"{CONFIG_NAME}.yaml")
    written = OmegaConf.to_container(cfg, resolve=False)
    rows = [_row(leaf.path, type_name(leaf), f"`{default_text(written, leaf.path)}`", leaf,
                 comments.get(leaf.path, "")) for leaf in schema_leaves(cfg)
            if leaf.type is not typing.Any and leaf.path.split(".")[0] not in GROUP_SCHEMAS]
    sections = [HEADER, "## The run config (`conf/config.yaml`)", "",
                "Set with `KEY=VALUE` on the command line; the defaults are those of `conf/config.yaml` with "
                "its default groups.", "", *_table(rows)]
    for group, schemas in GROUP_SCHEMAS.items():
        sections += ["", f"## `{group}` options", "", _options(group), ""]
        for schema in schemas:
            sections += [f"### `{group}` schema `{schema.__name__}`", "", *_table(_schema_rows(schema, group)), ""]
    return "\n".join(sections).rstrip() + "\n"


def write_reference(docs_dir: Path) -> Path:
    path = docs_dir / PAGE
    path.write_text(reference_page(), encoding="utf-8")
    return path


def yaml_comments(path: Path) -> dict[str, str]:
    """``{dotted.key: comment}`` of a YAML file: the comment after each key, with the comment lines
    under it that are indented past the key (their continuation)."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    last = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = KEY_LINE.match(line)
        if match:
            indent = len(match["indent"])
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, match["key"])]
            last = (indent, ".".join(k for _, k in stack))
            comments[last[1]] = _comment(match["rest"])
        elif line.strip().startswith("#") and last is not None and len(line) - len(line.lstrip()) > last[0]:
            comments[last[1]] = f"{comments[last[1]]} {line.strip().lstrip('#').strip()}".strip()
        else:
            last = None
    return comments


def _comment(rest: str) -> str:
    return rest.split("#", 1)[1].strip() if "#" in rest else ""


def _options(group: str) -> str:
    files = sorted((Path(CONFIG_DIR) / group).glob("*.yaml"))
    return "Options: " + ", ".join(f"`{group}={p.stem}`" for p in files) + "."


def _group_comments(group: str) -> dict[str, str]:
    """``{key: comment}`` over the group's option files (the first file that comments a key)."""
    comments: dict[str, str] = {}
    for path in sorted((Path(CONFIG_DIR) / group).glob("*.yaml")):
        for name, comment in yaml_comments(path).items():
            if comment and not comments.get(name):
                comments[name] = comment
    return comments


def _schema_rows(schema: type, group: str, prefix: str = "") -> list[list[str]]:
    hints = typing.get_type_hints(schema)
    comments = {**_group_comments(group), **{prefix + k: v for k, v in _source_comments(schema).items() if v}}
    rows = []
    for field in dataclasses.fields(schema):
        kind = hints[field.name]
        if dataclasses.is_dataclass(kind):
            rows += _schema_rows(kind, group, f"{prefix}{field.name}.")
            continue
        leaf = Leaf(f"{group}.{prefix}{field.name}", kind, tuple(field.metadata.get("checks", ())))
        default = "set by the option" if field.default is MISSING else \
            f"`{default_text({'v': field.default}, 'v')}`"
        rows.append(_row(leaf.path, type_name(leaf), default, leaf, comments.get(prefix + field.name, "")))
    return rows


def _source_comments(schema: type) -> dict[str, str]:
    """The comment of each field in the schema's source: after it on its line, or on the lines
    right above it (for each class of its hierarchy)."""
    comments: dict[str, str] = {}
    for cls in reversed([c for c in schema.__mro__ if dataclasses.is_dataclass(c)]):
        above: list[str] = []
        for line in inspect.getsource(cls).splitlines()[1:]:
            stripped = line.strip()
            if stripped.startswith("#"):
                above.append(stripped.lstrip("#").strip())
                continue
            match = FIELD_LINE.match(line)
            if match:
                comments[match["name"]] = " ".join([*above, match["comment"] or ""]).strip()
            above = []
    return comments


def _row(path: str, kind: str, default: str, leaf: Leaf, comment: str) -> list[str]:
    allowed = "; ".join(c.rule for c in leaf.checks if not c.choices)
    return [f"`{path}`", kind.replace("|", " | "), default, allowed, comment]


def _table(rows: list[list[str]]) -> list[str]:
    cells = lambda row: "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"  # noqa: E731
    return [cells(["key", "type", "default", "check", "what it does"]), "|---|---|---|---|---|",
            *map(cells, rows)]
