"""Aggregate a sweep's result.json files into the generality curve and its reports.

``aggregate(sweep_dir)`` writes, into ``sweep_dir``: results.csv (one row per
run), summary.json (curve, derived quantities, failed runs, unreadable files),
generality.png / .pdf (paper Figure 2 style), table.tex (booktabs) and, when the
runs measured layer similarity, similarity.png / .pdf.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.analysis.collect import Collection, collect
from benchmark.analysis.cost import sweep_cost
from benchmark.analysis.curve import build_summary, curve_rows, pooled_settings
from benchmark.analysis.export import write_json, write_results_csv
from benchmark.analysis.figure import plot_generality
from benchmark.analysis.reference import load_reference
from benchmark.analysis.similarity import plot_similarity, similarity_summary
from benchmark.analysis.table import write_table
from benchmark.errors import UserError

__all__ = ["AnalysisError", "Report", "aggregate", "build_summary", "curve_rows", "load_reference",
           "pooled_settings"]


class AnalysisError(UserError):
    """Nothing to aggregate, or a bad argument; the message says how to fix it."""


@dataclass(frozen=True)
class Report:
    """What :func:`aggregate` wrote: ``paths`` by kind (csv, summary, png, pdf, table,
    similarity_png, similarity_pdf)."""

    summary: dict
    paths: dict[str, Path]


def aggregate(sweep_dir: str | Path, reference: str | None = None, metric: str = "top1") -> Report:
    """Aggregate every result.json under ``sweep_dir`` and write the reports next to them.

    ``reference`` (e.g. "yosinski2014") adds the paper's curve as a second figure panel.
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
    summary = build_summary(collection.results, metric)
    summary["runs"]["duplicates"] = len(collection.duplicates)
    summary["problems"] = collection.problems
    summary["cost"] = sweep_cost(collection.results)
    summary["similarity"] = similarity_summary(collection.results)
    png, pdf = plot_generality(summary, sweep / "generality", paper)
    paths = {
        "csv": write_results_csv(collection.results, sweep / "results.csv"),
        "summary": write_json(summary, sweep / "summary.json"),
        "png": png,
        "pdf": pdf,
        "table": write_table(summary, sweep / "table.tex"),
    }
    if summary["similarity"]:
        paths["similarity_png"], paths["similarity_pdf"] = plot_similarity(
            summary["similarity"], summary["derived"]["generality"], sweep / "similarity")
    return Report(summary, paths)


def _check_usable(sweep: Path, collection: Collection, metric: str) -> None:
    if not collection.results and not collection.problems:
        raise AnalysisError(f"no result.json under {sweep}; pass the output directory of a sweep "
                            "(python -m benchmark -m experiment=NAME writes multirun/DATE/TIME)")
    if not collection.results:
        first = collection.problems[0]
        raise AnalysisError(f"none of the {len(collection.problems)} result.json files under {sweep} "
                            f"is readable (e.g. {first['path']}: {first['error']}); re-run those runs")
    available = {m for r in collection.results if r.get("status") == "ok" for m in (r.get("metrics") or {})}
    if available and metric not in available:
        raise AnalysisError(f"metric {metric!r} is in no result; choose one of: {', '.join(sorted(available))}")
