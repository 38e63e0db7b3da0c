"""Provenance of a result: the package versions and the git commit of the code that made it."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch


def provenance() -> dict:
    """Package versions and the git commit of the code that made a result."""
    import hydra
    import torchvision

    import benchmark

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "torchvision": torchvision.__version__, "hydra": hydra.__version__,
                "transferbench": benchmark.__version__}
    return {"versions": versions, "git_commit": _git_commit()}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except Exception:
        return None
