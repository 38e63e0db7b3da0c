"""The six findings of Yosinski et al. 2014, each tested on a sweep with a verdict.

Runs pair by unit (experiment, seed and target half: the same class split and the same base
networks); the two directions of a split are averaged, so the unit of replication is the split
(benchmark/analysis/curve.py). Every per-layer comparison is a t-test on the per-split
differences, in points (percentage points of the metric). Each finding names its layers as
fractions of the depth L (``analysis.findings.*`` in conf/config.yaml), so they scale with the
model, and has a margin: the paper's meaningful size of its effect.

Each finding's possible true effects are partitioned into regions (benchmark/analysis/verdict.py):
``holds`` (beyond the margin), ``real but small`` (the finding's direction, under the margin),
``contradicted`` (under ``negligible`` x margin, or reversed); a finding stated as an equivalence
or a non-inferiority has no small region. ``REGIONS`` below is the table of them, printed by
``python -m benchmark.analysis --help`` and in the docs. No two regions can be shown on the same
data, so as seeds grow exactly one verdict is reached (an effect exactly on a bound aside).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from benchmark.analysis.curve import Table, is_usable, paired_differences, role, role_table
from benchmark.analysis.findings_table import format_interval, format_p
from benchmark.analysis.stats import describe, holm, slope
from benchmark.analysis.verdict import (GREATER, Regions, Row, Test, at_least, both, decide, one_sample_row,
                                         rows_text, sized, two_group_row, within)
from benchmark.errors import UserError
from benchmark.protocol import (ACCURACIES, BASE, BASES, CONTRADICTED, HOLDS, NOT_ENOUGH_RUNS, SMALL, RANDOM_CONTROL, SELFFER,
                                SELFFER_TUNED, SERIES_BY_KEY, TRANSFER, TRANSFER_TUNED, TREATMENTS,
                                run_label)
from benchmark.schema import type_error, validate
from benchmark.schema.analysis import FindingsSettings
from benchmark.schema.split import RANDOM_SPLIT
from benchmark.store.record import RunRecord

MIN_PAIRS = 2  # the fewest paired units a t-test (and its interval) is defined for


def findings_settings(config: Mapping) -> FindingsSettings:
    """Check ``analysis.findings`` against its schema and return it; :class:`UserError`
    naming the key, its value and what it should be."""
    try:
        node = OmegaConf.merge(OmegaConf.structured(FindingsSettings), dict(config))
    except ValidationError as error:
        raise type_error(f"analysis.findings.{error.key}", error.value, FindingsSettings) from None
    except ConfigKeyError as error:
        names = ", ".join(f.name for f in fields(FindingsSettings))
        raise UserError(f"analysis.findings.{error.key} is an unknown key; the keys are {names}") from None
    missing = sorted(OmegaConf.missing_keys(node))
    if missing:
        raise UserError(f"analysis.findings lacks {', '.join(missing)}; give every key (conf/config.yaml)")
    validate(node, "analysis.findings.")
    return OmegaConf.to_object(node)


def layer_ranges(depth: int, s: FindingsSettings) -> dict[str, list[int]]:
    """The layers each finding looks at, for a model of ``depth`` blocks."""
    layers = range(1, depth + 1)
    low, high = s.middle_layers
    at = lambda fraction: round(fraction * depth, 9)  # noqa: E731 (0.3 * 10 is 3, not 3.0000000000000004)
    return {
        "first": [n for n in layers if n <= max(1, math.floor(at(s.first_layers)))],
        "middle": [n for n in layers if at(low) < n <= at(high)],
        "all": list(layers),
        "top": [n for n in layers if n >= min(depth, math.ceil(at(s.top_layers)))],
        "random": [n for n in layers if n > at(s.random_from)],
    }


def points_scale(metric: str) -> float | None:
    """Factor from the metric to points; None for a metric the findings do not apply to."""
    return 100.0 if metric in ACCURACIES else None


def _layers_run(results: Iterable[RunRecord]) -> dict[bool, list[int]]:
    """{finetune: the layers n the fine-tuned (True) or frozen (False) runs were run at, whatever
    their status}: a sweep may fine-tune at some layers only (hydra.sweeper.finetuned_layers)."""
    ran: dict[bool, set[int]] = {False: set(), True: set()}
    for result in results:
        if role(result) not in BASES:
            ran[bool(result.finetune)].add(result.n)
    return {finetune: sorted(layers) for finetune, layers in ran.items()}


def test_findings(results: Iterable[RunRecord], metric: str, settings: FindingsSettings) -> dict:
    """Every finding's test on the usable runs: ``{"layers": ..., "depth": L, "units": the units of
    replication (splits) of the base runs, "findings": [...]}``."""
    results = list(results)
    ran = _layers_run(results)
    results = [r for r in results if is_usable(r, metric)]
    scale = points_scale(metric)
    depth = max((len(r.blocks or []) for r in results), default=0) or max(
        (r.n for r in results), default=0)
    if scale is None or not depth:
        reason = (f"the findings compare accuracies; metric {metric} is not one" if scale is None
                  else "no usable runs")
        return {"layers": {}, "findings": [], "skipped": reason}
    table = role_table(results, metric)
    context = _Context(table, scale, settings, ran)
    ranges = layer_ranges(depth, settings)
    findings = [_finding1(context, ranges), _finding2(context, ranges), _finding3(context, ranges),
                _finding4(context, ranges), _finding5(results, metric, context, ranges),
                _finding6(context, ranges)]
    units = len(paired_differences(table, BASE, BASE, 0))
    block = {"layers": ranges, "depth": depth, "units": units, "findings": findings,
             "stopping": STOPPING}
    return block | ({"note": _one_seed_note(results)} if units == 1 else {})


STOPPING = ("Decide the number of seeds before looking at the verdicts: their error rates (docs: "
            "calibration) hold for a number fixed in advance, and adding seeds until a verdict appears "
            "raises them. The tool supports fixed designs only, not sequential ones.")


def _one_seed_note(results: list[RunRecord]) -> str:
    """What one seed can say, and what more seeds cost."""
    minutes = sum(r.wall_s or 0.0 for r in results) / 60
    return (f"One seed: each finding's estimate is its single value, without an interval; verdicts "
            f"need {MIN_PAIRS} or more seeds (runs paired by seed). Run the sweep's command again with "
            f"seed=0,1,2 into the same sweep directory (the finished runs are skipped), e.g. "
            f"python -m benchmark -m experiment=demo seed=0,1,2; each further seed costs about what "
            f"this one did: {minutes:.0f} minutes of run time (its runs' times summed; less elapsed "
            f"where they run in parallel)")


@dataclass(frozen=True)
class _Context:
    table: Table
    scale: float
    s: FindingsSettings
    ran: Mapping[bool, list[int]]  # the layers the fine-tuned (True) and frozen runs were run at

    def differences(self, role: str, reference: str, n: int) -> dict[tuple, float]:
        """Per split: role - reference at layer n, in points."""
        return {u: d * self.scale for u, d in paired_differences(self.table, role, reference, n).items()}

    def per_layer(self, role: str, reference: str, layers: list[int],
                  sign: float = 1.0) -> tuple[list[Row], list[str]]:
        """A row per layer of the per-split differences ``sign * (role - reference)``, and the runs
        missing for a test (named by label)."""
        rows, missing = [], []
        for n in self.layers_of(role, layers) or layers:
            diffs = [sign * d for d in self.differences(role, reference, n).values()]
            if len(diffs) < MIN_PAIRS:
                missing.append(_missing(role, reference, n, len(diffs)))
            if diffs:
                rows.append(one_sample_row(f"n={n}", diffs))
        return rows, missing

    def layers_of(self, role: str, layers: list[int]) -> list[int]:
        """Those of ``layers`` that runs of the series' kind (fine-tuned or frozen; where none of
        its kind ran, of either) were run at; a series missing at one of them is missing runs there."""
        run_at = self.ran[SERIES_BY_KEY[role].finetune] or self.ran[False] + self.ran[True]
        return [n for n in layers if n in run_at]

    def negligible(self, margin: float) -> float:
        return self.s.negligible * margin


def _label(role: str, n: int) -> str:
    series = SERIES_BY_KEY[role]
    return run_label(series.treatment, 0 if TREATMENTS[series.treatment].is_base else n, series.finetune, "B")


def _missing(role: str, reference: str, n: int, pairs: int) -> str:
    return (f"{_label(role, n)} with {_label(reference, n)} ({pairs} split(s) with runs paired by seed "
            f"and target, {MIN_PAIRS} needed)")


def _finding(number: int, layers: list[int], test: str, regions: Regions, c: _Context, detail: str,
             missing: list[str]) -> dict:
    """The finding's record: its verdict, and the test shown beside it (estimate, CI and p of the
    same test on the same row)."""
    decision = decide(regions, c.s.alpha)
    shown: Test | None = decision.test
    point = shown.row.point if shown else {}
    return {"id": number, "statement": STATEMENTS[number], "layers": layers, "test": test,
            "row": shown.row.name if shown else None, "p_test": shown.describe() if shown else None,
            "estimate": point.get("mean"), "ci95": point.get("ci95"), "p": decision.p,
            "verdict": NOT_ENOUGH_RUNS if missing else decision.verdict,
            "decision": None if missing else decision.seeds, "detail": detail, "missing": missing}


def _interval(point: dict) -> str:
    return format_interval(point.get("mean"), point.get("ci95"))


# Each finding's regions (verdict.py), as the docs and ``--help`` print them: the effect, what
# shows each verdict, and the margin with its reason. {near}, {dip}, ...: the settings' margins;
# {near_0}, ...: negligible x margin.
REGIONS = {
    1: ("AnB - baseB at each first layer; its fall over the layers run (per split: least-squares slope "
        "x span)", "every first layer above -{near} and the fall beyond {near}",
        "every first layer above -{near}, the fall between {near_0} and {near}",
        "some first layer below -{near}, or the fall under {near_0}",
        "near_points {near}: AnB counts as near baseB within {near} points, and falls once it leaves that "
        "band (the paper: +0.3 at n=1, -8.3 at n=7)"),
    2: ("baseB - BnB at each middle layer", "some layer beyond {dip} (Holm)",
        "some layer beyond {dip_0} (Holm), every layer under {dip}", "every layer under {dip_0}",
        "dip_points {dip}: the paper's dip (BnB4, BnB5: 2.0 and 3.2 points below baseB)"),
    3: ("BnB+ - baseB at each layer", "every layer within +-{same} (two one-sided tests)", "--",
        "some layer outside +-{same} (Holm across both sides)",
        "same_points {same}: the 'near' scale; the paper's BnB+ lies within -0.7..+0.6 of baseB"),
    4: ("AnB+ - baseB averaged over the layers run, per split", "beyond {boost}",
        "between {boost_0} and {boost}", "under {boost_0} (including AnB+ below baseB)",
        "boost_points {boost}: the paper's boost is +1.7 (n=1-7), its fine-tuned cells uncertain by "
        "+-0.5-1 point (1-2 networks each)"),
    5: ("baseB - AnB averaged over the top layers: dissimilar split - random split", "beyond {gap}",
        "between {gap_0} and {gap}", "under {gap_0}",
        "gap_points {gap}: a difference of drops beyond the 'near' scale (the paper: 18.2 against 5.8 "
        "points at n=5-7)"),
    6: ("AnB - RnB at each layer from random_from", "every layer beyond {far}",
        "every layer beyond {far_0}, some under {far} (Holm)", "some layer under {far_0} (Holm)",
        "far_points {far}: 'far worse' (the paper's random layers fall to near chance from n=3)"),
}
REGION_COLUMNS = ("#", "effect (points)", HOLDS, SMALL, CONTRADICTED, "margin and why")


def regions_table(s: FindingsSettings) -> str:
    """The verdict regions of every finding as a Markdown table, at the settings' margins."""
    margins = {"near": s.near_points, "dip": s.dip_points, "same": s.same_points, "boost": s.boost_points,
               "gap": s.gap_points, "far": s.far_points}
    values = {**{k: f"{v:g}" for k, v in margins.items()},
              **{f"{k}_0": f"{s.negligible * v:g}" for k, v in margins.items()}}
    rows = [REGION_COLUMNS, tuple("---" for _ in REGION_COLUMNS)]
    rows += [(str(i), *(cell.format(**values) for cell in cells)) for i, cells in REGIONS.items()]
    note = (f"Tests one-sided at alpha {s.alpha:g} on the per-split values; 'every': each test rejects "
            f"(intersection-union), 'some': one rejects after Holm's correction. negligible = {s.negligible:g} x "
            f"the margin: under it an effect counts as none. An effect exactly on a bound is never decided.")
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n\n" + note


