"""How far the cheap per-block answer can be trusted: each readout measure's curves (the
measure on the source's blocks and on the target's own base, read on the target half) beside
the protocol's generality curve, and how well they agree.

Like is compared with like: the cheap generality of block n is the measure on the other half's
base (cheap AnB) over the measure on the target half's own base (cheap BnB), both read on the
target half, against the protocol's generality AnB_n / baseB (and AnB+_n / baseB). A measure
that is not an accuracy (LogME, a log-likelihood) gives other - own instead of a ratio, whose
ranks still compare but whose points do not. Per unit (experiment, seed and target half) the
rank correlation across blocks (Spearman, Kendall); pooled, the correlation of the mean curves;
the largest gap in points; and the first n where each curve falls below
``analysis.agreement.threshold`` (where transfer starts to cost). Every score stands beside the
same score of two nulls on the same cells, a depth-only curve and the same readout of a
random-init network, with the readout's difference from each and its interval
(benchmark/analysis/cheap_scores.py); the per-unit curves are kept in summary.json, so that
``python -m benchmark.analysis DIR...`` scores the readouts across sweeps (cheap_answer.py).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from benchmark.analysis.cheap_scores import (DEPTH_NULL, RANDOM_INIT_NULL, READOUT, UnitCurves, depth_null,
                                             scored, scores_table)
from benchmark.analysis.curve import is_usable, lookup, role_table, unit
from benchmark.analysis.figure import RC, write_figure
from benchmark.analysis.stats import ci_half_width, describe
from benchmark.protocol import (ANSWERS_FOR, BASE, EXTERNAL_SOURCE, EXTERNAL_SOURCED, OTHER, OWN, RANDOM_CONTROL,
                                RANDOM_INIT, SERIES_BY_KEY, TRANSFER, TREATMENTS)
from benchmark.store.record import RunRecord

METRIC = "top1"
MIN_BLOCKS = 3  # the fewest blocks a rank correlation across blocks is computed over
Curve = dict[int, float]  # block n -> value


def summarise(records: Iterable[RunRecord], key: str, ratio: bool, settings: Mapping) -> dict | None:
    """summary.json's entry of the readout measure ``key`` (``settings``: analysis.agreement);
    None when no base run took it."""
    records = list(records)
    entries = {unit(r): r.measures[key] for r in records if _read_out(r, key)}
    if not entries:
        return None
    combine = (lambda other, own: other / own if own else math.nan) if ratio else (lambda other, own: other - own)
    cheap = {role: {u: _curve(e, role, OWN, combine) for u, e in entries.items() if role in e}
             for role in ANSWERS_FOR}
    protocol = {series: _protocol_curves(records, series) for serieses in ANSWERS_FOR.values() for series in serieses}
    first = next(iter(entries.values()))
    return {
        "settings": {name: first.get(name) for name in ("pool", "train_images", "images")},
        "comparison": "ratio to own" if ratio else "difference from own",
        **{role: _by_layer(_curve(e, role) for e in entries.values() if role in e) for role in (OWN, *ANSWERS_FOR)},
        "cheap_generality": {role: _by_layer(curves.values()) for role, curves in cheap.items() if curves},
        "protocol_generality": {series: _by_layer(curves.values()) for series, curves in protocol.items() if curves},
        "agreement": {series: _agreement(cheap[role], protocol[series], ratio, settings,
                                         _unit_curves(role, cheap, protocol[series], entries))
                      for role, serieses in ANSWERS_FOR.items() for series in serieses
                      if protocol[series] and cheap[role]},
    }


def _unit_curves(role: str, cheap: dict[str, dict[tuple, Curve]], protocol: dict[tuple, Curve],
                 entries: dict[tuple, dict]) -> list[UnitCurves]:
    """Per unit, the protocol's curve and the predictors of it on the same blocks: the readout's
    cheap generality for ``role``, the depth-only null and the readout of the random-init network
    (except for the random control, which that readout answers for)."""
    curves = []
    for u in sorted(set(cheap[role]) & set(protocol), key=str):
        predictors = {READOUT: cheap[role][u], DEPTH_NULL: depth_null(len(entries[u][OWN]))}
        if role != RANDOM_INIT and u in cheap.get(RANDOM_INIT, {}):
            predictors[RANDOM_INIT_NULL] = cheap[RANDOM_INIT][u]
        curves.append(UnitCurves("this sweep", "/".join(map(str, u)), protocol[u], predictors))
    return curves


def _read_out(record: RunRecord, key: str) -> bool:
    """A base run's own record that read its blocks out."""
    return (record.ok and TREATMENTS[record.treatment].is_base and record.source_for is None
            and bool(record.measures.get(key)))


