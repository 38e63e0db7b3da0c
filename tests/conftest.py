"""Shared fixtures: composed configs on the smoke preset, an isolated cache, the CLI."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
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


def _unpack_shared(tmp_path_factory, tarball_name: str) -> Iterator[Path]:
    """A ``../shared/data`` tarball unpacked once per session into ``ROOT/data``, removed after
    (not left to pytest's tmp retention); skips the test where the real data is absent."""
    tarball = SHARED_DATA / tarball_name
    if not tarball.is_file():
        pytest.skip(f"{tarball} is absent (real data for this test lives in ../shared/data)")
    root = tmp_path_factory.mktemp("shared")
    with tarfile.open(tarball) as archive:
        archive.extractall(root / "data", filter="data")
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="session")
def cifar10_jpg_root(tmp_path_factory) -> Iterator[Path]:
    yield from _unpack_shared(tmp_path_factory, "cifar10-jpg.tar.gz")


@pytest.fixture(scope="session")
def tiny_imagenet_20(tmp_path_factory) -> Iterator[Path]:
    yield from _unpack_shared(tmp_path_factory, "tiny-imagenet-20.tar.gz")
