"""The cheap answer scored across conditions: the readouts' cheap generality against the
protocol's over the (condition, block) cells of several sweeps (splits, sources, datasets,
models), beside the depth-only and random-init nulls (benchmark/analysis/cheap_scores.py), the
drop each predicts between conditions at the top blocks, and one figure of every cell.

``python -m benchmark.analysis DIR DIR ...`` writes it, from each sweep's summary.json entries of
the readout measures (their per-unit curves), as cheap_answer.md / .json / .png / .pdf beside the
comparison.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from omegaconf import DictConfig

from benchmark.analysis.cheap_scores import (DEPTH_NULL, PREDICTOR_NAMES, RANDOM_INIT_NULL, READOUT, UnitCurves,
                                             scored, scores_table)
from benchmark.analysis.export import write_json, write_text
from benchmark.analysis.figure import RC, write_figure
from benchmark.measures import MEASURES
from benchmark.measures.labelled import ReadoutMeasure
from benchmark.protocol import TRANSFER

COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def cheap_answer(labels: Sequence[str], summaries: Sequence[dict], analysis: DictConfig, out_dir: Path,
                 series: str = TRANSFER) -> dict[str, Path]:
    """Write cheap_answer.md / .json / .png / .pdf (the figure where ``analysis.figures``) into
    ``out_dir`` for the readouts the sweeps took (``series``: the protocol curve they answer for);
    nothing when none took one."""
    readouts = [m for m in MEASURES.values() if isinstance(m, ReadoutMeasure)]
    units = {m.name: _units(m.record_key, labels, summaries, series) for m in readouts}
    units = {name: us for name, us in units.items() if us}
    if not units:
        return {}
    settings = analysis.agreement
    ratio = {m.name: m.ratio for m in readouts}
    result = {name: {"scores": scored(us, settings.threshold, ratio[name], settings.min_units, settings.bootstrap),
                     "top_blocks": top_block_drops(us, labels, analysis.findings.top_layers),
                     "points": ratio[name]}
              for name, us in units.items()}
    paths = {"cheap_answer_json": write_json(result, out_dir / "cheap_answer.json"),
             "cheap_answer_md": write_text(out_dir / "cheap_answer.md", markdown(result, labels, series, settings))}
    if analysis.figures:
        paths["cheap_answer_png"], paths["cheap_answer_pdf"] = plot_cells(
            {name: us for name, us in units.items() if ratio[name]}, labels, out_dir / "cheap_answer")
    return paths


def _units(key: str, labels: Sequence[str], summaries: Sequence[dict], series: str) -> list[UnitCurves]:
    units = []
    for label, summary in zip(labels, summaries):
        entry = ((summary.get(key) or {}).get("agreement") or {}).get(series) or {}
        units += [UnitCurves.from_json(u, condition=label) for u in entry.get("unit_curves", [])]
    return units


def top_block_drops(units: Sequence[UnitCurves], labels: Sequence[str], top_layers: float) -> dict:
    """Per condition, the mean generality over its top blocks (n >= ``top_layers`` * L) of the
    protocol and of each predictor, and how far each lies below the first condition's, in points."""
    means = {}
    for label in labels:
        ours = [u for u in units if u.condition == label]
        if not ours:
            continue
        depth = max(max(u.predictors[DEPTH_NULL]) for u in ours)
        top = [n for n in sorted(ours[0].protocol) if n >= top_layers * depth]
        curves = {"protocol": [u.protocol for u in ours],
                  **{p: [u.predictors[p] for u in ours if p in u.predictors] for p in (READOUT, RANDOM_INIT_NULL)}}
        means[label] = {"blocks": top, **{name: _top_mean(cs, top) for name, cs in curves.items() if cs}}
    first = next(iter(means.values()), None)
    for values in means.values():
        values["below_first_points"] = {name: 100 * (first[name] - values[name]) for name in values
                                        if name != "blocks" and name in first and first[name] is not None
                                        and values[name] is not None}
    return means


def _top_mean(curves: list[dict[int, float]], top: list[int]) -> float | None:
    values = [c[n] for c in curves for n in top if n in c and math.isfinite(c[n])]
    return float(np.mean(values)) if values else None