STATEMENTS = {
    1: "AnB stays near baseB in the first layers and falls as n grows",
    2: "BnB dips below baseB in the middle layers (co-adaptation)",
    3: "BnB+ stays at baseB",
    4: "AnB+ is above baseB (the fine-tuning boost)",
    5: "a dissimilar split falls more at the top layers than a random one",
    6: "random frozen layers do far worse than transferred ones",
}


def _finding1(c: _Context, ranges: dict[str, list[int]]) -> dict:
    near = c.s.near_points
    rows, missing = c.per_layer(TRANSFER, BASE, ranges["first"])
    layers = c.layers_of(TRANSFER, ranges["all"])
    span = max(layers, default=0) - min(layers, default=0)
    falls = [-s * span for s in _unit_slopes(c, layers)]
    if len(falls) < MIN_PAIRS:
        missing.append(f"AnB at 3 or more layers with baseB for {MIN_PAIRS} or more seeds "
                       f"({len(falls)} now)")
    fall = [one_sample_row(f"fall over n={min(layers, default=0)}..{max(layers, default=0)}", falls)] if falls else []
    regions = both(at_least(rows, -near), sized(fall, near, c.negligible(near), at_every=True))
    detail = (f"AnB - baseB at the first layers (near: above -{near:g} points): {rows_text(rows)}. "
              f"The fall of AnB - baseB over n per split (least-squares slope x the layers' span; holds "
              f"beyond {near:g} points, contradicted under {c.negligible(near):g}): {rows_text(fall)}")
    return _finding(1, ranges["all"], f"AnB - baseB > -{near:g} at n={_span(ranges['first'])}; its fall over n "
                    f"> {near:g}", regions, c, detail, missing)


