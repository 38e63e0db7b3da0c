"""The generality curve drawn in the style of Yosinski et al. 2014, Figure 2 (top panel).

Uses matplotlib's object API with the Agg canvas: no pyplot, no display, and
no change to the backend of a process that imports this module.
"""
from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting chatter
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from benchmark.analysis.curve import metric_label
from benchmark.analysis.stats import ci_half_width
from benchmark.protocol import BASE, SERIES, SERIES_BY_KEY, SOURCE_BASE, Series
from benchmark.store.atomic import atomic_write

JITTER = 0.04
XLABEL = "Layer $n$ at which the network is chopped and retrained"
RC = {"font.size": 10, "axes.titlesize": 10, "legend.fontsize": 8, "axes.spines.top": False,
      "axes.spines.right": False, "pdf.fonttype": 42}


def plot_generality(summary: dict, stem: Path, reference: dict | None = None) -> tuple[Path, Path]:
    """Write ``stem``.png (300 dpi) and ``stem``.pdf.

    The random-frozen control, which collapses towards chance, gets its own panel
    below so that it does not squash the few-point effects of the main curve (the
    paper also shows it in a separate figure). ``reference`` adds a right panel.
    """
    present = [s.key for s in SERIES if s.key in summary["series"]]
    controls = [key for key in present if SERIES_BY_KEY[key].panel == "control"]
    rows = 2 if controls else 1
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(11.0 if reference else 6.4, 6.4 if controls else 4.6), layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(rows, 2 if reference else 1, height_ratios=[3.0, 1.5][:rows])
        main = fig.add_subplot(grid[0, 0])
        setting = " / ".join(", ".join(values) for values in summary["meta"].values() if values)
        title = f"This sweep: {setting}" if setting else "This sweep"
        _plot_sweep(main, summary, [key for key in present if key not in controls], title)
        bottom = main
        if controls:
            bottom = fig.add_subplot(grid[1, 0], sharex=main)
            _plot_sweep(bottom, summary, controls, "Controls: " + ", ".join(
                SERIES_BY_KEY[key].legend for key in controls))
        bottom.set_xlabel(XLABEL)
        if reference:
            _plot_reference(fig.add_subplot(grid[:, 1]), reference, metric_label(reference["metric"]))
        return write_figure(fig, stem, dpi=300)


def write_figure(fig: Figure, stem: Path, dpi: int) -> tuple[Path, Path]:
    """``stem``.png at ``dpi`` and ``stem``.pdf, written atomically. The layout is computed once,
    then fixed for both files: constrained layout would otherwise be solved again in every save,
    a quarter of an aggregation's time."""
    if engine := fig.get_layout_engine():
        engine.execute(fig)
        fig.set_layout_engine("none")
    png, pdf = (atomic_write(stem.with_suffix(suffix), lambda tmp, s=suffix: fig.savefig(
        tmp, format=s[1:], dpi=dpi)) for suffix in (".png", ".pdf"))
    return png, pdf


def _plot_sweep(ax: Axes, summary: dict, names: list[str], title: str) -> None:
    rng = np.random.default_rng(0)
    base = summary["base"]
    handles = []
    if base["count"]:
        handles += _base_band(ax, base)
        _scatter(ax, rng, 0, base["values"], SERIES_BY_KEY[BASE])
    source = summary.get("source_base") or {"count": 0}
    if source["count"]:
        handles.append(_source_base(ax, rng, source))
    for name in names:
        by_n = summary["series"].get(name)
        if by_n:
            handles.append(_series(ax, rng, name, by_n, base["mean"]))
    ns = [int(n) for by_n in summary["series"].values() for n in by_n]
    _decorate(ax, max(ns, default=1), metric_label(summary["metric"]), title, summary.get("blocks", {}))
    ax.legend(handles=handles, loc="best", frameon=False)


def _base_band(ax: Axes, base: dict) -> list:
    """The base mean as a dotted line, in a grey band of its 95% CI when that is defined."""
    half = ci_half_width(base)
    ax.axhline(base["mean"], color="0.45", lw=0.8, ls=":", zorder=1)
    style = SERIES_BY_KEY[BASE]
    ax.errorbar([0], [base["mean"]], yerr=[half or 0.0], fmt=style.marker, ms=6, mfc="white",
                mec="black", ecolor="black", capsize=2.5, zorder=4)
    if half is None:
        return [_handle(style, ls="none")]
    ax.axhspan(base["mean"] - half, base["mean"] + half, color="0.88", lw=0, zorder=0)
    return [_handle(style, ls="none"), Patch(color="0.88", label="base$B$ mean $\\pm$ 95% CI")]