def markdown(result: dict, labels: Sequence[str], series: str, settings: DictConfig) -> str:
    lines = ["# The cheap answer across the sweeps", "",
             f"Cells: (sweep, block) of {', '.join(labels)}; the protocol curve {series} / baseB; first costly "
             f"block: the first below {settings.threshold}.", ""]
    for name, r in result.items():
        lines += [f"## {name}", "", *scores_table(r["scores"]), ""]
        if not r["points"]:
            lines += ["Its cheap generality is a difference of log evidences, not an accuracy ratio: its ranks "
                      "compare, its points do not.", ""]
        lines += ["Top blocks, mean generality and how far below the first sweep (points):", "",
                  "| sweep | blocks | protocol | readout | random-init readout | below first: protocol | readout |"
                  " random-init |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for label, v in r["top_blocks"].items():
            below = v["below_first_points"] if r["points"] else {"protocol": v["below_first_points"].get("protocol")}
            lines.append(f"| {label} | {', '.join(map(str, v['blocks']))} | {_num(v.get('protocol'))} | "
                         f"{_num(v.get(READOUT))} | {_num(v.get(RANDOM_INIT_NULL))} | {_num(below.get('protocol'), 1)} | "
                         f"{_num(below.get(READOUT), 1)} | {_num(below.get(RANDOM_INIT_NULL), 1)} |")
        lines.append("")
    return "\n".join(lines)


def _num(value: float | None, digits: int = 3) -> str:
    return "--" if value is None else f"{value:.{digits}f}"


def plot_cells(units: dict[str, list[UnitCurves]], labels: Sequence[str], stem: Path) -> tuple[Path, Path]:
    """Every (sweep, block) cell: cheap generality (mean over units) against the protocol's, one
    colour per readout (filled: the readout; hollow: the same readout of a random-init network),
    the depth-only null in grey, one marker per sweep, the identity line."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(6.4, 5.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        markers = dict(zip(labels, MARKERS * len(labels)))
        for (name, us), color in zip(units.items(), COLORS * len(units)):
            for predictor, face in ((READOUT, color), (RANDOM_INIT_NULL, "none")):
                x, y, m = _cells(us, predictor)
                for xi, yi, label in zip(x, y, m):
                    ax.scatter(xi, yi, s=28, marker=markers[label], facecolors=face, edgecolors=color, lw=1.1)
        x, y, m = _cells(next(iter(units.values()), []), DEPTH_NULL)
        for xi, yi, label in zip(x, y, m):
            ax.scatter(xi, yi, s=22, marker=markers[label], facecolors="none", edgecolors="0.6", lw=0.9)
        ax.axline((0, 0), slope=1, color="0.3", lw=0.8, ls="--")
        handles = [Line2D([], [], color=c, marker="o", ls="", label=name) for name, c in zip(units, COLORS)]
        handles += [Line2D([], [], color="0.3", marker="o", mfc="none", ls="", label=PREDICTOR_NAMES[RANDOM_INIT_NULL]),
                    Line2D([], [], color="0.6", marker="o", mfc="none", ls="", label=PREDICTOR_NAMES[DEPTH_NULL])]
        handles += [Line2D([], [], color="black", marker=markers[label], ls="", label=label) for label in labels]
        ax.legend(handles=handles, loc="upper left", frameon=False, fontsize=7)
        ax.set_xlabel("protocol generality (AnB / baseB)")
        ax.set_ylabel("cheap generality (other / own)")
        ax.set_title("The cheap answer on every cell of every sweep")
        ax.grid(color="0.93", lw=0.6)
        return write_figure(fig, stem, dpi=200)


def _cells(units: list[UnitCurves], predictor: str) -> tuple[list[float], list[float], list[str]]:
    """Per (condition, block), the mean over units of the protocol's and the predictor's curve."""
    x, y, labels = [], [], []
    for label in dict.fromkeys(u.condition for u in units):
        ours = [u for u in units if u.condition == label and predictor in u.predictors]
        for n in sorted(set.intersection(*(set(u.protocol) & set(u.predictors[predictor]) for u in ours)) if ours else []):
            x.append(float(np.mean([u.protocol[n] for u in ours])))
            y.append(float(np.mean([u.predictors[predictor][n] for u in ours])))
            labels.append(label)
    return x, y, labels
