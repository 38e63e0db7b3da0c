"""Shared fixtures: composed configs on the smoke preset, an isolated cache, the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from benchmark.__main__ import CONFIG_DIR, CONFIG_NAME

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def compose_config(*overrides: str) -> DictConfig:
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        return compose(CONFIG_NAME, overrides=list(overrides))


@pytest.fixture
def smoke_cfg(tmp_path: Path):
    """Compose the smoke preset with a private base-network cache."""
    def make(*overrides: str) -> DictConfig:
        return compose_config("experiment=smoke", f"cache_dir={tmp_path / 'cache'}", *overrides)
    return make


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300
            ) -> subprocess.CompletedProcess:
    """``python -m benchmark ARGS`` in ``cwd``, with W&B kept offline and local."""
    full_env = {**os.environ, "WANDB_SILENT": "true", "TRANSFERBENCH_CACHE": str(cwd / "cache"),
                **(env or {})}
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
