"""Checks before any work starts, so a mistake ends in one clear line.

The command line is checked before Hydra starts: Hydra's own errors for an unknown
group option or key are several lines long; here every override (each value of a
sweep) is composed once, checked against the schema (benchmark/schema/), and any problem
becomes a :class:`UserError` naming the fix. Every job checks its composed config again
(:func:`check_config`): a launcher may run it on another machine.
"""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig

from benchmark.config import composition_error, compose_config
from benchmark.errors import UserError
from benchmark.measures import check_measures, enabled_measures
from benchmark.protocol import HIGHEST, MEAN_HIGHEST, check_point, treatment_named
from benchmark.schema import validate
from benchmark.train import check_device, evaluated_after


def _variants(overrides: Sequence[str]) -> list[list[str]]:
    """One override list per sweep value: each value is composed at least once (the list of every
    axis's first value once, not once per axis)."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    base, sweeps = [], []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override() and key.startswith("hydra."):
            raise UserError(f"'{override.input_line}' sweeps a hydra.* setting, which Hydra does not "
                            "support; give the grid axes directly, e.g. treatment=base,transfer n=1,5")
        if override.is_sweep_override() and override.is_discrete_sweep():
            sweeps.append([f"{key}={v}" for v in override.sweep_string_iterator()])
        elif override.is_sweep_override():
            raise UserError(f"'{override.input_line}' is a sweep type this app does not support; "
                            "list the values with commas, e.g. n=1,2,3 or n=range(1,8)")
        else:
            base.append(override.input_line)
    if not sweeps:
        return [base]
    variants = [base + [first[0] for first in sweeps[:i]] + [value] + [s[0] for s in sweeps[i + 1:]]
                for i, values in enumerate(sweeps) for value in values]
    return [list(v) for v in dict.fromkeys(tuple(v) for v in variants)]


def check_output_dir(path: str) -> None:
    """Fail early, in one line, when the output directory cannot be created or written."""
    folder = Path(path).absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(f"cannot write the output directory {folder} ({error.strerror}); choose "
                        "another one with hydra.run.dir=... (or hydra.sweep.dir=... with -m)") from None


def check_overrides(overrides: Sequence[str], multirun: bool, config_dirs: Sequence[str] = ()
                    ) -> None:
    """Raise :class:`UserError` if any command-line override cannot be composed (with the
    user's ``config_dirs``), a value is of the wrong type or out of range, a single run is
    not a point of the protocol, or the output directory cannot be written."""
    for folder in config_dirs:
        if not Path(folder).is_dir():
            raise UserError(f"--config-dir {folder} is not a folder; give the folder that holds your "
                            "own config groups (e.g. myconf/ with myconf/experiment/mine.yaml)")
    try:
        treatments = set()
        for variant in _variants(overrides):
            cfg = compose_config(*variant, hydra_config=True, config_dirs=config_dirs)
            check_config(cfg, single_run=not multirun)
            treatments.add(str(cfg.treatment))
        if multirun:
            check_sweep_measures(cfg, treatments if _sets(overrides, "treatment") else _swept(cfg, "treatment"))
    except OverrideParseException as error:
        raise UserError(f"cannot parse the command line: {str(error).splitlines()[0]}; "
                        "write overrides as key=value, e.g. n=3") from None
    except HydraException as error:
        raise UserError(composition_error(error)) from None
    try:
        output_dir = cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir
    except Exception:  # resolvers that only work inside a Hydra job: Hydra checks it then
        return
    check_output_dir(output_dir)


def _sets(overrides: Sequence[str], key: str) -> bool:
    return any(o.get_key_element() == key for o in OverridesParser.create().parse_overrides(list(overrides)))


def _swept(cfg: DictConfig, key: str) -> set[str]:
    """The values of ``key`` a sweep runs when the command line does not set it: its sweeper's
    (an experiment's ``hydra.sweeper.params``), else the config's one value."""
    params = cfg.hydra.sweeper.get("params") or {}
    return {v.strip() for v in str(params[key]).split(",")} if key in params else {str(cfg[key])}


def check_sweep_measures(cfg: DictConfig, treatments: set[str]) -> None:
    """A sweep of base networks alone (no treatment copies layers, e.g. experiment=probe) has no
    curve but the per-block measures' (analysis.measures): with every measure off it would run and
    report nothing."""
    if all(treatment_named(t).is_base for t in treatments) and not enabled_measures(cfg.analysis):
        raise UserError(f"this sweep trains base networks only (treatment={','.join(sorted(treatments))}), whose "
                        "blocks only the measures read, and analysis.measures switches every measure off: it "
                        "would measure nothing; name some (e.g. analysis.measures=[cka,linear_probe,knn,logme]) "
                        "or sweep treatments that copy layers (treatment=base,selffer,transfer)")


def check_score(cfg: DictConfig) -> None:
    """``analysis.metric=mean_highest`` scores a network by its HIGHEST best evaluations: the
    training recipe must evaluate the held-out images that often."""
    evaluated = sum(evaluated_after(epoch, cfg.train) for epoch in range(1, cfg.train.epochs + 1))
    if cfg.analysis.metric == MEAN_HIGHEST and evaluated < HIGHEST:
        raise UserError(f"analysis.metric={MEAN_HIGHEST} is the mean of a network's {HIGHEST} best "
                        f"held-out evaluations, and train.epochs={cfg.train.epochs} with "
                        f"train.eval_every={cfg.train.eval_every} evaluates {evaluated} times; set "
                        f"train.eval_every=1 and train.epochs={HIGHEST} or more, or another analysis.metric")


def check_config(cfg: DictConfig, single_run: bool = True) -> None:
    """Every value against its key's rules (benchmark/schema/) and, for a single run, the
    protocol's rules for the point and the device's presence (a sweep's points are checked
    by its sweeper, the device by each job on the machine that runs it)."""
    validate(cfg)
    check_measures(cfg.analysis.measures)
    check_score(cfg)
    if "hydra" in cfg:  # composed on the command line: the launcher's and sweeper's settings too
        validate(cfg.hydra.launcher, "hydra.launcher.")
        validate(cfg.hydra.sweeper, "hydra.sweeper.")
    if single_run:
        check_point(cfg)
        check_device(cfg.device)