def _unit_slopes(c: _Context, layers: list[int]) -> list[float]:
    """Per split, the least-squares slope of AnB - baseB (points) over the layers it has."""
    by_unit: dict[tuple, list[tuple[int, float]]] = {}
    for n in layers:
        for u, diff in c.differences(TRANSFER, BASE, n).items():
            by_unit.setdefault(u, []).append((n, diff))
    return [slope(*zip(*points)) for points in by_unit.values() if len(points) >= 3]


def _finding2(c: _Context, ranges: dict[str, list[int]]) -> dict:
    dip = c.s.dip_points
    rows, missing = c.per_layer(SELFFER, BASE, ranges["middle"], sign=-1.0)
    regions = sized(rows, dip, c.negligible(dip), at_every=False)
    detail = (f"baseB - BnB (the co-adaptation loss) per middle layer; holds beyond {dip:g} points at some "
              f"layer (Holm), contradicted under {c.negligible(dip):g} at every layer: {rows_text(rows)}")
    return _finding(2, ranges["middle"], f"baseB - BnB > {dip:g} at some n (Holm)", regions, c, detail, missing)


def _finding3(c: _Context, ranges: dict[str, list[int]]) -> dict:
    same = c.s.same_points
    layers = c.layers_of(SELFFER_TUNED, ranges["all"]) or ranges["all"]
    rows, missing = c.per_layer(SELFFER_TUNED, BASE, layers)
    detail = f"BnB+ - baseB, equivalence within +-{same:g} points (two one-sided tests): {rows_text(rows)}"
    return _finding(3, layers, f"BnB+ - baseB within +-{same:g} at every n (TOST)", within(rows, same), c,
                    detail, missing)


