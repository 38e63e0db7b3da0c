"""What reports each per-block measure: its summary.json entry, its figures, its section of
measures.md and its W&B objects, found by the measure's record key.

The measures (benchmark/measures/) compute and record and import nothing above them; the
aggregation reports them here. CKA has a report of its own (benchmark/analysis/cka_report.py),
every readout measure (a :class:`ReadoutMeasure`: linear probe, k-NN, LogME, and any added later)
the agreement with the protocol's curve (benchmark/analysis/agreement.py), and any other measure
the mean and CI of each per-block list it records, per run label, so that a new measure module
is reported without a line here; a figure of its own is a report class and its entry in
``REPORTS``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from benchmark.analysis import agreement, cka_report
from benchmark.analysis.stats import describe
from benchmark.measures import Measure
from benchmark.measures.labelled import ReadoutMeasure
from benchmark.store.record import RunRecord


class MeasureReport:
    """How the aggregation reports one measure (``record_key``: where its entries are)."""

    def __init__(self, measure: Measure) -> None:
        self.name, self.record_key = measure.name, measure.record_key

    def summarise(self, records: Sequence[RunRecord], analysis: DictConfig) -> dict | None:
        """summary.json's entry from the runs' records; None when no run measured it. The
        default: per run label and per-block list of its entries, each block's mean and CI."""
        lists: dict[str, dict[str, list[list[float]]]] = {}
        for record in records:
            entry = record.measures.get(self.record_key) if record.ok else None
            for name, values in (entry or {}).items():
                if isinstance(values, list) and values and all(isinstance(v, (int, float)) for v in values):
                    lists.setdefault(record.label, {}).setdefault(name, []).append(values)
        if not lists:
            return None
        return {label: {name: {str(n): describe([row[n - 1] for row in rows if len(row) >= n])
                               for n in range(1, max(map(len, rows)) + 1)}
                        for name, rows in by_name.items()}
                for label, by_name in lists.items()}

    def draw(self, summary: dict, stem: Path) -> dict[str, Path]:
        """Its figures (by kind, e.g. ``similarity_png``) from the whole summary, written at
        ``stem`` (the sweep directory / its record key) with their suffixes."""
        return {}

    def wandb_objects(self, summary: dict, paths: Mapping[str, Path]) -> dict[str, Any]:
        """What the W&B summary run logs for it."""
        return {}

    def markdown(self, summary: dict) -> str | None:
        """Its section of measures.md (None: it has none)."""
        return None


class SimilarityReport(MeasureReport):
    """CKA: summary.json's ``similarity``, similarity.png / .pdf, the base-vs-base matrix."""

    def summarise(self, records: Sequence[RunRecord], analysis: DictConfig) -> dict | None:
        return cka_report.similarity_summary(records, self.record_key)

    def draw(self, summary: dict, stem: Path) -> dict[str, Path]:
        png, pdf = cka_report.plot_similarity(summary[self.record_key], summary["derived"]["generality"], stem)
        return {"similarity_png": png, "similarity_pdf": pdf}

    def wandb_objects(self, summary: dict, paths: Mapping[str, Path]) -> dict[str, Any]:
        return cka_report.similarity_objects(summary[self.record_key], paths.get("similarity_png"))


class ReadoutReport(MeasureReport):
    """A readout measure: its curves and cheap generality beside the protocol's, and how well
    they agree, against the nulls."""

    def __init__(self, measure: ReadoutMeasure) -> None:
        super().__init__(measure)
        self.ratio = measure.ratio

    def summarise(self, records: Sequence[RunRecord], analysis: DictConfig) -> dict | None:
        return agreement.summarise(records, self.record_key, self.ratio, analysis.agreement)

    def draw(self, summary: dict, stem: Path) -> dict[str, Path]:
        png, pdf = agreement.plot(self.name, summary[self.record_key], summary["blocks"], stem)
        return {f"{self.record_key}_png": png, f"{self.record_key}_pdf": pdf}

    def wandb_objects(self, summary: dict, paths: Mapping[str, Path]) -> dict[str, Any]:
        import wandb

        png = paths.get(f"{self.record_key}_png")  # none without analysis.figures
        return {} if png is None else {f"{self.record_key}_figure": wandb.Image(str(png))}

    def markdown(self, summary: dict) -> str | None:
        return agreement.markdown(self.name, summary[self.record_key])


REPORTS: dict[str, Callable[[Measure], MeasureReport]] = {"similarity": SimilarityReport}


def report_of(measure: Measure) -> MeasureReport:
    """The report of ``measure``: by its record key, else by its kind."""
    if measure.record_key in REPORTS:
        return REPORTS[measure.record_key](measure)
    if isinstance(measure, ReadoutMeasure):
        return ReadoutReport(measure)
    return MeasureReport(measure)
