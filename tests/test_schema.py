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

from benchmark.config import CONFIG_DIR, boolean_error, compose_config, composition_error
from benchmark.errors import UserError
from benchmark.preflight import check_config, check_overrides
from benchmark.schema import Leaf, schema_leaves, stored_options, validate
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


# what each test of a key reads: the default config (its own keys and the sweeper's), an option of a
# group (the keys it adds to the default config's), a launcher (its keys): listed without composing,
# so collection composes nothing; each config is composed by the worker that tests it, once
LAUNCHER_SELECTIONS = [(f"hydra/launcher={launcher}",) for launcher in LAUNCHERS]
SELECTIONS = _selections() + LAUNCHER_SELECTIONS


@functools.cache
def _keys_of(selection: tuple[str, ...]) -> tuple[Leaf, ...]:
    """The typed schema keys ``selection`` brings: the default config's (and the sweeper's, as
    ``hydra.sweeper.KEY``), those a group option adds to them, or a launcher's (as
    ``hydra.launcher.KEY``)."""
    if not selection:
        sweeper_cfg = _composed(hydra_config=True).hydra.sweeper
        return (*(leaf for leaf in schema_leaves(_composed()) if leaf.type is not typing.Any),
                *(dataclasses.replace(leaf, path=f"hydra.sweeper.{leaf.path}")
                  for leaf in schema_leaves(sweeper_cfg) if leaf.type is not typing.Any or leaf.checks))
    if selection in LAUNCHER_SELECTIONS:
        launcher_cfg = _composed(*selection, hydra_config=True).hydra.launcher
        return tuple(dataclasses.replace(leaf, path=f"hydra.launcher.{leaf.path}")
                     for leaf in schema_leaves(launcher_cfg) if leaf.type is not typing.Any)
    default = {leaf.path for leaf in _keys_of(())}
    return tuple(leaf for leaf in schema_leaves(_composed(*selection))
                 if leaf.path not in default and leaf.type is not typing.Any)


def _name(selection: tuple[str, ...]) -> str:
    return selection[0] if selection else "default"


def _wrong_types(kind: object) -> list[str]:
    """Values of the wrong type for a key of type ``kind`` as one writes them on the command line."""
    kinds = set(typing.get_args(kind)) or {kind}
    containers = {typing.get_origin(k) for k in {kind, *kinds}}
    if list in containers or dict in containers:
        return ["7"]
    if int in kinds and str in kinds:
        return ["[1]"]
    if bool in kinds:
        return ["maybe", "2", "yes"]  # OmegaConf itself takes a whole number and yes/no/on/off
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


@pytest.mark.parametrize("selection", _selections(), ids=_name)
def test_the_schema_covers_every_key_of_every_option(selection):
    cfg = _composed(*selection)
    typed = {leaf.path for leaf in schema_leaves(cfg)}
    groups = {leaf.path for leaf in schema_leaves(cfg) if leaf.type is typing.Any}
    for group in groups:
        assert OmegaConf.get_type(cfg[group]) is not dict, f"{selection}: {group} has no schema"
    leaves = _leaf_paths(OmegaConf.to_container(cfg))
    assert leaves <= typed | {p for p in leaves if p.split(".")[0] in groups
                              and any(p.startswith(f"{t}.") or p == t for t in typed)}


