"""``transferbench --help``: the page Hydra's app help template shows (conf/config.yaml
``hydra.help.template``), made from the project's own tables so it never goes stale: the
treatments and their labels (benchmark/protocol.py), each config group's options and the
presets with the first line of their YAML comment (conf/; for hydra/launcher also the options
Hydra's plugins store, with the first line of their schema's docstring), and every key of the run
config with its type and default (benchmark/schema/)."""
from __future__ import annotations

import textwrap
import typing
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from benchmark.errors import UserError
from benchmark.blocks import model_blocks
from benchmark.models import model_label
from benchmark.protocol import SERIES, TREATMENTS, run_label
from benchmark.schema import Leaf, schema_leaves, stored_options

GROUPS = ("dataset", "model", "train", "split", "experiment", "hydra/launcher")
EXAMPLES = (
    ("transferbench treatment=transfer n=3 finetune=true target=B seed=0", "one run: AnB+3"),
    ("transferbench -m experiment=demo", "the paper's grid, 3 seeds: its curve and verdicts"),
    ("transferbench -m experiment=cifar10 data.root=/data hydra/launcher=slurm",
     "a real dataset on a Slurm cluster"),
)


def help_page(cfg: DictConfig) -> str:
    """The page for the config ``cfg`` as composed (so ``model=vit --help`` lists the ViT's
    keys); Hydra puts its own flags where ``$FLAGS_HELP`` stands."""
    folders = _config_folders(cfg)
    page = "\n".join([
        "transferbench: how transferable is each layer of a network? (Yosinski et al. 2014)",
        "",
        "usage: transferbench [KEY=VALUE ...]          one run",
        "       transferbench -m [KEY=V1,V2 ...]       a sweep: the protocol's grid, base runs first",
        "",
        "examples:",
        *(f"  {command:<74} # {what}" for command, what in EXAMPLES),
        "",
        "treatments (treatment=..., the label of n=3 on target B; finetune=true adds +):",
        *_treatments(),
        "",
        *_layers(cfg),
        "",
        "config groups (GROUP=OPTION), from " + ", ".join(map(str, folders)) + ":",
        *(line for group in GROUPS for line in _group(folders, group)),
        "",
        "keys (KEY=VALUE; type, default); each group's keys: transferbench GROUP=OPTION --cfg job",
        *_keys(cfg),
    ])
    # Hydra fills the template with string.Template: every other $ must be written $$
    return page.replace("$", "$$") + "\n\n$FLAGS_HELP"


def _layers(cfg: DictConfig) -> list[str]:
    """The chosen model's layers: what n counts (model=timm model.arch=... --help lists a zoo model's)."""
    try:
        blocks = model_blocks(cfg)
    except UserError as error:
        return [f"layers of model={model_label(cfg.model)}: cannot be listed ({error})"]
    return [f"layers of model={model_label(cfg.model)} (n=1..{len(blocks)}; the head is never copied):",
            *textwrap.wrap(", ".join(f"{n} {name}" for n, name in enumerate(blocks, start=1)),
                           width=110, initial_indent="  ", subsequent_indent="  ")]


def _treatments() -> list[str]:
    lines, seen = [], set()
    for series in SERIES:
        if series.finetune or series.treatment in seen:  # one line per treatment
            continue
        seen.add(series.treatment)
        treatment = TREATMENTS[series.treatment]
        n = 0 if treatment.is_base else 3
        label = run_label(series.treatment, n, False, "B")
        plus = f" / {run_label(series.treatment, n, True, 'B')}" if treatment.finetunable else ""
        lines.append(f"  {series.treatment:<10} {label + plus:<14} {series.legend.replace('$', '')}")
    return lines


def _config_folders(cfg: DictConfig) -> list[Path]:
    """The config folders Hydra searches (conf/, then --config-dir / hydra.searchpath ones)."""
    sources = cfg.hydra.runtime.config_sources
    return [Path(s.path) for s in sources if s.schema == "file" and Path(s.path).is_dir()]


def _group(folders: list[Path], group: str) -> list[str]:
    """The group's options with the first line of their comment: the YAML files of ``folders`` and,
    for Hydra's groups, the options Hydra's plugins store."""
    options = {**stored_options(group),
               **{path.stem: _first_comment(path) for folder in reversed(folders)
                  for path in (folder / group).glob("*.yaml")}}  # the first folder wins, as in Hydra
    return [f"  {group}:"] + [f"    {name:<24} {options[name]}"[:110] for name in sorted(options)]


def _first_comment(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.lstrip("# ").strip()
        if line.startswith("#") and text and not text.startswith("@package"):
            return text
    return ""


def _keys(cfg: DictConfig) -> list[str]:
    written = OmegaConf.to_container(cfg, resolve=False)  # interpolations as the YAML writes them
    return [f"  {leaf.path:<34} {type_name(leaf):<32} {default_text(written, leaf.path)}"
            for leaf in schema_leaves(cfg) if leaf.type is not typing.Any]


def default_text(config: dict, path: str) -> str:
    """The value at dotted ``path`` of ``config`` as the command line writes it."""
    value = config
    for part in path.split("."):
        value = value[part]
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def type_name(leaf: Leaf) -> str:
    """The key's type in words: its choices (a|b|c), or its type's name (int|null)."""
    choices = next((c.choices for c in leaf.checks if c.choices), None)
    if choices:
        return "|".join(choices)
    kinds = typing.get_args(leaf.type) if typing.get_origin(leaf.type) is not list else ()
    names = [getattr(k, "__name__", "null") if k is not type(None) else "null" for k in kinds]
    return "|".join(names) if names else getattr(leaf.type, "__name__", str(leaf.type))