def _curve(entry: dict, role: str, reference: str | None = None,
           combine: Callable[[float, float], float] | None = None) -> Curve:
    values = entry[role]
    if reference is None:
        return dict(enumerate(values, start=1))
    combined = {n: combine(value, own) for n, (value, own) in enumerate(zip(values, entry[reference]), start=1)}
    return {n: value for n, value in combined.items() if math.isfinite(value)}  # own = 0: no ratio


def _protocol_curves(records: list[RunRecord], series: str) -> dict[tuple, Curve]:
    """Per unit, the protocol's generality of ``series``: its accuracy at n over the base's."""
    table = role_table([r for r in records if is_usable(r, METRIC)], METRIC)
    base = dict(lookup(table, BASE, 0))
    curves: dict[tuple, Curve] = {}
    for n in sorted(table.get(series, {})):
        for u, value in lookup(table, series, n):
            if base.get(u):
                curves.setdefault(u, {})[n] = value / base[u]
    return curves


def _by_layer(curves: Iterable[Curve]) -> dict[str, dict]:
    columns: dict[int, list[float]] = {}
    for curve in curves:
        for n, value in curve.items():
            if math.isfinite(value):
                columns.setdefault(n, []).append(value)
    return {str(n): describe(values) for n, values in sorted(columns.items())}


def _agreement(cheap: dict[tuple, Curve], protocol: dict[tuple, Curve], ratio: bool, settings: Mapping,
               unit_curves: list[UnitCurves]) -> dict:
    units = sorted(set(cheap) & set(protocol), key=str)
    per_unit = [_correlations(cheap[u], protocol[u]) for u in units]
    per_unit = [c for c in per_unit if c is not None]
    mean_cheap, mean_protocol = (_mean_curve([curves[u] for u in units]) for curves in (cheap, protocol))
    pooled = _correlations(mean_cheap, mean_protocol)
    return {
        "units": len(units),
        "per_unit": {name: _describe_correlations([c[name] for c in per_unit if c[name] is not None])
                     for name in ("spearman", "kendall")},
        "pooled": pooled,
        "largest_gap_points": _largest_gap(mean_cheap, mean_protocol) if ratio else None,
        "first_costly_n": ({"cheap": _first_below(mean_cheap, settings["threshold"]),
                            "protocol": _first_below(mean_protocol, settings["threshold"])} if ratio else None),
        "against_nulls": scored(unit_curves, settings["threshold"], ratio, int(settings["min_units"]),
                                int(settings["bootstrap"])) if unit_curves else None,
        "unit_curves": [u.to_json() for u in unit_curves],
    }


def _describe_correlations(values: list[float]) -> dict:
    """:func:`describe` of correlations, its 95% CI taken on Fisher's z = atanh(r) and mapped
    back, so that it stays inside [-1, 1]."""
    point = describe(values)
    if point["ci95"] is not None:
        z = describe(np.arctanh(np.clip(values, -1 + 1e-9, 1 - 1e-9)).tolist())
        point["ci95"] = np.tanh(z["ci95"]).tolist()
    return point


def _mean_curve(curves: list[Curve]) -> Curve:
    ns = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    return {n: float(np.mean([c[n] for c in curves])) for n in ns}


def _correlations(a: Curve, b: Curve) -> dict | None:
    ns = sorted(n for n in set(a) & set(b) if math.isfinite(a[n]) and math.isfinite(b[n]))
    if len(ns) < MIN_BLOCKS:
        return None
    x, y = [a[n] for n in ns], [b[n] for n in ns]
    if len(set(x)) == 1 or len(set(y)) == 1:  # a flat curve has no ranks to correlate
        return {"blocks": ns, "spearman": None, "kendall": None}
    return {"blocks": ns, "spearman": float(stats.spearmanr(x, y).statistic),
            "kendall": float(stats.kendalltau(x, y).statistic)}


def _largest_gap(cheap: Curve, protocol: Curve) -> dict | None:
    gaps = {n: 100.0 * abs(cheap[n] - protocol[n]) for n in set(cheap) & set(protocol)}
    if not gaps:
        return None
    n = max(gaps, key=gaps.get)
    return {"n": n, "points": gaps[n]}


def _first_below(curve: Curve, threshold: float) -> int | None:
    return next((n for n in sorted(curve) if curve[n] < threshold), None)


COLUMNS = ((OWN, "own base (cheap BnB)"), (OTHER, "other half's base (cheap AnB)"),
           (EXTERNAL_SOURCE, "external source (cheap XnB)"), (RANDOM_INIT, "random init (cheap RnB)"))


