"""Checks before any work starts, so a mistake ends in one clear line.

The command line is checked before Hydra starts: Hydra's own errors for an unknown
group option or key are several lines long; here every override (each value of a
sweep) is composed once and any problem becomes a :class:`UserError` naming the fix.
Every job then checks the settings of its composed config (:func:`check_config`).
"""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf

from benchmark.analysis.findings import findings_settings
from benchmark.config import compose_config
from benchmark.errors import UserError


def _variants(overrides: Sequence[str]) -> list[list[str]]:
    """One override list per sweep value: each value is composed at least once."""
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
    return [base + [first[0] for first in sweeps[:i]] + [value] + [s[0] for s in sweeps[i + 1:]]
            for i, values in enumerate(sweeps) for value in values]


def _explain(error: HydraException) -> str:
    if isinstance(error, MissingConfigException) and error.options:
        group = (error.missing_cfg_file or "").rsplit("/", 1)[0]
        wanted = (error.missing_cfg_file or "").rsplit("/", 1)[-1]
        return (f"unknown {group} '{wanted}'; choose one of: {', '.join(error.options)} "
                f"(e.g. {group}={error.options[0]})")
    first = str(error).strip().splitlines()[0]
    if first.startswith("Could not override"):
        key = first.split("'")[1]
        return (f"unknown config key '{key}'; check its spelling "
                "(`python -m benchmark --cfg job` prints every key)")
    return " ".join(str(error).split())


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


def check_overrides(overrides: Sequence[str], multirun: bool) -> None:
    """Raise :class:`UserError` if any command-line override cannot be composed, or the
    output directory cannot be written."""
    try:
        for variant in _variants(overrides):
            cfg = compose_config(*variant, hydra_config=True)
    except OverrideParseException as error:
        raise UserError(f"cannot parse the command line: {str(error).splitlines()[0]}; "
                        "write overrides as key=value, e.g. n=3") from None
    except HydraException as error:
        raise UserError(_explain(error)) from None
    try:
        output_dir = cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir
    except Exception:  # resolvers that only work inside a Hydra job: Hydra checks it then
        return
    check_output_dir(output_dir)


def check_config(cfg: DictConfig) -> None:
    """The settings of one composed run config that the protocol does not check."""
    if cfg.freeze.bn not in ("eval", "train"):
        raise UserError(f"freeze.bn={cfg.freeze.bn} is unknown; use freeze.bn=eval or freeze.bn=train")
    if cfg.wandb.mode not in ("auto", "online", "offline", "disabled"):
        raise UserError(f"wandb.mode={cfg.wandb.mode} is unknown; use auto, online, offline or disabled")
    _check_train(cfg.train)
    findings_settings(OmegaConf.to_container(cfg.analysis.findings, resolve=True))


def _check_train(train: DictConfig) -> None:
    checks = [
        (train.epochs >= 1, f"train.epochs={train.epochs} must be at least 1"),
        (train.batch_size >= 1, f"train.batch_size={train.batch_size} must be at least 1"),
        (train.lr > 0, f"train.lr={train.lr} must be positive"),
        (0 <= train.momentum < 1, f"train.momentum={train.momentum} must be in [0, 1)"),
        (train.weight_decay >= 0, f"train.weight_decay={train.weight_decay} must be >= 0"),
        (train.schedule in ("step", "cosine", "constant"),
         f"train.schedule={train.schedule} is unknown; use step, cosine or constant"),
        (train.optimizer in ("sgd", "adamw"),
         f"train.optimizer={train.optimizer} is unknown; use sgd or adamw"),
        (0 <= train.warmup_epochs < train.epochs,
         f"train.warmup_epochs={train.warmup_epochs} must be in 0..train.epochs-1"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(f"{message}; fix it on the command line, e.g. train.lr=0.01")
