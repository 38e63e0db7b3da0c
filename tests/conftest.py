"""Shared fixtures: composed configs on the smoke preset, an isolated cache, the CLI (in a
subprocess, or in-process through the console script's own entry point)."""
from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import traceback
from functools import cache
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from filelock import FileLock
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from benchmark.config import CONFIG_DIR, compose_config  # noqa: F401 (re-exported for the tests)
from benchmark.config import usable_cores

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``-n auto``: one worker per core), each worker computes with its
    share of the cores, and so do the subprocesses it starts (``python -m benchmark``, joblib's
    workers) through the thread variables they inherit: a worker whose matrix products used
    every core would slow the others down more than it gains."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not os.environ.get("PYTEST_XDIST_WORKER") or workers < 1:
        return
    import torch
    share = max(1, usable_cores(os.cpu_count() or 1) // workers)
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, str(share))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def smoke_config(cache_dir: Path, *overrides: str) -> DictConfig:
    return compose_config("experiment=smoke", f"cache_dir={cache_dir}", *overrides)


@pytest.fixture
def smoke_cfg(tmp_path: Path):
    """Compose the smoke preset with a private base-network cache: for tests that count
    trainings, damage the cache or test caching itself."""
    return lambda *overrides: smoke_config(tmp_path / "cache", *overrides)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One base-network cache for the session: each smoke base network is trained once."""
    return tmp_path_factory.mktemp("shared_cache")


@pytest.fixture
def shared_smoke_cfg(shared_cache: Path):
    """Compose the smoke preset with the session's base-network cache: for tests that only
    use base networks (read-only)."""
    return lambda *overrides: smoke_config(shared_cache, *overrides)


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The directory ``name``, filled by ``build`` once for the whole session: under pytest-xdist
    the first worker to ask builds it (behind a lock in the session's shared temporary root) and
    the others wait for it, where each would otherwise build its own copy of a module fixture
    whose tests the scheduler gave to both. Read-only once built."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        path = tmp_path_factory.mktemp(name)
        build(path)
        return path
    root = tmp_path_factory.getbasetemp().parent
    path, built = root / name, root / f"{name}.built"
    with FileLock(root / f"{name}.lock"):
        if not built.exists():
            shutil.rmtree(path, ignore_errors=True)  # what a worker whose build failed left
            path.mkdir()
            build(path)
            built.touch()
    return path


def _cli_env(cwd: Path, env: dict | None) -> dict[str, str]:
    """W&B kept quiet and local, base networks cached under ``cwd``, then ``env``."""
    return {"WANDB_SILENT": "true", "TRANSFERBENCH_CACHE": str(cwd / "cache"), **(env or {})}


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300
            ) -> subprocess.CompletedProcess:
    """``python -m benchmark ARGS`` in ``cwd``, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "benchmark", *args], cwd=cwd,
                          env={**os.environ, **_cli_env(cwd, env)}, capture_output=True, text=True,
                          timeout=timeout)


def base_trainings(sweep: Path) -> list[str]:
    """``baseA`` / ``baseB`` for every base-network training that the sweep's run logs report."""
    logs = "".join(p.read_text() for p in sweep.glob("*/*.log"))
    return re.findall(r"training (base[AB])", logs)


def sweep_numbers(sweep: Path) -> list[tuple]:
    """The metrics of every run of a finished sweep (its results.csv), sorted."""
    with open(sweep / "results.csv") as f:
        return sorted((r["label"], r["seed"], r["top1"], r["top5"], r["loss"], r["top1_best"])
                      for r in csv.DictReader(f))