def _finding4(c: _Context, ranges: dict[str, list[int]]) -> dict:
    boost = c.s.boost_points
    layers = c.layers_of(TRANSFER_TUNED, ranges["all"])
    rows, _ = c.per_layer(TRANSFER_TUNED, BASE, layers)  # detail: a layer with one split has no test
    pooled = _layer_mean(c, TRANSFER_TUNED, BASE, layers)
    units = pooled[0].point["count"] if pooled else 0
    missing = [] if units >= MIN_PAIRS else [
        f"AnB+ with baseB at some n in {MIN_PAIRS} or more splits ({units} now)"]
    regions = sized(pooled, boost, c.negligible(boost), at_every=True)
    beside = _layer_mean(c, TRANSFER_TUNED, BASE, layers, less=SELFFER_TUNED)
    above = [r.name for r, p in zip(rows, holm([r.test(0.0, GREATER) for r in rows]))
             if p is not None and p < c.s.alpha]
    same = c.s.same_points
    not_below = [r.name for r in rows if (p := r.test(-same, GREATER)) is not None and p < c.s.alpha]
    detail = (f"AnB+ - baseB averaged over n={_span(layers)} per split (holds beyond {boost:g} points, "
              f"contradicted under {c.negligible(boost):g}): {rows_text(pooled)}. Per layer: {rows_text(rows)}; "
              f"significantly above baseB (one-sided, Holm) at {', '.join(above) or 'no n'}; not more than "
              f"{same:g} points below it (non-inferiority) at {', '.join(not_below) or 'no n'}. Beside it, "
              f"AnB+ - BnB+ averaged over the same layers (transfer's boost beyond a second training cycle; "
              f"two-sided p={format_p(beside[0].test(0.0, 'two-sided')) if beside else '--'}): "
              f"{rows_text(beside) or '--'}")
    return _finding(4, layers or ranges["all"], f"mean over n of AnB+ - baseB > {boost:g}", regions, c,
                    detail, missing)


