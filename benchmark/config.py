"""Where the Hydra config lives and how it is composed: one place for the app, the
preflight checks, scripts/bench.py and the tests."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import BooleanNode, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from benchmark import schema  # importing it stores every schema in Hydra's ConfigStore
from benchmark.help import help_page
from benchmark.protocol import run_label


def _config_dir() -> str:
    """conf/: inside the installed package (a wheel ships it as benchmark/conf), or at the
    top of a source checkout (an editable install)."""
    package = Path(__file__).resolve().parent
    installed, checkout = package / "conf", package.parent / "conf"
    return str(installed if installed.is_dir() else checkout)


CONFIG_DIR = _config_dir()
CONFIG_NAME = "config"


def usable_cores(limit: int) -> int:
    """The CPU cores this process may run on, at most ``limit`` (conf/hydra/launcher/parallel.yaml)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, int(limit)))


# run directories are named by their label (conf/config.yaml: hydra.run.dir, hydra.sweep.subdir)
OmegaConf.register_new_resolver("tb.label", run_label, replace=True)
# transferbench --help (conf/config.yaml: hydra.help.template), made from the composed config
OmegaConf.register_new_resolver("tb.help", lambda *, _root_: help_page(_root_), replace=True)
OmegaConf.register_new_resolver("tb.cores", usable_cores, replace=True)


def compose_config(*overrides: str, hydra_config: bool = False,
                   config_dirs: Sequence[str] = ()) -> DictConfig:
    """The config a run gets from these command-line overrides (``hydra_config``: with the
    ``hydra`` node, as the app sees it; ``config_dirs``: the user's own config folders, as
    ``--config-dir`` adds them). A true/false key given anything else fails as Hydra's own
    composition errors do (:func:`boolean_error`)."""
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(CONFIG_NAME, overrides=with_search_path(list(overrides), config_dirs),
                      return_hydra_config=hydra_config)
    if problem := boolean_error(overrides, cfg):
        raise ConfigCompositionException(problem)
    return cfg


def composition_error(error: HydraException | ValidationError) -> str:
    """The one line for what Hydra could not compose from the overrides (or OmegaConf could not
    merge): a value of the wrong type (as the schema names it), an unknown option of a group, an
    unknown key; else the error's own message."""
    wrong_type = _cause(error, ValidationError)
    if wrong_type is not None and wrong_type.full_key:
        return str(schema.type_error(wrong_type.full_key, wrong_type.value, wrong_type.object_type))
    if isinstance(error, MissingConfigException) and error.options:
        group = (error.missing_cfg_file or "").rsplit("/", 1)[0]
        wanted = (error.missing_cfg_file or "").rsplit("/", 1)[-1]
        return (f"unknown {group} '{wanted}'; choose one of: {', '.join(error.options)} "
                f"(e.g. {group}={error.options[0]})")
    first = str(error).strip().splitlines()[0]
    unknown = _cause(error, ConfigKeyError)
    if first.startswith("Could not override") or (unknown is not None and unknown.full_key):
        name = first.split("'")[1] if first.startswith("Could not override") else unknown.full_key
        return (f"unknown config key '{name}'; check its spelling "
                "(`python -m benchmark --cfg job` prints every key)")
    return " ".join(str(error).split())


def boolean_error(overrides: Sequence[str], cfg: DictConfig) -> str | None:
    """The one line for an override that gives a true/false key of ``cfg`` (composed from
    ``overrides``) anything but true or false: OmegaConf takes any whole number (finetune=2) and
    yes, no, on, off as a boolean, so a slip would run as something nobody wrote."""
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_delete() or override.is_sweep_override():
            continue  # a sweep's values are given to this one at a time
        value, path = override.value(), override.key_or_group
        if isinstance(value, bool) or value is None or _quoted_boolean_or_interpolation(str(value)):
            continue
        parent_path, _, name = path.rpartition(".")
        parent = OmegaConf.select(cfg, parent_path) if parent_path else cfg
        if isinstance(parent, DictConfig) and name in parent and isinstance(parent._get_node(name), BooleanNode):
            return str(schema.type_error(path, value, OmegaConf.get_type(parent)))
    return None


def _quoted_boolean_or_interpolation(written: str) -> bool:
    return written.lower() in ("true", "false") or written.startswith("${")


E = TypeVar("E", bound=BaseException)


def _cause(error: BaseException, kind: type[E]) -> E | None:
    """The first exception of ``kind`` in the chain that raised ``error``."""
    while error is not None and not isinstance(error, kind):
        error = error.__cause__ or error.__context__
    return error


def with_search_path(overrides: list[str], config_dirs: Sequence[str]) -> list[str]:
    """``overrides`` with ``config_dirs`` added to ``hydra.searchpath`` (after any given there)."""
    if not config_dirs:
        return overrides
    given = [o for o in overrides if o.startswith(SEARCH_PATH)]
    entries = [e for o in given for e in o[len(SEARCH_PATH):].strip("[]").split(",") if e]
    entries += [f"file://{Path(d).absolute()}" for d in config_dirs]
    return [o for o in overrides if o not in given] + [f"{SEARCH_PATH}[{','.join(entries)}]"]


SEARCH_PATH = "hydra.searchpath="
