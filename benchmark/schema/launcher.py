"""Schemas of every launcher ``hydra/launcher=...`` offers: the options Hydra's plugins store themselves
(basic, joblib, submitit_local, submitit_slurm: their keys are checked with these schemas) and the
project's (conf/hydra/launcher/: parallel, local, slurm). Each extends the plugin's own config class,
which types every key, with a check on each key whose value can be out of range; the keys without
one are true/false switches, lists of shell lines and free-form sbatch options."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from hydra._internal.core_plugins.basic_launcher import BasicLauncherConf
from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, LocalQueueConf, SlurmQueueConf
from omegaconf import OmegaConf

from benchmark.schema.keys import (Check, at_least, check_plugin, matches, one_of, optional,
                                   plugin_key, positive, schema_of, store)

SLURM_MEMORY = r"\d+[KMGT]?"  # sbatch's --mem-per-cpu / --mem-per-gpu: a size, megabytes without a unit


def _named(example: str) -> Check:
    """A Slurm or folder name: where set, not empty."""
    return Check(lambda v, _: bool(v.strip()), "is empty; give a name or leave it unset (null)", example, "")


@dataclass
class Basic(BasicLauncherConf):
    """Hydra's: the jobs one after another in this process (the default)."""


def _processes() -> Check:
    """joblib's ``n_jobs``: a number of processes, or -k for all cores but k - 1."""
    return Check(lambda v, _: v != 0, "runs no process; use a number of processes, or -1 for one "
                 "per core", 2, 0)


@dataclass
class Joblib(JobLibLauncherConf):
    """hydra-joblib-launcher as Hydra ships it: hydra.launcher.n_jobs local processes.

    Its settings go to ``joblib.Parallel`` (numbers written as text become numbers; the backend is
    always loky)."""

    n_jobs: int = plugin_key(JobLibLauncherConf, "n_jobs", _processes())
    backend: Optional[str] = plugin_key(JobLibLauncherConf, "backend", optional(one_of(
        ("loky",), rule="is not used: Hydra's joblib launcher always runs loky")))
    prefer: str = plugin_key(JobLibLauncherConf, "prefer", one_of(("processes", "threads")))
    require: Optional[str] = plugin_key(JobLibLauncherConf, "require", optional(one_of(("sharedmem",))))
    verbose: int = plugin_key(JobLibLauncherConf, "verbose", at_least(0))
    timeout: Optional[float] = plugin_key(JobLibLauncherConf, "timeout", optional(positive(3600)))
    pre_dispatch: str = plugin_key(JobLibLauncherConf, "pre_dispatch", matches(
        r"all|\d+|(\d+\s*\*\s*)?n_jobs", "is not a number of tasks; use all, a number or K*n_jobs",
        "2*n_jobs", "often"))
    batch_size: str = plugin_key(JobLibLauncherConf, "batch_size", matches(
        r"auto|[1-9]\d*", "is not a batch size; use auto or a positive number", "auto", "0"))
    temp_folder: Optional[str] = plugin_key(JobLibLauncherConf, "temp_folder", optional(_named("/tmp")))
    max_nbytes: Optional[str] = plugin_key(JobLibLauncherConf, "max_nbytes", optional(matches(
        r"\d+[KMG]?", "is not a size; use e.g. 1M (K, M, G) or a number of bytes", "1M", "lots")))
    mmap_mode: str = plugin_key(JobLibLauncherConf, "mmap_mode", one_of(("r", "r+", "w+", "c")))


@dataclass
class Queue(BaseQueueConf):
    """The keys hydra-submitit-launcher's local and Slurm launchers share."""

    submitit_folder: str = plugin_key(BaseQueueConf, "submitit_folder", _named(".submitit/%j"))
    timeout_min: int = plugin_key(BaseQueueConf, "timeout_min", at_least(1))
    cpus_per_task: Optional[int] = plugin_key(BaseQueueConf, "cpus_per_task", optional(at_least(1)))
    gpus_per_node: Optional[int] = plugin_key(BaseQueueConf, "gpus_per_node", optional(at_least(0)))
    tasks_per_node: int = plugin_key(BaseQueueConf, "tasks_per_node", at_least(1))
    mem_gb: Optional[int] = plugin_key(BaseQueueConf, "mem_gb", optional(at_least(1)))
    nodes: int = plugin_key(BaseQueueConf, "nodes", at_least(1))
    name: str = plugin_key(BaseQueueConf, "name", _named("transferbench"))


@dataclass
class Local(Queue, LocalQueueConf):
    """hydra-submitit-launcher's local processes as Hydra ships them (local: ours)."""


def _slurm_memory() -> Check:
    return optional(matches(SLURM_MEMORY, "is not a Slurm memory size; use e.g. 8G (K, M, G, T)", "8G", "8 GB"))


@dataclass
class Slurm(Queue, SlurmQueueConf):
    """hydra-submitit-launcher's Slurm launcher as Hydra ships it (slurm: ours).

    Its keys are sbatch's options of the same names."""

    partition: Optional[str] = plugin_key(SlurmQueueConf, "partition", optional(_named("gpu")))
    qos: Optional[str] = plugin_key(SlurmQueueConf, "qos", optional(_named("normal")))
    comment: Optional[str] = plugin_key(SlurmQueueConf, "comment", optional(_named("transferbench")))
    constraint: Optional[str] = plugin_key(SlurmQueueConf, "constraint", optional(_named("a100")))
    exclude: Optional[str] = plugin_key(SlurmQueueConf, "exclude", optional(_named("node1")))
    gres: Optional[str] = plugin_key(SlurmQueueConf, "gres", optional(_named("gpu:1")))
    cpus_per_gpu: Optional[int] = plugin_key(SlurmQueueConf, "cpus_per_gpu", optional(at_least(1)))
    gpus_per_task: Optional[int] = plugin_key(SlurmQueueConf, "gpus_per_task", optional(at_least(1)))
    mem_per_gpu: Optional[str] = plugin_key(SlurmQueueConf, "mem_per_gpu", _slurm_memory())
    mem_per_cpu: Optional[str] = plugin_key(SlurmQueueConf, "mem_per_cpu", _slurm_memory())
    account: Optional[str] = plugin_key(SlurmQueueConf, "account", optional(_named("myproject")))
    signal_delay_s: int = plugin_key(SlurmQueueConf, "signal_delay_s", at_least(0))
    max_num_timeout: int = plugin_key(SlurmQueueConf, "max_num_timeout", at_least(0))
    array_parallelism: int = plugin_key(SlurmQueueConf, "array_parallelism", at_least(1))


# the schemas conf/hydra/launcher/*.yaml name
store("launcher", "joblib", Joblib)
store("launcher", "local", Local)
store("launcher", "slurm", Slurm)
# the options Hydra's plugins store
for _plugin_conf, _schema in ((BasicLauncherConf, Basic), (JobLibLauncherConf, Joblib),
                              (LocalQueueConf, Local), (SlurmQueueConf, Slurm)):
    check_plugin(_plugin_conf, _schema)


def stored_options(group: str) -> dict[str, str]:
    """The options Hydra's plugins store for ``group`` (``hydra/launcher``), each with the first line
    of the docstring of the schema that checks it."""
    store_ = ConfigStore.instance()
    options = [name.removesuffix(".yaml") for name in store_.list(group)] if group.startswith("hydra/") \
        else []
    return {name: (schema_of(OmegaConf.get_type(store_.load(f"{group}/{name}.yaml").node)).__doc__ or "")
            .strip().splitlines()[0] for name in options}
