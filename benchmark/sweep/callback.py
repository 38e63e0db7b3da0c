"""Hydra callback: progress after every job, the sweep's report (benchmark/sweep/report.py) after
the last."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from benchmark.sweep.progress import progress_line

log = logging.getLogger("benchmark.sweep")


class SweepCallback(Callback):
    def __init__(self, reference: str | None = None, metric: str = "top1",
                 findings: Mapping | None = None) -> None:
        self.reference = reference
        self.metric = metric
        self.findings = OmegaConf.to_container(findings) if isinstance(findings, DictConfig) else findings

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        line = progress_line(Path(config.hydra.sweep.dir))
        if line:
            log.info("sweep: %s", line)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # the analysis (matplotlib, scipy) is imported here, never by the jobs, which also
        # instantiate this callback
        from benchmark.sweep.report import report_sweep

        report_sweep(config, Path(config.hydra.sweep.dir), self.reference, self.metric, self.findings)
