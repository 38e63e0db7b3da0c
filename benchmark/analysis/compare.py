"""Several sweeps side by side: their curves on one figure, labelled by what differs between
their configs (random vs family split, BatchNorm vs none, little vs much target data), and
finding 5 (a dissimilar split falls more at the top layers) tested across them."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from benchmark.analysis.curve import build_summary, metric_label
from benchmark.analysis.export import write_text
from benchmark.analysis.figure import RC, XLABEL, write_figure
from benchmark.analysis.findings import FindingsSettings, test_findings
from benchmark.analysis.findings_table import findings_rows, verdict_grid
from benchmark.analysis.sanity import gate, sanity_checks
from benchmark.analysis.stats import ci_half_width
from benchmark.protocol import SELFFER, SERIES_BY_KEY, TRANSFER, TRANSFER_TUNED
from benchmark.store.fingerprint import not_determining
from benchmark.store.record import RunRecord
from benchmark.tracking import flatten

COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
STYLES = {TRANSFER: "-", SELFFER: "--", TRANSFER_TUNED: ":"}  # the series drawn per sweep, by line style
RUN_KEYS = ("treatment", "n", "finetune", "target", "seed", "source", "hydra")
DATASET_KEY = "dataset.name"
LABEL_KEYS = (DATASET_KEY, "split.name", "model.name", "model.arch")  # what a legend names a sweep by first


@dataclass(frozen=True)
class Sweep:
    """One sweep of a comparison: its directory, legend label, usable results and the settings
    in which it differs from the others."""

    path: Path
    label: str
    results: list[RunRecord]
    differs: dict


def differences(configs: Sequence[list[dict]]) -> list[dict]:
    """Per sweep (its runs' configs), the settings whose values differ between the sweeps (a
    sweep's settings: the config keys its runs agree on, without the run's point and execution keys)."""
    shared = [_constant_keys(runs) for runs in configs]
    keys = sorted({k for settings in shared for k in settings if len({repr(s.get(k)) for s in shared}) > 1})
    return [{k: settings.get(k) for k in keys} for settings in shared]


def sweep_labels(differing: Sequence[dict]) -> list[str]:
    """A legend entry per sweep: the fewest of the settings that differ (:func:`differences`) that
    tell the sweeps apart, taken in :data:`LABEL_KEYS` order, then by name. What follows from a
    dataset's name (its mean and std, its recipe's epochs) is left to comparison.md's list."""
    chosen: list[str] = []
    told_apart = _distinct(differing, chosen)
    for key in sorted({k for settings in differing for k in settings}, key=_label_order):
        if told_apart == len(differing):
            break
        if _distinct(differing, [*chosen, key]) > told_apart:
            chosen.append(key)
            told_apart = _distinct(differing, chosen)
    return [_label(settings, chosen) or f"sweep {i + 1}" for i, settings in enumerate(differing)]


def _distinct(differing: Sequence[dict], keys: Sequence[str]) -> int:
    return len({_label(settings, keys) for settings in differing})


def _label_order(key: str) -> tuple[int, str]:
    return (LABEL_KEYS.index(key) if key in LABEL_KEYS else len(LABEL_KEYS), key)


def _label(settings: dict, keys: Sequence[str]) -> str:
    return ", ".join(f"{k}={settings.get(k)}" for k in keys)


def _constant_keys(configs: list[dict]) -> dict:
    flat = [flatten(config) for config in configs]
    skip = {*RUN_KEYS, *not_determining()}
    keys = set.intersection(*(set(f) for f in flat)) if flat else set()
    return {k: flat[0][k] for k in keys
            if not {k.split(".")[0], ".".join(k.split(".")[:2])} & skip
            and len({repr(f[k]) for f in flat}) == 1}


