"""``python -m benchmark`` (or ``transferbench``): one run, or a sweep with ``-m``.

    python -m benchmark treatment=transfer n=3 finetune=true target=B seed=0   # AnB+3
    python -m benchmark -m experiment=demo                                     # the grid, 3 seeds
    python -m benchmark --version                                              # transferbench 0.1.0
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from benchmark import __version__
from benchmark.config import CONFIG_DIR, CONFIG_NAME
from benchmark.errors import UserError, exit_with
from benchmark.preflight import check_overrides
from benchmark.run import execute


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=CONFIG_NAME)
def app(cfg: DictConfig) -> dict | None:
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        return execute(cfg, out_dir, group=cfg.sweep_name if multirun else None)
    except UserError as error:
        exit_with(error)
    except OSError as error:  # full disk, vanished directory ...: earlier files are intact
        exit_with(UserError(f"cannot write {error.filename or out_dir} ({error.strerror}); free "
                            "space or write elsewhere (hydra.run.dir=... / hydra.sweep.dir=...)"))
    return None


def _command_line_overrides(argv: list[str]) -> list[str]:
    values = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a in CONFIG_DIR_FLAGS}
    return [a for a in argv if "=" in a and not a.startswith("-") and a not in values]


CONFIG_DIR_FLAGS = ("--config-dir", "-cd")


def _config_dirs(argv: list[str]) -> list[str]:
    """The folders given with ``--config-dir DIR`` (``-cd DIR``, ``--config-dir=DIR``)."""
    given = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in CONFIG_DIR_FLAGS]
    return given + [a.split("=", 1)[1] for a in argv if a.startswith("--config-dir=")]


def main() -> None:
    logging.raiseExceptions = False  # a full disk must not make every log line print a traceback
    argv = sys.argv[1:]
    if "--version" in argv:  # before Hydra, which has no such flag
        print(f"transferbench {__version__}")
        return
    try:
        multirun = bool({"-m", "--multirun"} & set(argv))
        check_overrides(_command_line_overrides(argv), multirun, _config_dirs(argv))
    except UserError as error:
        exit_with(error)
    app()


if __name__ == "__main__":
    main()
