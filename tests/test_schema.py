"""The config schema (benchmark/schema/): every key typed and checked.

The keys are enumerated from the schema itself (every option of every config group), so
a key added tomorrow is tried here the day it is added: a value of the wrong type and,
where the key has a rule, a value the rule refuses must each end in one ``error:`` line. Every
such value is checked on its selection's config, composed once; one of each kind also goes
through the console script's entry point, which must print that same line and nothing else,
exit 2 and write no result.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import typing
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ValidationError

from benchmark.config import CONFIG_DIR, compose_config
from benchmark.errors import UserError
from benchmark.preflight import check_config
from benchmark.schema import Leaf, schema_leaves, stored_options, type_error, validate
from conftest import NO_FIGURES, run_main

GROUPS = ("dataset", "model", "train", "split")
# every launcher --help lists: conf/hydra/launcher/'s and those Hydra's plugins store
LAUNCHERS = sorted({*(path.stem for path in (Path(CONFIG_DIR) / "hydra" / "launcher").glob("*.yaml")),
                    *stored_options("hydra/launcher")})


def _options(group: str) -> list[str]:
    return sorted(path.stem for path in (Path(CONFIG_DIR) / group).glob("*.yaml"))


@functools.cache
def _composed(*overrides: str, hydra_config: bool = False) -> DictConfig:
    """``compose_config``, once per set of overrides in this process: collection and several
    tests read the same configs (read only; a test that changes one copies it first). Hydra
    composes the ``hydra`` node either way and only drops it when it is not asked for, so the
    config without it is the one with it, less that node: one composition serves both."""
    if hydra_config:
        return compose_config(*overrides, hydra_config=True)
    cfg = copy.deepcopy(_composed(*overrides, hydra_config=True))
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def _selections() -> list[tuple[str, ...]]:
    """The default config, then each option of each group on its own."""
    return [()] + [(f"{group}={option}",) for group in GROUPS for option in _options(group)]


def _keys() -> list[tuple[tuple[str, ...], Leaf]]:
    """Each schema key once, with the group option that has it (the first that does), the keys
    of each launcher's schema (as ``hydra.launcher.KEY``) and the sweeper's (``hydra.sweeper.KEY``)."""
    seen, keys = set(), []
    for selection in _selections():
        for leaf in schema_leaves(_composed(*selection)):
            if leaf.path not in seen and leaf.type is not typing.Any:
                seen.add(leaf.path)
                keys.append((selection, leaf))
    for launcher in LAUNCHERS:
        selection = (f"hydra/launcher={launcher}",)
        launcher_cfg = _composed(*selection, hydra_config=True).hydra.launcher
        keys += [(selection, dataclasses.replace(leaf, path=f"hydra.launcher.{leaf.path}"))
                 for leaf in schema_leaves(launcher_cfg) if leaf.type is not typing.Any]
    sweeper_cfg = _composed(hydra_config=True).hydra.sweeper
    return keys + [((), dataclasses.replace(leaf, path=f"hydra.sweeper.{leaf.path}"))
                   for leaf in schema_leaves(sweeper_cfg) if leaf.type is not typing.Any or leaf.checks]


KEYS = _keys()


def _wrong_types(kind: object) -> list[str]:
    """Values of the wrong type for a key of type ``kind`` as one writes them on the command line."""
    kinds = set(typing.get_args(kind)) or {kind}
    containers = {typing.get_origin(k) for k in {kind, *kinds}}
    if list in containers or dict in containers:
        return ["7"]
    if int in kinds and str in kinds:
        return ["[1]"]
    if bool in kinds:
        return ["maybe"]
    if int in kinds:
        return ["abc", "0.5"]
    if float in kinds:
        return ["abc"]
    return ["[1,2]"]  # a string key


def _is_sweep(override: str) -> bool:
    """A launcher's or the sweeper's key: checked on a sweep (which then starts no job)."""
    return override.startswith(("hydra.launcher.", "hydra.sweeper."))


def _refuses(tmp_path: Path, *overrides: str) -> str:
    """The one error line a run with these overrides ends in (a sweep, for a launcher's or the
    sweeper's key: it starts no job)."""
    sweep = any(_is_sweep(o) for o in overrides)
    where = ("-m", f"hydra.sweep.dir={tmp_path / 'run'}") if sweep else (f"hydra.run.dir={tmp_path / 'run'}",)
    proc = run_main(*where, *overrides, cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stdout[-1000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-1500:]
    assert not (tmp_path / "run").exists()
    return lines[0]


def test_the_schema_covers_every_key_of_every_option():
    for selection in _selections():
        cfg = _composed(*selection)
        typed = {leaf.path for leaf in schema_leaves(cfg)}
        groups = {leaf.path for leaf in schema_leaves(cfg) if leaf.type is typing.Any}
        for group in groups:
            assert OmegaConf.get_type(cfg[group]) is not dict, f"{selection}: {group} has no schema"
        leaves = _leaf_paths(OmegaConf.to_container(cfg))
        assert leaves <= typed | {p for p in leaves if p.split(".")[0] in groups
                                  and any(p.startswith(f"{t}.") or p == t for t in typed)}
    assert len(KEYS) > 80


def _leaf_paths(node: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in node.items():
        if isinstance(value, dict):
            paths |= _leaf_paths(value, f"{prefix}{key}.")
        else:
            paths.add(f"{prefix}{key}")
    return paths


def test_help_lists_every_launcher_and_each_has_a_schema(tmp_path):
    help_page = run_main("--help", cwd=tmp_path).stdout
    listed = help_page.split("  hydra/launcher:\n", 1)[1].split("\n\n", 1)[0]
    assert [line.split()[0] for line in listed.splitlines()] == LAUNCHERS
    assert {"basic", "joblib", "submitit_local", "submitit_slurm", "local", "parallel", "slurm"} <= set(LAUNCHERS)
    for launcher in LAUNCHERS:
        launcher_cfg = _composed(f"hydra/launcher={launcher}", hydra_config=True).hydra.launcher
        for leaf in schema_leaves(launcher_cfg):  # a key without a rule is one no value is out of range of
            assert leaf.checks or leaf.path == "_target_" or _unbounded(leaf.type), (launcher, leaf.path)


def _unbounded(kind: object) -> bool:
    """True/false, a list or a mapping: a value of the right type is never out of range."""
    kinds = set(typing.get_args(kind)) - {type(None)} if typing.get_origin(kind) is typing.Union else {kind}
    return all(k is bool or typing.get_origin(k) in (list, dict) for k in kinds)


@pytest.mark.parametrize("preset", _options("experiment"))
def test_every_preset_passes_the_schema(preset):
    validate(compose_config(f"experiment={preset}"))


def _written(value: object) -> str:
    return str(value).replace(" ", "").lower() if isinstance(value, (bool, list)) else str(value)


def _refusal(selection: tuple[str, ...], override: str) -> str:
    """The error line the checks before any work give for ``override`` on ``selection``'s config,
    without a composition of its own: the selection's config composed once (``_composed``), the
    override parsed by Hydra's grammar and merged as Hydra merges a key's override, then the checks
    every command line gets (``check_config``; a sweep's for a launcher's or the sweeper's key). A
    value OmegaConf cannot convert to a typed key is named by ``type_error``, as the console script
    names it. ``test_the_console_script_refuses_in_the_line_the_composed_config_gives`` holds the two
    equal (on the day this was written, for every one of the 494 values below)."""
    (parsed,) = OverridesParser.create().parse_overrides([override])
    cfg = copy.deepcopy(_composed(*selection, hydra_config=True))
    try:
        OmegaConf.update(cfg, parsed.key_or_group, parsed.value(), merge=True)
        check_config(cfg, single_run=not _is_sweep(override))
    except ValidationError as error:
        return f"error: {type_error(error.full_key, error.value, error.object_type)}"
    except UserError as error:
        return f"error: {error}"
    raise AssertionError(f"{override} on {selection or 'the default config'} was accepted")


WRONG_TYPES = [(selection, leaf, f"{leaf.path}={value}") for selection, leaf in KEYS
               for value in _wrong_types(leaf.type)]


@pytest.mark.parametrize("selection, leaf, override", WRONG_TYPES, ids=[o for _, _, o in WRONG_TYPES])
def test_a_value_of_the_wrong_type_is_refused_in_one_line(selection, leaf, override):
    line = _refusal(selection, override)
    assert "\n" not in line and f"{leaf.path}=" in line, line


RULED = [(selection, leaf, check) for selection, leaf in KEYS for check in leaf.checks
         if check.bad is not None]


@pytest.mark.parametrize("selection, leaf, check", RULED,
                         ids=[f"{leaf.path}={check.bad}" for _, leaf, check in RULED])
def test_a_value_its_rule_refuses_is_refused_in_one_line(selection, leaf, check):
    line = _refusal(selection, f"{leaf.path}={_written(check.bad)}")
    assert "\n" not in line and f"{leaf.path}=" in line and check.rule in line, line


def _one_of_each_kind() -> list[tuple[tuple[str, ...], str]]:
    """The refusals above, one per kind of value (each wrong value as written, and a rule's bad
    value) of the app's keys, of each launcher's and of the sweeper's: the console script runs these."""
    def section(selection: tuple[str, ...], leaf: Leaf) -> str:  # each launcher, the sweeper, the app's keys
        return (selection[0] if selection else "hydra.sweeper") if _is_sweep(leaf.path) else "app"

    kinds: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {}
    for selection, leaf, override in WRONG_TYPES:
        kinds.setdefault((section(selection, leaf), override.split("=", 1)[1]), (selection, override))
    for selection, leaf, check in RULED:
        kinds.setdefault((section(selection, leaf), "rule"), (selection, f"{leaf.path}={_written(check.bad)}"))
    return list(kinds.values())


@pytest.mark.parametrize("selection, override", _one_of_each_kind(), ids=lambda value: str(value))
def test_the_console_script_refuses_in_the_line_the_composed_config_gives(tmp_path, selection, override):
    assert _refuses(tmp_path, *selection, override) == _refusal(selection, override)


def test_the_example_each_rule_suggests_passes_it():
    """Each example as a command-line override of its selection's config: parsed by Hydra's
    grammar and merged into the composed config as Hydra merges an override of a key (one
    composition per selection, not one per rule)."""
    parser = OverridesParser.create()
    for selection in dict.fromkeys(selection for selection, _, _ in RULED):
        composed = _composed(*selection, hydra_config=True)
        for leaf, check in ((leaf, check) for chosen, leaf, check in RULED if chosen == selection):
            (override,) = parser.parse_overrides([f"{leaf.path}={_written(check.example)}"])
            cfg = copy.deepcopy(composed)
            OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
            validate(cfg)
            validate(cfg.hydra.launcher)
            validate(cfg.hydra.sweeper)


@pytest.mark.parametrize("device, expected", [
    ("cuda", "device=cuda is not on this machine (present: cpu"),
    ("cuda:7", "device=cuda:7 is not on this machine"),
    ("tpu", "device=tpu is not a device; use auto, cpu, cuda, cuda:INDEX or mps"),
])
def test_a_device_that_is_not_here_is_named_with_what_is(tmp_path, device, expected):
    import torch
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert expected in _refuses(tmp_path, "experiment=smoke", f"device={device}")


SWEEP_START_FILES = ("multirun.yaml", "sweep_plan.json")  # every start of a sweep writes them anew


def test_an_exception_a_launcher_raises_is_one_line_naming_the_key_and_keeps_the_results(tmp_path):
    sweep = tmp_path / "sweep"
    finished = run_main("-m", "experiment=smoke", NO_FIGURES, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-2000:]
    finished_files = lambda: {path: path.stat().st_mtime_ns for path in sweep.rglob("*")  # noqa: E731
                              if path.is_file() and path.name not in SWEEP_START_FILES}
    kept = finished_files()
    # a launcher of the user's own config folder, which no schema checks: joblib refuses it
    folder = tmp_path / "mine" / "hydra" / "launcher"
    folder.mkdir(parents=True)
    (folder / "mine.yaml").write_text(
        "_target_: hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher\nn_jobs: 0\n")
    proc = run_main("-m", "--config-dir", str(tmp_path / "mine"), "experiment=smoke", "treatment=base,selffer",
                    "n=2", "hydra/launcher=mine", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error: hydra/launcher=mine stopped: n_jobs == 0") and \
        "check hydra.launcher.n_jobs=0" in lines[0]
    assert finished_files() == kept
