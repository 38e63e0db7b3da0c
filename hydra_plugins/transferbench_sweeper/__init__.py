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

import json
import logging
import time
from pathlib import Path
from typing import Any, List, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.types import Override

from benchmark.protocol import combination_problem

log = logging.getLogger(__name__)

PLAN_FILE = "sweep_plan.json"


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
        valid = [job for job in jobs if combination_problem(*_job_point(job, self.config)) is None]
        dropped = len(jobs) - len(valid)
        if dropped:
            log.info("dropped %d grid points that are not runs of the protocol", dropped)
        base = [job for job in valid if _job_point(job, self.config)[0] == "base"]
        rest = [job for job in valid if _job_point(job, self.config)[0] != "base"]
        if any(_job_point(job, self.config)[0] == "transfer" for job in rest):
            base = [job + ["warm_sources=true"] for job in base]
        self._write_plan(len(valid))
        waves = [wave for wave in (base, rest) if wave]
        size = max_batch_size or 0
        return [wave[i:i + size] for wave in waves for i in range(0, len(wave), size)] if size > 0 \
            else waves

    def _write_plan(self, total: int) -> None:
        """Record the sweep's size and start for the progress line (and runs already done,
        which a resumed sweep skips, so they do not distort the ETA)."""
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        done = sum(1 for _ in sweep_dir.glob("*/result.json"))
        (sweep_dir / PLAN_FILE).write_text(json.dumps({"total": total, "started": time.time(),
                                                       "done_before": done}))
