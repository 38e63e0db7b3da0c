"""Schemas of the launchers the project configures (conf/hydra/launcher/*.yaml):
hydra-submitit-launcher's and hydra-joblib-launcher's own (which type every key), with the
project's checks on the counts they set."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf

from benchmark.schema.keys import Check, at_least, optional, store


def _checked(base: type, name: str, *checks: Check) -> Any:
    """Field ``name`` of ``base`` with its default kept and ``checks`` added."""
    default = next(f.default for f in dataclasses.fields(base) if f.name == name)
    return dataclasses.field(default=default, metadata={"checks": checks})


@dataclass
class Local(LocalQueueConf):
    timeout_min: int = _checked(LocalQueueConf, "timeout_min", at_least(1))
    cpus_per_task: Optional[int] = _checked(LocalQueueConf, "cpus_per_task", optional(at_least(1)))
    gpus_per_node: Optional[int] = _checked(LocalQueueConf, "gpus_per_node", optional(at_least(0)))
    mem_gb: Optional[int] = _checked(LocalQueueConf, "mem_gb", optional(at_least(1)))


@dataclass
class Slurm(SlurmQueueConf):
    timeout_min: int = _checked(SlurmQueueConf, "timeout_min", at_least(1))
    cpus_per_task: Optional[int] = _checked(SlurmQueueConf, "cpus_per_task", optional(at_least(1)))
    gpus_per_node: Optional[int] = _checked(SlurmQueueConf, "gpus_per_node", optional(at_least(0)))
    mem_gb: Optional[int] = _checked(SlurmQueueConf, "mem_gb", optional(at_least(1)))
    array_parallelism: int = _checked(SlurmQueueConf, "array_parallelism", at_least(1))
    max_num_timeout: int = _checked(SlurmQueueConf, "max_num_timeout", at_least(0))
    signal_delay_s: int = _checked(SlurmQueueConf, "signal_delay_s", at_least(0))


def _processes() -> Check:
    """joblib's ``n_jobs``: a number of processes, or -k for all cores but k - 1."""
    return Check(lambda v, _: v != 0, "runs no process; use a number of processes, or -1 for one "
                 "per core", 2, 0)


@dataclass
class Parallel(JobLibLauncherConf):
    n_jobs: int = _checked(JobLibLauncherConf, "n_jobs", _processes())


store("launcher", "local", Local)
store("launcher", "parallel", Parallel)
store("launcher", "slurm", Slurm)
