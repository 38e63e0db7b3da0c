"""Hydra sweeper for the Yosinski protocol (registered as ``hydra/sweeper=protocol``).

The grid is the cartesian product of the paper's axes (treatment x n x finetune x
target x seed ...), like Hydra's basic sweeper, with two changes:

* combinations that are not runs of the protocol (``treatment=base n=3``,
  ``treatment=random finetune=true``) are dropped instead of failing;
* base runs form a first wave, launched before every other job, so the base
  networks are trained and cached before the jobs that copy from them start
  (no job waits on a lock while a base network trains elsewhere); when the grid
  has transfer runs, the base jobs also train the other half's base network
  (``warm_sources=true``), the source those runs copy from.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, List, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Override

from benchmark.protocol import combination_problem
from benchmark.sweep.progress import write_plan

log = logging.getLogger(__name__)


def _job_point(job: List[str], defaults: Any) -> tuple[str, int, bool]:
    values = dict(item.split("=", 1) for item in job)
    treatment = values.get("treatment", str(defaults.treatment))
    n = int(values.get("n", defaults.n))
    finetune = str(values.get("finetune", defaults.finetune)).lower() == "true"
    return treatment, n, finetune


class ProtocolSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[dict] = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)

    def split_arguments(self, overrides: List[Override], max_batch_size: Optional[int]
                        ) -> List[List[List[str]]]:
        jobs = BasicSweeper.split_arguments(overrides, None)[0]
        points = [(job, _job_point(job, self.config)) for job in jobs]
        valid = [(job, point) for job, point in points if combination_problem(*point) is None]
        dropped = len(jobs) - len(valid)
        if dropped:
            log.info("dropped %d grid points that are not runs of the protocol", dropped)
        base = [job for job, (treatment, _, _) in valid if treatment == "base"]
        rest = [job for job, (treatment, _, _) in valid if treatment != "base"]
        if any(treatment == "transfer" for _, (treatment, _, _) in valid):
            base = [job + ["warm_sources=true"] for job in base]
        write_plan(Path(self.config.hydra.sweep.dir), len(valid))
        waves = [wave for wave in (base, rest) if wave]
        size = max_batch_size or 0
        return [wave[i:i + size] for wave in waves for i in range(0, len(wave), size)] if size > 0 \
            else waves