def compare(sweeps: Sequence[Sweep], out_dir: Path, metric: str, settings: Sequence[FindingsSettings],
            figures: bool = True) -> dict[str, Path]:
    """Write comparison.md (each sweep's findings under its own ``settings``, finding 5 across
    them under the first sweep's) and, with ``figures``, comparison.png / .pdf into ``out_dir``."""
    summaries = [build_summary(sweep.results, metric) for sweep in sweeps]
    paths = dict(zip(("png", "pdf"), plot_comparison(summaries, [s.label for s in sweeps],
                                                      out_dir / "comparison"))) if figures else {}
    pooled = test_findings([r for sweep in sweeps for r in sweep.results], metric, settings[0])
    blocks = [gate(test_findings(sweep.results, metric, own), sanity_checks(sweep.results, metric, own))
              for sweep, own in zip(sweeps, settings)]
    lines = ["# Sweeps compared", "", "## Verdicts side by side", "",
             verdict_grid([s.label for s in sweeps],
                          [summary | {"findings": block} for summary, block in zip(summaries, blocks)]), ""]
    lines += ["## What differs between the sweeps", "",
              *[f"- {sweep.label}: {_label(sweep.differs, list(sweep.differs)) or 'nothing'}" for sweep in sweeps], ""]
    for sweep, block in zip(sweeps, blocks):
        lines += [f"## {sweep.label} ({sweep.path})", "", findings_rows(block["findings"]), ""]
    across = [f for f in pooled["findings"] if f["id"] == 5]
    lines += ["## Finding 5 across the sweeps", "", findings_rows(across), ""]
    lines += [f"{f['detail']}." for f in across] + _mixed_datasets(sweeps)
    return {**paths, "markdown": write_text(out_dir / "comparison.md", "\n".join(lines) + "\n")}


def _mixed_datasets(sweeps: Sequence[Sweep]) -> list[str]:
    """A warning where finding 5 pools the splits of several datasets: a dissimilar split's extra
    drop is then confounded with the datasets' own difference."""
    datasets = sorted({str(s.differs[DATASET_KEY]) for s in sweeps if DATASET_KEY in s.differs})
    if len(datasets) < 2:
        return []
    return ["", f"The sweeps are on {len(datasets)} datasets ({', '.join(datasets)}): finding 5 above pools the "
            "random splits of all of them against the dissimilar ones, so a dataset's own drop counts as the "
            "split's. Compare the sweeps of one dataset for finding 5."]


def findings_across(sweep: list[RunRecord], dissimilar: list[RunRecord], metric: str,
                    settings: FindingsSettings) -> list[dict]:
    """The findings of one sweep (a random split), finding 5 taken across it and a sweep of a
    dissimilar split: the one table a paper quotes for the pair."""
    across = next(f for f in test_findings(sweep + dissimilar, metric, settings)["findings"] if f["id"] == 5)
    return [across if f["id"] == 5 else f for f in test_findings(sweep, metric, settings)["findings"]]


def plot_comparison(summaries: list[dict], labels: list[str], stem: Path) -> tuple[Path, Path]:
    """Each sweep in its colour: its base as a dotted line, AnB, BnB and AnB+ by line style."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(7.2, 4.8), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for summary, label, color in zip(summaries, labels, COLORS * len(summaries)):
            _plot_one(ax, summary, color)
        handles = [Line2D([], [], color=c, lw=2, label=label) for label, c in zip(labels, COLORS * len(labels))]
        handles += [Line2D([], [], color="black", ls=ls, label=SERIES_BY_KEY[name].legend)
                    for name, ls in STYLES.items()]
        handles.append(Line2D([], [], color="black", ls=(0, (1, 3)), label="base$B$ of each sweep"))
        ax.legend(handles=handles, loc="lower left", frameon=False, fontsize=7)
        ax.set_xlabel(XLABEL)
        ax.set_ylabel(metric_label(summaries[0]["metric"]))
        ax.grid(axis="y", color="0.93", lw=0.6)
        return write_figure(fig, stem, dpi=200)


def _plot_one(ax: Axes, summary: dict, color: str) -> None:
    base = summary["base"]["mean"]
    if base is not None:
        ax.axhline(base, color=color, lw=0.9, ls=(0, (1, 3)))
    for name, ls in STYLES.items():
        by_n = summary["series"].get(name)
        if not by_n:
            continue
        ns = sorted(int(n) for n in by_n)
        points = [by_n[str(n)] for n in ns]
        ax.errorbar(ns, [p["mean"] for p in points], yerr=[ci_half_width(p) or 0.0 for p in points],
                    color=color, ls=ls, lw=1.4, marker=SERIES_BY_KEY[name].marker, ms=3.5, capsize=2)