def _source_base(ax: Axes, rng: np.random.Generator, source: dict) -> Line2D:
    """The base networks the transfer runs copied from (baseA), beside baseB at n = 0."""
    style = SERIES_BY_KEY[SOURCE_BASE]
    _scatter(ax, rng, style.offset, source["values"], style)
    ax.errorbar([style.offset], [source["mean"]], yerr=[ci_half_width(source) or 0.0], fmt=style.marker,
                ms=6, mfc=style.face, mec=style.color, ecolor=style.color, capsize=2.5, zorder=4)
    handle = _handle(style, ls="none")
    handle.set_markeredgecolor(style.color)
    return handle


def _series(ax: Axes, rng: np.random.Generator, name: str, by_n: dict, base_mean: float | None) -> Line2D:
    """Runs as small jittered markers, means joined by a line (from the base at n = 0) with CI bars."""
    style = SERIES_BY_KEY[name]
    ns = sorted(int(n) for n in by_n)
    points = [by_n[str(n)] for n in ns]
    for n, point in zip(ns, points):
        _scatter(ax, rng, n + style.offset, point["values"], style)
    xs = np.array(ns, dtype=float) + style.offset
    means = [p["mean"] for p in points]
    line_x, line_y = ([0.0, *xs], [base_mean, *means]) if base_mean is not None else (xs, means)
    ax.plot(line_x, line_y, color=style.color, lw=1.6, zorder=3)
    ax.errorbar(xs, means, yerr=[ci_half_width(p) or 0.0 for p in points], fmt=style.marker,
                ms=5, mfc=style.face or style.color, mec="black", mew=0.6, ecolor=style.color,
                elinewidth=1.2, capsize=2.5, zorder=4)
    return _handle(style)


def _scatter(ax: Axes, rng: np.random.Generator, x: float, values: list, style: Series) -> None:
    xs = x + rng.uniform(-JITTER, JITTER, len(values))
    ax.scatter(xs, values, s=14, marker=style.marker, facecolor=style.face or style.color,
               edgecolor="0.2", linewidth=0.4, alpha=0.8, zorder=2)


def _plot_reference(ax: Axes, reference: dict, ylabel: str) -> None:
    """The paper's means as dashed lines, its base as a band over the range of its base nets."""
    base = reference["baseB"]
    low, high = base["range"]
    ax.axhspan(low, high, color="0.88", lw=0, zorder=0)
    ax.axhline(base["mean"], color="0.45", lw=0.8, ls=":", zorder=1)
    handles = [_handle(SERIES_BY_KEY[BASE], ls="none"),
               Patch(color="0.88", label=f"base$B$ range ({base['count']} nets)")]
    ax.plot([0], [base["mean"]], SERIES_BY_KEY[BASE].marker, ms=6, mfc="white", mec="black", zorder=4)
    for name, by_n in reference["series"].items():
        style = SERIES_BY_KEY[name]
        ns = sorted(int(n) for n in by_n)
        ax.plot([0, *ns], [base["mean"], *(by_n[str(n)] for n in ns)], ls="--", lw=1.4,
                marker=style.marker, ms=5, markevery=list(range(1, len(ns) + 1)),
                mfc=style.face or style.color, mec="black", mew=0.5, color=style.color, zorder=3)
        handles.append(_handle(style, ls="--"))
    n_max = max(int(n) for by_n in reference["series"].values() for n in by_n)
    _decorate(ax, n_max, ylabel, reference["title"], reference.get("blocks", {}))
    ax.set_xlabel(XLABEL)
    ax.legend(handles=handles, loc="lower left", frameon=False)


def _handle(style: Series, ls: str = "-") -> Line2D:
    return Line2D([], [], color=style.color, ls=ls, lw=1.6, marker=style.marker, ms=6,
                  mfc=style.face or style.color, mec="black", label=style.legend)


def _decorate(ax: Axes, n_max: int, ylabel: str, title: str, blocks: dict[str, str]) -> None:
    """Axes limits and labels; each layer n is labelled with its block's name when known."""
    ax.set_xlim(-0.5, n_max + 0.5)
    ax.set_xticks(range(n_max + 1), [_tick(n, blocks) for n in range(n_max + 1)],
                  fontsize=7 if blocks else None)
    ax.set_ylabel(f"{ylabel} (higher is better)" if "accuracy" in ylabel else ylabel)
    ax.set_title(title)
    ax.grid(axis="y", color="0.93", lw=0.6, zorder=0)


def _tick(n: int, blocks: dict[str, str]) -> str:
    return f"{n}\n{blocks[str(n)]}" if str(n) in blocks else str(n)
