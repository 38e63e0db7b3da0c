"""The end of a sweep: aggregate its runs, print the findings, log the W&B summary run."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmark.analysis import (AnalysisError, Report, aggregate, curve_rows, findings_text,
                                pooled_settings, verdict_label)
from benchmark.analysis.measure_reports import report_of
from benchmark.measures import MEASURES
from benchmark.protocol import BASE
from benchmark.sweep.later import complete
from benchmark.tracking import Tracker, run_id

log = logging.getLogger("benchmark.sweep")


def report_sweep(config: DictConfig, sweep_dir: Path, reference: str | None, metric: str,
                 findings: Mapping | None) -> None:
    """Aggregate ``sweep_dir`` (taking the sweep's measures where runs lack them) and log what it
    shows; a sweep with nothing to aggregate is reported in one line."""
    try:
        report = aggregate(sweep_dir, reference=reference, metric=metric, findings=findings,
                           analysis=config.analysis, complete=complete)
    except AnalysisError as error:
        log.error("aggregation of %s skipped: %s", sweep_dir, error)
        return
    pooled = pooled_settings(report.summary)
    if pooled:
        log.warning("the curve pools several settings %s; sweep them in separate sweep dirs "
                    "(hydra.sweep.dir=...) for one curve each", pooled)
    for failure in report.summary["failed"]:
        log.warning("failed run %s seed %s: %s", failure["label"], failure["seed"], failure["reason"])
    log.info("findings of Yosinski et al. 2014 on this sweep (details: %s):\n%s",
             report.paths["findings"], findings_text(report.summary))
    if "measures" in report.paths:
        log.info("%s", report.paths["measures"].read_text())
    sync_dir = log_summary_run(config, sweep_dir, report)
    log.info("sweep results in %s: %s", sweep_dir.absolute(),
             ", ".join(p.name for p in report.paths.values()))
    if sync_dir is not None:
        log.info("W&B runs are offline; upload them with: wandb sync %s",
                 sweep_dir.absolute() / "*" / "wandb" / "offline-run-*")


def log_summary_run(config: DictConfig, sweep_dir: Path, report: Report) -> Path | None:
    """One W&B run for the whole sweep: the curve as a line chart and a table, the figure.

    Returns the run's local directory when W&B ran offline (to print ``wandb sync``).
    """
    tracker = Tracker(config.wandb.mode, config.wandb.project, config.wandb.entity,
                      sweep_dir / "summary", f"summary/{config.sweep_name}", config.sweep_name,
                      "summary", OmegaConf.to_container(config, resolve=False),
                      config.wandb.init_timeout, run_id(str(sweep_dir.absolute()), "summary"),
                      packages=True)
    if not tracker.active:
        return None
    rows = curve_rows(report.summary)
    tracker.log(_wandb_objects(rows, report))
    tracker.summary({"runs_ok": report.summary["runs"]["ok"],
                     "runs_failed": report.summary["runs"]["failed"],
                     **{f"finding{f['id']}": verdict_label(f) for f in report.summary["findings"]["findings"]},
                     **{f"finding{f['id']}_seeds_to_decide": f["decision"]["seeds"]
                        for f in report.summary["findings"]["findings"] if f.get("decision")},
                     "findings_regime": report.summary["sanity"]["regime"]})
    mode = tracker.mode
    run_dir = tracker.finish()
    return run_dir if mode == "offline" else None


def _wandb_objects(rows: list[dict], report: Report) -> dict[str, Any]:
    import wandb

    table = wandb.Table(columns=list(rows[0]), data=[list(r.values()) for r in rows])
    series = sorted({r["series"] for r in rows if r["series"] != BASE})
    ns = sorted({r["n"] for r in rows if r["series"] != BASE})
    by_key = {(r["series"], r["n"]): r["mean"] for r in rows}
    ys = [[by_key.get((s, n)) for n in ns] for s in series]
    chart = wandb.plot.line_series(xs=ns, ys=ys, keys=series, title="Generality curve",
                                   xname="layer n")
    findings = report.summary["findings"]["findings"]
    columns = ["id", "statement", "layers", "test", "row", "estimate", "ci95", "p", "p_test", "verdict",
               "provisional", "decision", "detail"]
    listed = ("layers", "ci95", "decision", "provisional")
    findings_table = wandb.Table(columns=columns, data=[[str(f.get(c)) if c in listed else f[c] for c in columns]
                                                        for f in findings])
    objects = {"generality_table": table, "generality_curve": chart, "findings_table": findings_table}
    if "png" in report.paths:  # analysis.figures
        objects["generality_figure"] = wandb.Image(str(report.paths["png"]))
    for measure in MEASURES.values():
        if report.summary[measure.record_key]:
            objects.update(report_of(measure).wandb_objects(report.summary, report.paths))
    return objects
