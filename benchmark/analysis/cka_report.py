"""The report of the CKA measure (benchmark/measures/cka.py) beside the generality curve:
its run entries aggregated into summary.json's ``similarity``, drawn as similarity.png/.pdf,
logged to W&B.

- ``base_vs_base``: the L x L matrix CKA(block i of baseB, block j of baseA) averaged over
  seeds and targets (rows: the target half's base, in target-B names), with its diagonal per
  layer n (mean and CI);
- ``vs_source``: per copying series and n, each block's CKA against the same block of the
  source, and two curves: ``copied`` (block n, the top copied block: 1 when frozen, how far
  fine-tuning moved it otherwise) and ``retrained`` (the mean over the re-trained blocks above n).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from benchmark.analysis.curve import layer_names, role
from benchmark.analysis.figure import RC, write_figure
from benchmark.analysis.stats import ci_half_width, describe
from benchmark.protocol import BASE, SERIES, SERIES_BY_KEY, SOURCE_BASE, TRANSFER
from benchmark.store.record import RunRecord


CHANCE_COLOR, CHANCE_LABEL = "0.55", "chance level (images paired at random)"


def similarity_summary(records: Iterable[RunRecord], key: str) -> dict | None:
    """summary.json's entry of the CKA measure (``key``: its record key) from the ok runs that
    measured it; None when none did. Runs whose measurement failed (a constant block) are
    listed under ``errors``."""
    measured = [(r, r.measures[key]) for r in records if r.ok and r.measures.get(key)]
    if not measured:
        return None
    ok = [(r, e) for r, e in measured if "error" not in e]
    depth = Counter(len(r.blocks or []) for r, _ in ok).most_common(1)[0][0] if ok else 0
    ok = [(r, e) for r, e in ok if len(r.blocks or []) == depth]  # one model's depth per figure
    settings = {name: sorted({e[name] for _, e in measured}) for name in ("images", "pool")}
    return {
        "blocks": layer_names(r for r, _ in ok),
        "settings": settings,
        "base_vs_base": _base_vs_base(e["base_vs_base"] for _, e in ok if "base_vs_base" in e),
        "vs_source": _vs_source([(r, e["vs_source"]) for r, e in ok if "vs_source" in e]),
        "chance": _chance([e for _, e in ok if "chance" in e]),
        "errors": [{"label": r.label, "seed": r.seed, "error": e["error"]} for r, e in measured if "error" in e],
        "seconds_total": round(sum(e.get("seconds", 0.0) for _, e in measured), 3),
    }


def _base_vs_base(matrices: Iterable[list[list[float]]]) -> dict | None:
    stack = np.array(list(matrices), dtype=float)
    if not stack.size:
        return None
    diagonal = np.diagonal(stack, axis1=1, axis2=2)
    return {"rows": BASE, "columns": SOURCE_BASE, "count": len(stack),
            "matrix": stack.mean(axis=0).tolist(),
            "diagonal": {str(n): describe(diagonal[:, n - 1].tolist())
                         for n in range(1, diagonal.shape[1] + 1)}}


def _chance(entries: list[dict]) -> dict:
    """CKA's chance level per layer n (the statistic on images paired at random): for the
    base-vs-base diagonal, and for each block against its source (pooled over copying runs).
    Entries written before the chance level was measured have none."""
    diagonals = [np.diagonal(np.array(e["chance"])) for e in entries if "base_vs_base" in e]
    against = [e["chance"] for e in entries if "vs_source" in e]
    return {kind: {str(n): describe(column.tolist()) for n, column in enumerate(np.array(rows).T, start=1)}
            for kind, rows in (("base_vs_base", diagonals), ("vs_source", against)) if rows}


def _vs_source(measured: list[tuple[RunRecord, list[float]]]) -> dict:
    table: dict[str, dict[int, list[list[float]]]] = {}
    for record, per_block in measured:
        table.setdefault(role(record), {}).setdefault(record.n, []).append(per_block)
    return {s.key: {str(n): _layer_point(np.array(rows), n) for n, rows in sorted(table[s.key].items())}
            for s in SERIES if s.key in table}


def _layer_point(rows: np.ndarray, n: int) -> dict:
    """``rows``: one run's per-block CKA against its source per row."""
    above = rows[:, n:]
    return {"blocks": [describe(column.tolist()) for column in rows.T],
            "copied": describe(rows[:, n - 1].tolist()),
            "retrained": describe(above.mean(axis=1).tolist()) if above.shape[1] else None}


