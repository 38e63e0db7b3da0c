"""W&B logging that never fails a run.

``wandb.mode=auto`` is online when the user is logged in, offline otherwise
(sync later with ``wandb sync``); ``disabled`` turns it off. Every call into
wandb is guarded: a W&B error is logged as a warning and tracking stops.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Set when W&B failed once in this process: the next runs of a sweep skip it instead of
# each waiting out the same failure (an unreachable server costs init_timeout per run).
_unavailable: str | None = None


def resolve_mode(mode: str) -> str:
    if mode != "auto":
        return mode
    try:
        import wandb

        logged_in = bool(os.environ.get("WANDB_API_KEY") or wandb.api.api_key)
    except Exception:
        logged_in = False
    return "online" if logged_in else "offline"


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def run_id(*identity: str) -> str:
    """A W&B run id that is the same every time the same run starts: a run killed or
    preempted and started again continues its own W&B run, a finished one is not duplicated."""
    return hashlib.sha256("\0".join(identity).encode()).hexdigest()[:32]


class Tracker:
    """One W&B run (``run_id``: resumed when it exists). All methods are no-ops once W&B is
    disabled or has failed. ``packages``: W&B saves the list of installed Python packages with
    the run; listing them takes longer than a small network's run takes to measure, so a sweep
    saves it once, with its summary run (each run's result.json records its package versions)."""

    def __init__(self, mode: str, project: str, entity: str | None, directory: Path, name: str,
                 group: str | None, job_type: str, config: Mapping[str, Any],
                 init_timeout: float = 30, run_id: str | None = None, packages: bool = False) -> None:
        self.mode = resolve_mode(mode)
        self.run = None
        if self.mode == "disabled" or _unavailable:
            return
        self._guard("start", lambda: self._start(project, entity, directory, name, group,
                                                  job_type, config, init_timeout, run_id, packages))

    def _start(self, project, entity, directory, name, group, job_type, config, init_timeout,
               run_id, packages) -> None:
        import wandb

        directory.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, entity=entity, dir=str(directory), name=name,
                              group=group, job_type=job_type, config=flatten(config),
                              id=run_id, resume="allow" if run_id else None,
                              mode=self.mode, reinit="finish_previous",
                              settings=wandb.Settings(silent=True, console="off",
                                                      init_timeout=init_timeout,
                                                      x_save_requirements=packages))

    def _guard(self, what: str, action) -> None:
        global _unavailable
        try:
            action()
        except Exception as error:
            _unavailable = " ".join(str(error).split())[:300]
            log.warning("W&B %s failed (%s); continuing without W&B for the rest of this process",
                        what, _unavailable)
            self.run = None

    @property
    def active(self) -> bool:
        return self.run is not None

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self.active:
            self._guard("log", lambda: self.run.log(dict(metrics), step=step))

    def summary(self, values: Mapping[str, Any]) -> None:
        if self.active:
            self._guard("summary", lambda: self.run.summary.update(dict(values)))

    def finish(self, failed: bool = False) -> Path | None:
        """Close the run; returns its local directory (for ``wandb sync``)."""
        if not self.active:
            return None
        run_dir = Path(self.run.dir).parent
        self._guard("finish", lambda: self.run.finish(exit_code=1 if failed else 0))
        self.run = None
        return run_dir