def _layer_mean(c: _Context, role: str, reference: str, layers: list[int], less: str | None = None) -> list[Row]:
    """One row: per split, role - reference averaged over the layers it has (empty: no split);
    with ``less``, (role - reference) - (less - reference): two series compared through their own
    bases, so that runs on different target halves of a split still meet."""
    per_unit: dict[tuple, list[float]] = {}
    for n in layers:
        ahead = c.differences(role, reference, n)
        behind = c.differences(less, reference, n) if less else dict.fromkeys(ahead, 0.0)
        for u in sorted(ahead.keys() & behind.keys(), key=str):  # one order in every process
            per_unit.setdefault(u, []).append(ahead[u] - behind[u])
    means = [float(np.mean(per_unit[u])) for u in sorted(per_unit, key=str)]
    name = f"{role} - {less or reference}, mean over n"
    return [one_sample_row(name, means)] if means else []


def _finding5(results: list[RunRecord], metric: str, c: _Context, ranges: dict[str, list[int]]) -> dict:
    top = ranges["top"]
    drops = {RANDOM_SPLIT: [], "dissimilar": []}
    for split in sorted({r.split for r in results}, key=str):
        sub = _Context(role_table([r for r in results if r.split == split], metric), c.scale, c.s, c.ran)
        group = RANDOM_SPLIT if split == RANDOM_SPLIT else "dissimilar"
        drops[group] += _top_drops(sub, top)
    missing = [] if len(drops["dissimilar"]) + len(drops[RANDOM_SPLIT]) >= 3 and all(drops.values()) else [
        f"{MIN_PAIRS} or more splits of one kind and 1 or more of the other with AnB at "
        f"n={', '.join(map(str, top))} and baseB (now {len(drops['dissimilar'])} dissimilar, "
        f"{len(drops[RANDOM_SPLIT])} random); run both splits (e.g. split=random and split=family) and "
        "compare them: python -m benchmark.analysis DIR_RANDOM DIR_FAMILY"]
    gap = c.s.gap_points
    rows = [two_group_row("dissimilar - random", drops["dissimilar"], drops[RANDOM_SPLIT])] if all(
        drops.values()) else []
    detail = (f"baseB - AnB averaged over n={', '.join(map(str, top))} per split: dissimilar "
              f"{_interval(describe(drops['dissimilar']))}, random {_interval(describe(drops[RANDOM_SPLIT]))} "
              f"points; difference (Welch, or a single split against the other group's spread; holds beyond "
              f"{gap:g} points, contradicted under {c.negligible(gap):g}): {rows_text(rows) or '--'}")
    return _finding(5, top, f"drop at n={_span(top)}: dissimilar - random > {gap:g}",
                    sized(rows, gap, c.negligible(gap), at_every=True), c, detail, missing)


def _top_drops(c: _Context, top: list[int]) -> list[float]:
    """Per split, baseB - AnB (points) averaged over the top layers (splits with all of them)."""
    per_layer = [c.differences(TRANSFER, BASE, n) for n in c.layers_of(TRANSFER, top)] or [{}]
    units = set.intersection(*(set(d) for d in per_layer))
    return [-sum(d[u] for d in per_layer) / len(per_layer) for u in sorted(units, key=str)]


def _finding6(c: _Context, ranges: dict[str, list[int]]) -> dict:
    far = c.s.far_points
    rows, missing = c.per_layer(TRANSFER, RANDOM_CONTROL, ranges["random"])
    detail = (f"AnB - RnB per layer; holds beyond {far:g} points at every layer, contradicted under "
              f"{c.negligible(far):g} at some layer (Holm): {rows_text(rows)}")
    return _finding(6, ranges["random"], f"AnB - RnB > {far:g} at every n",
                    sized(rows, far, c.negligible(far), at_every=True), c, detail, missing)


def _span(layers: list[int]) -> str:
    if not layers:
        return "--"
    return f"{layers[0]}..{layers[-1]}" if layers == list(range(layers[0], layers[-1] + 1)) else \
        ",".join(map(str, layers))
