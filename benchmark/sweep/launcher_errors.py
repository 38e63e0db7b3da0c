"""The last line of defence behind the launchers' schemas (benchmark/schema/launcher.py): an
exception that escapes a launcher plugin (a setting no schema checks, e.g. of a launcher in the
user's own config folder, or one the plugin's library refuses) ends the sweep in one ``error:``
line naming the launcher and the setting, not in a traceback. The runs finished before are kept:
nothing is removed, and the same command run again runs only what is missing."""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf

from benchmark.errors import UserError, exit_with

T = TypeVar("T")


def launcher_error(error: Exception, config: DictConfig) -> UserError:
    """One line: the launcher, what its library said, and the settings to check: those the message
    names, else those set on the command line, else where to read them all."""
    choice = config.hydra.runtime.choices.get("hydra/launcher", "?")
    said = " ".join(str(error).split()) or "no message"
    settings = OmegaConf.to_container(config.hydra.launcher, resolve=False)
    named = [f"hydra.launcher.{key}={value}" for key, value in settings.items()
             if key != "_target_" and re.search(rf"\b{re.escape(key)}\b", said)]
    given = [o for o in config.hydra.overrides.hydra if o.startswith("hydra.launcher.")]
    check = ", ".join(named or given) or \
        f"its settings (python -m benchmark hydra/launcher={choice} --cfg hydra -p hydra.launcher)"
    return UserError(f"hydra/launcher={choice} stopped: {said} ({type(error).__name__}); check {check}. "
                     "The runs finished so far are kept: fix the setting and run the same command again "
                     "(it runs only what is missing)")


def guarded(call: Callable[[], T], config: DictConfig) -> T:
    """``call()``; an exception it raises ends the process with :func:`launcher_error`'s line."""
    try:
        return call()
    except Exception as error:  # noqa: BLE001 (whatever the plugin raised: one line, not a traceback)
        exit_with(launcher_error(error, config))
        raise  # not reached: exit_with leaves


class GuardedLauncher:
    """``launcher`` whose exceptions end the sweep in one line (a sweeper launches through it)."""

    def __init__(self, launcher: Launcher, config: DictConfig) -> None:
        self.launcher = launcher
        self.config = config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        return guarded(lambda: self.launcher.launch(job_overrides, initial_job_idx), self.config)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.launcher, name)
