"""The result store: what a run writes, how it is named, found, read and checked.

One ``result.json`` per run directory, written atomically; a config fingerprint in it
guards against overwriting a finished result of another configuration. The run, the
sweep's progress and the aggregation all name and read results through this module.
"""
from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
from collections.abc import Iterator
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from benchmark.errors import UserError
from benchmark.protocol import TREATMENTS
from benchmark.storage import atomic_write_json

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
CHECKPOINT_FILE = "checkpoint.pt"  # a run's per-epoch checkpoint, removed once its result is written
METRICS = ("top1", "top5", "loss", "top1_best")  # what a finished run's result.json reports
REQUIRED = ("label", "treatment", "n", "target", "seed", "status")
# a base run of a sweep's first wave lists here the source bases it trained (baseA for AnB)
SOURCE_BASES = "source_bases"
SOURCE_FOR = "source_for"  # in a source base's own result: the target half it is the source for

# keys that change where or how a run executes, never its numbers
NOT_DETERMINING_RESULT = ("wandb", "cache_dir", "device", "threads", "analysis", "sweep_name",
                          "warm_sources")
NOT_DETERMINING_DATA = ("root", "num_workers")
# dataset options that change where or how fast data is read, never what a network learns
NOT_DETERMINING_DATASET = ("cache_dir", "download", "num_workers")
# keys added after results were first written, with the value that does what runs did before
# them: at that value they stay out of fingerprints and cache keys, so finished work keeps its own
LATER_KEYS = {"dataset": {"train_per_class": None}, "model": {"init": "default"},
              "train": {"eval_every": 1}}
# config groups whose options pass through determining() into fingerprints and cache keys
DETERMINING_GROUPS = ("dataset", "model", "train")


def config_fingerprint(cfg: DictConfig) -> str:
    """Hash of the resolved config that determines a run's result."""
    config = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_DETERMINING_RESULT:
        config.pop(key, None)
    config["data"] = {k: v for k, v in config["data"].items() if k not in NOT_DETERMINING_DATA}
    for group in DETERMINING_GROUPS:
        config[group] = determining(group, config[group])
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def determining(group: str, options: dict) -> dict:
    """The options of config group ``group`` (dataset, model, train) that decide what a run
    reports."""
    skip = NOT_DETERMINING_DATASET if group == "dataset" else ()
    later = LATER_KEYS.get(group, {})
    return {k: v for k, v in options.items() if k not in skip and not (k in later and later[k] == v)}


def finished_result(out_dir: Path, fingerprint: str) -> dict | None:
    """The result already written in ``out_dir`` if that run finished ``ok``, else None.

    An unreadable or failed result is reported and the run is done again; a finished
    result of a *different* configuration is never overwritten.
    """
    path = out_dir / RESULT_FILE
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        log.warning("%s is corrupt (%s); running this configuration again", path, error)
        return None
    if result.get("status") != "ok":
        return None
    if result.get("fingerprint") != fingerprint:
        raise UserError(f"{path} holds a finished result of a different configuration; keep it and "
                        "write this one elsewhere: set hydra.sweep.dir=... (or hydra.run.dir=...) "
                        "or sweep_name=...")
    return result


def write_result(out_dir: Path, result: dict) -> Path:
    path = out_dir / RESULT_FILE
    atomic_write_json(path, result)
    return path


def result_files(sweep_dir: Path) -> Iterator[Path]:
    """Every result.json below ``sweep_dir``, in a stable order."""
    return iter(sorted(sweep_dir.rglob(RESULT_FILE)))


def count_results(sweep_dir: Path) -> int:
    """Runs of a sweep that have written their result (one level below the sweep dir)."""
    return sum(1 for _ in sweep_dir.glob(f"*/{RESULT_FILE}"))


def read_result(path: Path) -> dict:
    """Parse and check one result.json; raise ValueError saying what is wrong (an unknown
    treatment is such a problem: it is reported, never pooled into another series)."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable JSON ({exc})") from exc
    if not isinstance(result, dict):
        raise ValueError("not a JSON object")
    missing = [key for key in REQUIRED if key not in result]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    if result["treatment"] not in TREATMENTS:
        raise ValueError(f"unknown treatment {result['treatment']!r}, expected one of "
                         f"{', '.join(TREATMENTS)} (written by another version of transferbench?)")
    for key in ("n", "seed"):
        if not isinstance(result[key], int) or isinstance(result[key], bool):
            raise ValueError(f"{key} must be an integer, got {result[key]!r}")
    return result


def source_base_results(result: dict) -> list[dict]:
    """The source base networks a base run trained (``result[SOURCE_BASES]``) as results of
    their own: same experiment, seed and provenance, their own label, half and metrics, no
    training cost of their own (the base run paid it), ``source_for`` naming the target half."""
    shared = {k: v for k, v in result.items()
              if k not in (SOURCE_BASES, "cost", "wall_s", "metrics", "history", "network_file")}
    return [{**shared, **report, SOURCE_FOR: result["target"], "wall_s": 0.0,
             "cost": {"bases": [], "feature_cache": False}}
            for report in result.get(SOURCE_BASES) or []]


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