def test_the_keys_tried_below_are_the_schemas_many():
    assert sum(len(_keys_of(selection)) for selection in SELECTIONS) > 200


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
    override parsed by Hydra's grammar (a true/false key given anything else is refused as written,
    ``boolean_error``) and merged as Hydra merges a key's override, then the checks every command
    line gets (``check_config``; a sweep's for a launcher's or the sweeper's key). A
    value OmegaConf cannot convert to a typed key is named by ``composition_error``, as the console
    script names it. ``test_the_console_script_refuses_in_the_line_the_composed_config_gives`` holds the
    two equal for one value of each kind (on the day this was written, for all 494 values tried then)."""
    (parsed,) = OverridesParser.create().parse_overrides([override])
    cfg = copy.deepcopy(_composed(*selection, hydra_config=True))
    if problem := boolean_error([override], cfg):
        return f"error: {problem}"
    try:
        OmegaConf.update(cfg, parsed.key_or_group, parsed.value(), merge=True)
        check_config(cfg, single_run=not _is_sweep(override))
    except ValidationError as error:
        return f"error: {composition_error(error)}"
    except UserError as error:
        return f"error: {error}"
    raise AssertionError(f"{override} on {selection or 'the default config'} was accepted")


def _wrong_values(selection: tuple[str, ...]) -> list[tuple[Leaf, str]]:
    return [(leaf, f"{leaf.path}={value}") for leaf in _keys_of(selection) for value in _wrong_types(leaf.type)]


def _ruled(selection: tuple[str, ...]) -> list[tuple[Leaf, object]]:
    return [(leaf, check) for leaf in _keys_of(selection) for check in leaf.checks if check.bad is not None]


def _badly_refused(selection: tuple[str, ...], refusals: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """Each override whose refusal is not one line holding all its expected words, with that line."""
    lines = {override: _refusal(selection, override) for override, _ in refusals}
    return [f"{override}: {lines[override]}" for override, expected in refusals
            if "\n" in lines[override] or not all(words in lines[override] for words in expected)]


@pytest.mark.parametrize("selection", SELECTIONS, ids=_name)
def test_a_value_of_the_wrong_type_is_refused_in_one_line(selection):
    refusals = [(override, (f"{leaf.path}=",)) for leaf, override in _wrong_values(selection)]
    assert not _badly_refused(selection, refusals)


@pytest.mark.parametrize("selection", SELECTIONS, ids=_name)
def test_a_value_its_rule_refuses_is_refused_in_one_line(selection):
    refusals = [(f"{leaf.path}={_written(check.bad)}", (f"{leaf.path}=", check.rule))
                for leaf, check in _ruled(selection)]
    assert not _badly_refused(selection, refusals)


def _one_of_each_kind(selections: list[tuple[str, ...]], keys: str) -> list[tuple[tuple[str, ...], str]]:
    """The refusals above of the ``keys`` section (app, hydra.sweeper, hydra.launcher) of
    ``selections``, one per kind of value: each wrong value as written, and a rule's bad value."""
    kinds: dict[str, tuple[tuple[str, ...], str]] = {}
    for selection in selections:
        for leaf, override in _wrong_values(selection):
            if _section(leaf) == keys:
                kinds.setdefault(override.split("=", 1)[1], (selection, override))
        for leaf, check in _ruled(selection):
            if _section(leaf) == keys:
                kinds.setdefault("rule", (selection, f"{leaf.path}={_written(check.bad)}"))
    return list(kinds.values())


def _section(leaf: Leaf) -> str:
    return ".".join(leaf.path.split(".")[:2]) if _is_sweep(leaf.path) else "app"


@pytest.mark.parametrize("selections, keys", [(_selections(), "app"), ([()], "hydra.sweeper"),
                                              *(([launcher], "hydra.launcher") for launcher in LAUNCHER_SELECTIONS)],
                         ids=["app", "sweeper", *LAUNCHERS])
def test_the_console_script_refuses_in_the_line_the_composed_config_gives(tmp_path, selections, keys):
    cases = _one_of_each_kind(selections, keys)
    assert cases
    for i, (selection, override) in enumerate(cases):
        (tmp_path / str(i)).mkdir()
        assert _refuses(tmp_path / str(i), *selection, override) == _refusal(selection, override)


@pytest.mark.parametrize("selection", SELECTIONS, ids=_name)
def test_the_example_each_rule_suggests_passes_it(selection):
    """Each example as a command-line override of its selection's config: parsed by Hydra's
    grammar and merged into the composed config as Hydra merges an override of a key (one
    composition per selection, not one per rule)."""
    parser = OverridesParser.create()
    composed = _composed(*selection, hydra_config=True)
    for leaf, check in _ruled(selection):
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


def test_each_value_of_a_swept_true_false_key_is_true_or_false(tmp_path):
    with pytest.raises(UserError) as refused:
        check_overrides(["finetune=false,2", "treatment=transfer", "n=2", f"hydra.sweep.dir={tmp_path}"],
                        multirun=True)
    assert str(refused.value) == "finetune=2 is not true or false; write e.g. finetune=true"
    check_overrides(["finetune=false,true", "treatment=transfer", "n=2", "model.batchnorm=${finetune}",
                     "train.nesterov='false'", f"hydra.sweep.dir={tmp_path}"], multirun=True)  # no slips


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
