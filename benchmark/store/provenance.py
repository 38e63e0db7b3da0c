"""Provenance of a result: the package versions, the git commit of the code that made it (and
whether the checkout had uncommitted changes), and the machine it ran on."""
from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import torch

HERE = Path(__file__).parent


def provenance() -> dict:
    """Package versions, git commit and dirty flag, and the machine that made a result (read once
    per process: a sweep's worker runs many jobs of the same code on the same machine)."""
    return dict(_provenance())


@lru_cache(maxsize=1)
def _provenance() -> dict:
    import hydra
    import timm
    import torchvision

    import benchmark

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "torchvision": torchvision.__version__, "timm": timm.__version__,
                "hydra": hydra.__version__, "transferbench": benchmark.__version__}
    return {"versions": versions, "git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": _git_dirty(), "machine": machine()}


def machine() -> dict:
    """The processor, the cores this process may use, and the GPUs torch sees (names)."""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    return {"cpu": _cpu_name(), "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "gpus": gpus, "system": f"{platform.system()} {platform.machine()}"}


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _git_dirty() -> bool | None:
    """Whether tracked files differ from the commit (None: not a git checkout)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None and _git("rev-parse", "HEAD") is None else bool(status)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, cwd=HERE)
    except Exception:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
