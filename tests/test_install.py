"""Installed like any Python tool: a wheel that works outside the repository, result files
readable under the user's umask, the package list complete."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from benchmark.store.atomic import atomic_write_bytes, write_verified

REPO = Path(__file__).resolve().parent.parent
NOT_SOURCES = shutil.ignore_patterns(".venv", ".git", "multirun", "outputs", ".cache", "build", "dist",
                                     "*.egg-info", "__pycache__", ".pytest_cache", "wandb")


def test_pyproject_lists_every_package():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for top in ("benchmark", "hydra_plugins")
             for p in (REPO / top).rglob("__init__.py")}
    assert listed == found | {"benchmark.conf", "hydra_plugins"}  # hydra_plugins: a namespace


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_get_the_permissions_of_a_plain_open(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        written = [atomic_write_bytes(tmp_path / "summary.json", b"{}")]
        write_verified(tmp_path / "model.pt", b"weights")
        written.append(tmp_path / "model.pt")
        with open(tmp_path / "plain.txt", "w"):
            pass
    finally:
        os.umask(previous)
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == mode
    assert [p.stat().st_mode & 0o777 for p in written] == [mode, mode]


def _run(*command: str | Path, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)
    assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel built from this checkout installed
    (``--no-deps``: torch, Hydra ... come from the test environment's packages)."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", root / "dist", source, cwd=root)
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=root)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "test_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next((root / "dist").glob("transferbench-*.whl"))
    _run(venv / "bin" / "pip", "install", "-q", "--no-deps", "--ignore-installed", wheel, cwd=root)
    return venv


@pytest.mark.slow  # builds a wheel and a virtual environment: .ci/run runs it
def test_the_wheel_runs_from_any_directory(installed, tmp_path):
    env = {"TRANSFERBENCH_CACHE": str(tmp_path / "cache"), "WANDB_MODE": "disabled"}
    where = _run(installed / "bin" / "python", "-c", "import benchmark; print(benchmark.__file__)",
                 cwd=tmp_path).stdout
    assert str(installed) in where, where  # the installed package, not this checkout
    _run(installed / "bin" / "transferbench", "experiment=smoke", "treatment=transfer", "n=2",
         "hydra.run.dir=run", cwd=tmp_path, env=env)
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "ok"
    page = _run(installed / "bin" / "transferbench", "--help", cwd=tmp_path).stdout
    assert "AnB3 / AnB+3" in page and "yosinski2014" in page and "--multirun" in page


@pytest.mark.slow
def test_the_wheel_sweeps_with_the_users_own_config_dir(installed, tmp_path):
    mine = tmp_path / "myconf"
    (mine / "experiment").mkdir(parents=True)
    (mine / "experiment" / "mine.yaml").write_text(
        "# @package _global_\n# my grid on the smallest data\n"
        "defaults:\n  - smoke\nhydra:\n  sweeper:\n    params:\n      treatment: base,selffer\n      n: 0,1\n")
    env = {"TRANSFERBENCH_CACHE": str(tmp_path / "cache")}
    _run(installed / "bin" / "transferbench", "-m", "--config-dir", mine, "experiment=mine",
         "hydra.sweep.dir=sweep", cwd=tmp_path, env=env)
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert summary["runs"]["ok"] == 2
    page = _run(installed / "bin" / "transferbench", "--config-dir", mine, "--help", cwd=tmp_path).stdout
    assert "my grid on the smallest data" in page
