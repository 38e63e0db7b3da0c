"""The Slurm launcher of ``hydra/launcher=slurm``: hydra-submitit-launcher's, ending a wave
with a job that did not finish in one line instead of a traceback.

hydra-submitit-launcher collects a wave's results job by job and raises on the first job
that left no result (lost with its node and not requeued, cancelled, killed for memory or
time): a traceback ends the sweep while the wave's other jobs still run on the cluster,
and a re-run started then would run them a second time, side by side. This launcher
waits until none of the sweep's jobs is left in the queue (they carry the sweep's name,
``hydra.launcher.name``), then stops with one ``error:`` line naming the job, its Slurm
state and its log. Every finished run has written its result by then, so running the
same command again runs only what is missing (and resumes from checkpoints).
"""
from __future__ import annotations

import getpass
import logging
import subprocess
import time
from typing import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

from benchmark.errors import UserError, exit_with

log = logging.getLogger(__name__)

POLL_S = 5.0  # how often the queue is read while the rest of a failed wave finishes


def queued_jobs(name: str) -> list[str]:
    """Ids of this user's jobs named ``name`` still pending or running (squeue; none when
    squeue does not answer: the error line is then given without waiting)."""
    try:
        out = subprocess.run(["squeue", "--noheader", "--user", getpass.getuser(), "--name", name,
                              "--format", "%i"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("cannot read the queue (%s); not waiting for the sweep's other jobs", error)
        return []
    return out.stdout.split()


def wait_for_queue(name: str) -> None:
    """Return once no job named ``name`` is pending or running."""
    jobs = queued_jobs(name)
    while jobs:
        log.info("a job of the sweep did not finish; waiting for its other %d jobs (%s) to end "
                 "before stopping", len(jobs), " ".join(jobs))
        time.sleep(POLL_S)
        jobs = queued_jobs(name)


def unfinished_job(error: Exception, name: str) -> UserError:
    """One line from submitit's message (job id, path of its result, Slurm state)."""
    first = " ".join(str(error).splitlines()[:2])
    return UserError(f"a Slurm job of the sweep ended without a result: {first}. The finished runs "
                     f"are kept: run the same command again to run only what is missing (jobs "
                     f"named {name}; their logs are in the sweep's .submitit/ folder)")


class TransferbenchSlurmLauncher(SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        from submitit.core.utils import UncompletedJobError

        try:
            return super().launch(job_overrides, initial_job_idx)
        except UncompletedJobError as error:
            name = str(self.params["name"])
            wait_for_queue(name)
            exit_with(unfinished_job(error, name))
        return []  # not reached: exit_with leaves
