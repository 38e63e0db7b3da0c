"""Aggregate a sweep's result.json files into the generality curve and its reports.

``aggregate(sweep_dir)`` writes, into ``sweep_dir``: results.csv (one row per
run), summary.json (curve, derived quantities, the paper's findings tested, sanity
checks, failed runs, unreadable files), generality.png / .pdf (paper Figure 2 style),
table.tex (booktabs), findings.md, methods.md (the methods written out, benchmark/analysis/methods.py) and, for each per-block measure the runs took, its entry in
summary.json and its figures (CKA: similarity.png / .pdf); the figures only where
``analysis.figures`` is true.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from benchmark.analysis.cheap_answer import cheap_answer
from benchmark.analysis.collect import Collection, collect
from benchmark.analysis.compare import Sweep, compare, differences, sweep_labels
from benchmark.analysis.cost import sweep_cost
from benchmark.analysis.curve import build_summary, curve_rows, is_usable, pooled_settings, unscored_reason
from benchmark.analysis.export import write_json, write_results_csv, write_text
from benchmark.analysis.figure import plot_generality
from benchmark.analysis.findings import findings_settings, test_findings
from benchmark.analysis.findings_table import (findings_rows, findings_text, render_findings, verdict_label,
                                              write_findings)
from benchmark.analysis.measure_reports import report_of
from benchmark.analysis.methods import write_methods
from benchmark.reference import load_reference
from benchmark.analysis.sanity import gate, sanity_checks
from benchmark.analysis.table import write_table
from benchmark.errors import UserError
from benchmark.measures import MEASURES, check_measures
from benchmark.protocol import MEAN_HIGHEST
from benchmark.schema import validate
from benchmark.store.record import RunRecord

__all__ = ["AnalysisError", "Report", "aggregate", "build_summary", "compare_sweeps", "curve_rows",
           "default_analysis", "default_findings", "findings_rows", "findings_text", "load_reference",
           "pooled_settings", "render_findings", "run_findings", "verdict_label"]


class AnalysisError(UserError):
    """Nothing to aggregate, or a bad argument; the message says how to fix it."""


@dataclass(frozen=True)
class Report:
    """What :func:`aggregate` wrote: ``paths`` by kind (csv, summary, png, pdf, table, findings,
    and each measure's figures, e.g. similarity_png, similarity_pdf)."""

    summary: dict
    paths: dict[str, Path]


Completer = Callable[[Sequence[RunRecord], DictConfig], list[RunRecord]]


def aggregate(sweep_dir: str | Path, reference: str | None = None, metric: str = "top1",
              findings: Mapping | None = None, analysis: DictConfig | None = None,
              complete: Completer | None = None) -> Report:
    """Aggregate every result.json under ``sweep_dir`` and write the reports next to them.

    ``reference`` (e.g. "yosinski2014") adds the paper's curve as a second figure panel;
    ``findings`` is ``analysis.findings`` (default: conf/config.yaml's); ``analysis`` (default:
    conf/config.yaml's) names the per-block measures and how they are reported; ``complete``
    (benchmark/sweep/later.py's) takes those the runs lack from the networks they saved. Every
    measure the runs took is reported.
    Raises AnalysisError when there is nothing usable to aggregate.
    """
    sweep = Path(sweep_dir)
    if not sweep.is_dir():
        raise AnalysisError(f"sweep directory {sweep} does not exist; pass the directory a sweep "
                            "wrote (e.g. multirun/DATE/TIME)")
    try:
        paper = load_reference(reference) if reference else None
    except ValueError as exc:
        raise AnalysisError(f"{exc} (option --reference)") from exc
    collection = collect(sweep)
    _check_usable(sweep, collection, metric)
    analysis = analysis if analysis is not None else default_analysis()
    settings = findings_settings(findings if findings is not None else run_findings(
        collection.results, defaults=analysis.findings))
    records = complete(collection.results, analysis) if complete else collection.results
    summary = build_summary(records, metric)
    summary["runs"]["duplicates"] = len(collection.duplicates)
    summary["problems"] = collection.problems
    summary["cost"] = sweep_cost(records)
    for measure in MEASURES.values():
        summary[measure.record_key] = report_of(measure).summarise(records, analysis)
    summary["sanity"] = sanity_checks(records, metric, settings)
    summary["findings"] = gate(test_findings(records, metric, settings), summary["sanity"])
    paths = {
        "csv": write_results_csv(records, sweep / "results.csv"),
        "summary": write_json(summary, sweep / "summary.json"),
        "table": write_table(summary, sweep / "table.tex"),
        "findings": write_findings(summary, sweep / "findings.md"),
        "methods": write_methods(records, summary, settings, sweep, reference),
    }
    reported = [m for m in MEASURES.values() if summary[m.record_key]]
    if analysis.figures:
        paths["png"], paths["pdf"] = plot_generality(summary, sweep / "generality", paper)
        for measure in reported:
            paths.update(report_of(measure).draw(summary, sweep / measure.record_key))
    sections = [text for m in reported if (text := report_of(m).markdown(summary))]
    if sections:
        paths["measures"] = write_text(sweep / "measures.md", "\n".join(
            ["# The cheap per-block answer beside the protocol's", "", *sections]))
    return Report(summary, paths)


def default_analysis(overrides: Sequence[str] = ()) -> DictConfig:
    """``analysis`` as conf/config.yaml sets it, with ``analysis.KEY=VALUE`` overrides, checked."""
    from benchmark.config import composition_error, compose_config

    wrong = [o for o in overrides if not o.startswith("analysis.")]
    if wrong:
        raise AnalysisError(f"--set {wrong[0]}: only analysis.KEY=VALUE can be set here "
                            "(e.g. analysis.findings.alpha=0.01)")
    try:
        analysis = compose_config(*overrides).analysis
    except HydraException as exc:
        raise AnalysisError(f"--set: {composition_error(exc)}") from None
    validate(analysis, "analysis.")
    check_measures(analysis.measures)
    return analysis


def run_findings(records: Sequence[RunRecord], overrides: Mapping | None = None,
                 defaults: Mapping | DictConfig | None = None) -> dict:
    """The findings settings a sweep is judged by: ``analysis.findings`` as its runs were run with
    (a preset may set them: experiment=demo's still-improving tail), where every run records the
    same, over ``defaults`` (conf/config.yaml's unless given); ``overrides`` (keys set on the
    command line) on top."""
    if isinstance(defaults, DictConfig):
        defaults = OmegaConf.to_container(defaults)
    recorded = {json.dumps(((r.config or {}).get("analysis") or {}).get("findings") or {}, sort_keys=True)
                for r in records}
    own = json.loads(recorded.pop()) if len(recorded) == 1 else {}
    return {**(defaults if defaults is not None else default_findings()), **own, **(overrides or {})}


def default_findings(overrides: Sequence[str] = ()) -> dict:
    """``analysis.findings`` as conf/config.yaml sets it, with ``analysis.KEY=VALUE`` overrides."""
    findings = OmegaConf.to_container(default_analysis(overrides).findings)
    findings_settings(findings)
    return findings


def compare_sweeps(sweep_dirs: Sequence[str | Path], out: str | Path | None, metric: str = "top1",
                   findings: Mapping | Sequence[Mapping] | None = None, summaries: Sequence[dict] = (),
                   analysis: DictConfig | None = None) -> dict[str, Path]:
    """Curves of several sweeps on one figure and finding 5 across them (see compare.py);
    ``out`` defaults to ``comparison/`` in the sweeps' common parent directory. ``findings``: the
    settings of every sweep, or one per sweep (default: each sweep's :func:`run_findings`). With
    the sweeps' ``summaries`` (of :func:`aggregate`), their readouts scored across them
    (cheap_answer.py); ``analysis`` (default: conf/config.yaml's): how they are scored, and
    whether the figures are drawn."""
    dirs = [Path(d) for d in sweep_dirs]
    out_dir = Path(out) if out else Path(os.path.commonpath([d.absolute() for d in dirs])) / "comparison"
    out_dir.mkdir(parents=True, exist_ok=True)
    collections = [collect(d) for d in dirs]
    analysis = analysis if analysis is not None else default_analysis()
    per_sweep = [findings] * len(dirs) if isinstance(findings, Mapping) else findings or [
        run_findings(c.results, defaults=analysis.findings) for c in collections]
    differing = differences([[r.config or {} for r in c.results] for c in collections])
    labels = sweep_labels(differing)
    sweeps = [Sweep(d, label, c.results, differs) for d, label, c, differs in zip(dirs, labels, collections, differing)]
    paths = compare(sweeps, out_dir, metric, [findings_settings(f) for f in per_sweep], analysis.figures)
    if summaries:
        paths.update(cheap_answer(labels, summaries, analysis, out_dir))
    return paths


def _check_usable(sweep: Path, collection: Collection, metric: str) -> None:
    if not collection.results and not collection.problems:
        raise AnalysisError(f"no result.json under {sweep}; pass the output directory of a sweep "
                            "(python -m benchmark -m experiment=NAME writes multirun/DATE/TIME)")
    if not collection.results:
        first = collection.problems[0]
        raise AnalysisError(f"none of the {len(collection.problems)} result.json files under {sweep} "
                            f"is readable (e.g. {first['path']}: {first['error']}); re-run those runs")
    ok = [r for r in collection.results if r.ok]
    available = {m for r in ok for m in (r.metrics or {})}
    if available and metric not in available | {MEAN_HIGHEST}:
        raise AnalysisError(f"metric {metric!r} is in no result; choose one of: "
                            f"{', '.join(sorted(available | {MEAN_HIGHEST}))}")
    if metric == MEAN_HIGHEST and ok and not any(is_usable(r, metric) for r in ok):
        raise AnalysisError(f"no run can be scored by metric {metric}: {ok[0].label} seed {ok[0].seed} has "
                            f"{unscored_reason(ok[0], metric)}")