def markdown(name: str, entry: dict) -> str:
    """The measure's section of measures.md: its curves beside the protocol's, and agreement."""
    ns = sorted(int(n) for n in entry[OWN])
    cheap, protocol = entry["cheap_generality"], entry["protocol_generality"]
    columns = [(f"{label}", entry.get(role, {})) for role, label in COLUMNS]
    columns += [(f"cheap {role} ({entry['comparison']})", cheap.get(role, {})) for role in ANSWERS_FOR]
    columns += [(f"{series} / baseB", protocol[series]) for series in (TRANSFER, EXTERNAL_SOURCED, RANDOM_CONTROL)
                if series in protocol]
    columns = [(title, values) for title, values in columns if values]  # roles this sweep has
    lines = [f"## {name} (pool {entry['settings']['pool']}, {entry['settings']['train_images']} training and "
             f"{entry['settings']['images']} held-out images)", "",
             "| n | " + " | ".join(title for title, _ in columns) + " |",
             "| --- |" + " --- |" * len(columns)]
    lines += [f"| {n} | " + " | ".join(_point(curve.get(str(n))) for _, curve in columns) + " |" for n in ns]
    lines += ["", "| protocol curve | units | Spearman per unit | Kendall per unit | pooled Spearman "
              "| pooled Kendall | largest gap (points) | first costly n (cheap / protocol) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [_agreement_row(series, a) for series, a in entry["agreement"].items()]
    for series, a in entry["agreement"].items():
        if a.get("against_nulls"):
            lines += ["", f"Against the nulls, {series} / baseB, on the same blocks and units:", "",
                      *scores_table(a["against_nulls"])]
    return "\n".join(lines) + "\n"


def _agreement_row(series: str, a: dict) -> str:
    pooled = a["pooled"] or {}
    gap, first = a["largest_gap_points"], a["first_costly_n"]
    gap_text = "--" if gap is None else f"{gap['points']:.1f} at n={gap['n']}"
    first_text = "--" if first is None else f"{first['cheap']} / {first['protocol']}"
    return (f"| {series} / baseB | {a['units']} | {_point(a['per_unit']['spearman'])} | "
            f"{_point(a['per_unit']['kendall'])} | {_pooled(pooled, 'spearman')} | {_pooled(pooled, 'kendall')} | "
            f"{gap_text} | {first_text} |")


def _point(point: dict | None) -> str:
    if not point or point.get("mean") is None:
        return "--"
    ci = point.get("ci95")
    return f"{point['mean']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _pooled(pooled: dict, name: str) -> str:
    value = pooled.get(name)
    return "--" if value is None else f"{value:.2f}"


def plot(name: str, entry: dict, blocks: dict[str, str], stem: Path) -> tuple[Path, Path]:
    """``stem``.png / .pdf: the measure on each half's base by block, and its cheap generality
    beside the protocol's and the depth-only null (the generality of an accuracy ratio and of a
    difference are drawn on their own axes: only their ranks compare); the readout of the
    random-init network is the random-init null."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(11.0, 4.4), layout="constrained")
        FigureCanvasAgg(fig)
        raw, general = fig.subplots(1, 2)
        colors = {OWN: "black", OTHER: SERIES_BY_KEY[TRANSFER].color, RANDOM_INIT: SERIES_BY_KEY[RANDOM_CONTROL].color,
                  EXTERNAL_SOURCE: SERIES_BY_KEY[EXTERNAL_SOURCED].color}
        for role, label in COLUMNS:
            if entry.get(role):
                _draw_curve(raw, entry[role], colors[role], label)
        _decorate(raw, blocks, name, f"{name} of each block, on the target half")
        for role, curve in entry["cheap_generality"].items():
            _draw_curve(general, curve, colors[role], f"cheap: {role} ({entry['comparison']})")
        protocol_axis = general if entry["comparison"].startswith("ratio") else general.twinx()
        depth = depth_null(len(entry[OWN]))
        protocol_axis.plot(list(depth), list(depth.values()), color="0.6", ls=":", lw=1.2,
                           label="depth-only null, 1 - n/L")
        for series, curve in entry["protocol_generality"].items():
            _draw_curve(protocol_axis, curve, SERIES_BY_KEY[series].color, f"{series} / baseB (the protocol)", ls="--")
        _decorate(general, blocks, "generality", "The cheap answer beside the protocol's")
        if protocol_axis is not general:
            protocol_axis.set_ylabel("protocol generality")
            protocol_axis.legend(loc="lower right", frameon=False, fontsize=7)
        return write_figure(fig, stem, dpi=200)


def _draw_curve(ax: Axes, by_n: dict, color: str, label: str, ls: str = "-") -> None:
    ns = sorted(int(n) for n in by_n)
    points = [by_n[str(n)] for n in ns]
    ax.errorbar(ns, [p["mean"] for p in points], yerr=[ci_half_width(p) or 0.0 for p in points],
                color=color, marker="o", ms=4, ls=ls, lw=1.5, capsize=2.5, label=label)


def _decorate(ax: Axes, blocks: dict[str, str], ylabel: str, title: str) -> None:
    ns = [int(n) for n in blocks]
    ax.set_xticks(ns, [f"{n}\n{blocks[str(n)]}" for n in ns], fontsize=7)
    ax.set_xlabel("layer $n$")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", color="0.93", lw=0.6)
    ax.legend(loc="lower left", frameon=False, fontsize=7)