@dataclass
class Result:
    """What a ``run_main`` call left: the fields of a finished subprocess the tests read."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` set for the call; the whole environment restored after (the run may set more)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _fresh_hydra() -> Iterator[None]:
    """Hydra as a new process finds it, and left so for the next call: ``@hydra.main``
    leaves its global state (config loader, the job's HydraConfig) initialised, and
    ``compose_config`` refuses to start while it is."""
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None
    try:
        yield
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """Hydra reconfigures the root logger for the job (a console handler bound to the
    captured stdout, a file handler in the run directory): close those and put the
    test process's handlers back."""
    root = logging.getLogger()
    handlers, level, raise_exceptions = root.handlers[:], root.level, logging.raiseExceptions
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.raiseExceptions = raise_exceptions


def _exit_status(code: object) -> int:
    """The status of a process that called ``sys.exit(code)`` (a message: printed, status 1)."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def _console_script():
    """The function the ``transferbench`` console script calls (pyproject.toml, [project.scripts])."""
    (script,) = entry_points(group="console_scripts", name="transferbench")
    return script.load()


def _call_main() -> int:
    """The console script's exit status; an uncaught exception prints its traceback, as a
    process would."""
    try:
        _console_script()()
    except SystemExit as leaving:
        return _exit_status(leaving.code)
    except Exception:  # noqa: BLE001 (the test sees it in stderr, as in a subprocess)
        traceback.print_exc()
        return 1
    return 0


def run_main(*args: str, cwd: Path, env: dict | None = None) -> Result:
    """``transferbench ARGS`` in ``cwd`` without a new interpreter: the console script's
    ``benchmark.__main__.main`` with ``sys.argv`` set, the environment of ``run_cli``, and
    stdout (log lines included) and stderr captured. Saves the few seconds a process takes
    to import torch and Hydra; the working directory, environment, ``sys.argv``, logging
    and Hydra's global state are restored afterwards."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(_environment(_cli_env(cwd, env)))
        stack.enter_context(_fresh_hydra())
        stack.enter_context(_logging_restored())
        stack.enter_context(pytest.MonkeyPatch.context()).setattr(sys, "argv", ["transferbench", *args])
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        code = _call_main()
    return Result(code, out.getvalue(), err.getvalue())


def _memory_dir(tmp_path_factory, name: str) -> Path:
    """A fresh directory in memory where the machine has ``/dev/shm`` (else under pytest's
    temporary directory): tens of thousands of small image files unpack there in seconds, not
    the minute they can take on a busy disk, and a file fsynced there is not waited for."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix=f"transferbench-{name}-", dir=shm))
    return tmp_path_factory.mktemp(name)


@pytest.fixture
def memory_tmp_path(tmp_path_factory) -> Iterator[Path]:
    """``tmp_path`` in memory (``_memory_dir``), removed after the test: for runs of networks of
    hundreds of megabytes (CaffeNet's checkpoints and cached bases, each written with an fsync),
    which would otherwise spend longer waiting for the disk than training."""
    path = _memory_dir(tmp_path_factory, "run")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _extract(tarball: Path, into: Path) -> None:
    """The ``tar`` program where there is one: it unpacks CIFAR-10's 60,000 files in about
    2 s of CPU where ``tarfile`` takes about 16 s. GNU and BSD tar strip a leading ``/`` and
    refuse ``..`` in member names, as ``tarfile``'s ``data`` filter does."""
    into.mkdir(parents=True)
    if shutil.which("tar"):
        subprocess.run(["tar", "-xzf", str(tarball), "-C", str(into)], check=True, timeout=300)
        return
    with tarfile.open(tarball) as archive:
        archive.extractall(into, filter="data")


def _unpack_shared(tmp_path_factory, tarball_name: str) -> Iterator[Path]:
    """A ``../shared/data`` tarball unpacked once per session into ``ROOT/data``, removed after
    (not left to pytest's tmp retention); skips the test where the real data is absent."""
    tarball = SHARED_DATA / tarball_name
    if not tarball.is_file():
        pytest.skip(f"{tarball} is absent (real data for this test lives in ../shared/data)")
    root = _memory_dir(tmp_path_factory, "shared")
    _extract(tarball, root / "data")
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="session")
def cifar10_jpg_root(tmp_path_factory) -> Iterator[Path]:
    yield from _unpack_shared(tmp_path_factory, "cifar10-jpg.tar.gz")


@pytest.fixture(scope="session")
def tiny_imagenet_20(tmp_path_factory) -> Iterator[Path]:
    yield from _unpack_shared(tmp_path_factory, "tiny-imagenet-20.tar.gz")


# a sweep's aggregation without its figures, for the tests that read its numbers only: matplotlib
# takes most of an aggregation's seconds (the figures' own tests draw them)
NO_FIGURES = "analysis.figures=false"


@cache
def numbers_only() -> DictConfig:
    """``analysis`` as conf/config.yaml sets it, but for ``analysis.figures: false``."""
    from benchmark.analysis import default_analysis

    return default_analysis([NO_FIGURES])