def plot_similarity(similarity: dict, generality: dict, stem: Path) -> tuple[Path, Path]:
    """Write ``stem``.png (200 dpi) and ``stem``.pdf: the base-vs-base heatmap and its diagonal
    beside the generality curve AnB/baseB (when measured), and each series against its source
    (when measured)."""
    blocks = similarity["blocks"]
    base, vs_source = similarity["base_vs_base"], similarity["vs_source"]
    panels = 2 * bool(base) + bool(vs_source)
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(4.5 * panels + 1.5, 4.6), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, panels, squeeze=False)[0]
        if base:
            _heatmap(axes[0], base, blocks)
            _beside_generality(axes[1], base, generality, blocks, similarity["chance"].get("base_vs_base", {}))
        if vs_source:
            _against_source(axes[-1], vs_source, blocks, similarity["chance"].get("vs_source", {}))
        return write_figure(fig, stem, dpi=200)


def _heatmap(ax: Axes, base: dict, blocks: dict[str, str]) -> None:
    matrix = np.array(base["matrix"])
    names = [blocks.get(str(n), str(n)) for n in range(1, len(matrix) + 1)]
    image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                color="black" if value > 0.6 else "white")
    ax.set_xticks(range(len(names)), names, rotation=45, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("block of base$A$")
    ax.set_ylabel("block of base$B$")
    ax.set_title(f"Linear CKA, base$B$ vs base$A$ ({base['count']} pair(s))")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def _beside_generality(ax: Axes, base: dict, generality: dict, blocks: dict[str, str], chance: dict
                       ) -> None:
    _curve(ax, base["diagonal"], "black", "o", "CKA(base$A$, base$B$) at block $n$")
    _curve(ax, chance, CHANCE_COLOR, ".", CHANCE_LABEL, ls=":")
    _curve(ax, {n: p for n, p in generality.items() if p["count"]}, SERIES_BY_KEY[TRANSFER].color, "s",
           "generality AnB / base$B$ (accuracy)", ls="--")
    _decorate(ax, blocks, "Same layer of the two bases, and how well it transfers")


def _against_source(ax: Axes, vs_source: dict, blocks: dict[str, str], chance: dict) -> None:
    _curve(ax, chance, CHANCE_COLOR, ".", CHANCE_LABEL, ls=":")
    for key, by_n in vs_source.items():
        style = SERIES_BY_KEY[key]
        if style.finetune:  # frozen copied blocks are 1 by construction
            _curve(ax, {n: p["copied"] for n, p in by_n.items()}, style.color, style.marker,
                   f"{key}: copied block $n$")
        retrained = {n: p["retrained"] for n, p in by_n.items() if p["retrained"]}
        _curve(ax, retrained, style.color, style.marker, f"{key}: re-trained blocks above $n$ (mean)",
               ls=":")
    _decorate(ax, blocks, "Each network vs its source, block by block")


def _curve(ax: Axes, by_n: dict, color: str, marker: str, label: str, ls: str = "-") -> None:
    if not by_n:
        return
    ns = sorted(int(n) for n in by_n)
    points = [by_n[str(n)] for n in ns]
    ax.errorbar(ns, [p["mean"] for p in points], yerr=[ci_half_width(p) or 0.0 for p in points],
                color=color, marker=marker, ms=5, ls=ls, lw=1.5, capsize=2.5, label=label)


def _decorate(ax: Axes, blocks: dict[str, str], title: str) -> None:
    ns = [int(n) for n in blocks]
    ax.set_xticks(ns, [f"{n}\n{blocks[str(n)]}" for n in ns], fontsize=7)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("layer $n$")
    ax.set_ylabel("linear CKA / generality")
    ax.set_title(title)
    ax.grid(axis="y", color="0.93", lw=0.6)
    ax.legend(loc="best", frameon=False, fontsize=7)



def similarity_objects(similarity: dict, png: Path | None) -> dict:
    """What the W&B summary run logs: the figure (None: not drawn) and the base-vs-base matrix as
    a table."""
    import wandb

    objects = {} if png is None else {"similarity_figure": wandb.Image(str(png))}
    base = similarity["base_vs_base"]
    if base:
        names = [similarity["blocks"].get(str(n), str(n)) for n in range(1, len(base["matrix"]) + 1)]
        objects["similarity_base_vs_base"] = wandb.Table(
            columns=["baseB block", *names], data=[[name, *row] for name, row in zip(names, base["matrix"])])
    return objects
