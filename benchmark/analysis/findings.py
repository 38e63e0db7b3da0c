"""The six findings of Yosinski et al. 2014, each tested on a sweep with a verdict.

Runs pair by unit (experiment, seed and target half: the same class split and the same
base networks), so every per-layer comparison is a t-test on the per-unit differences,
in points (percentage points of the metric). Each finding names its layers as fractions
of the depth L (``analysis.findings.*`` in conf/config.yaml), so they scale with the model.

Each finding is a set of one-sided tests of the finding, and of its opposite beyond the
finding's margin; its verdict (benchmark/protocol.py): ``holds`` when its tests reject,
``contradicted`` when the tests of its opposite reject, ``inconclusive`` when neither, with
the seeds that would decide it if the observed means and spreads are the truth (80% power);
benchmark/analysis/verdict.py says how. A claim about every layer needs no multiplicity
correction (an intersection-union test); a claim about some layer is Holm-corrected.

1. AnB near baseB in the first layers, falling as n grows. Near: at every first layer a
   non-inferiority test (AnB - baseB > -near_points; opposite: AnB - baseB < -near_points).
   Falling: the least-squares slope of AnB - baseB over n is computed per unit and the
   slopes are tested against 0 (one-sided t); opposite: the fitted fall over the layers run
   is smaller than near_points (AnB would stay near baseB throughout). A per-unit slope uses
   every layer and keeps the pairing, where a rank test over 3 seeds (Page, Spearman) has
   too little resolution to reject at 5%.
2. BnB dips below baseB in the middle layers: baseB - BnB > 0 at some middle layer (Holm);
   opposite: baseB - BnB < same_points at every middle layer (BnB non-inferior to baseB).
3. BnB+ stays at baseB: equivalence (two one-sided tests, within +-same_points) at every
   layer; opposite: BnB+ outside +-same_points at some layer.
4. AnB+ is at or above baseB: non-inferiority (AnB+ - baseB > -same_points) at every layer;
   opposite: AnB+ below baseB by more than same_points at some layer.
5. A dissimilar split falls more at the top layers than a random one: the per-unit mean of
   baseB - AnB over the top layers, compared between the splits by Welch's t-test
   (one-sided; different splits have different base networks, so runs do not pair);
   opposite: the dissimilar split falls less than same_points more than the random one.
6. Random frozen layers do far worse: AnB - RnB > far_points at every layer from
   ``random_from`` on; opposite: AnB - RnB < far_points at some such layer.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from benchmark.analysis.curve import Table, is_usable, lookup, role_table
from benchmark.analysis.findings_table import format_interval, format_p
from benchmark.analysis.stats import describe, holm, slope
from benchmark.analysis.verdict import (GREATER, LESS, Bound, Row, finding_p, one_sample_row, verdict,
                                         welch_row)
from benchmark.errors import UserError
from benchmark.protocol import (ACCURACIES, BASE, BASES, NOT_ENOUGH_RUNS, RANDOM_CONTROL, SELFFER,
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


def test_findings(results: Iterable[RunRecord], metric: str, settings: FindingsSettings) -> dict:
    """Every finding's test on the usable runs: ``{"layers": ..., "depth": L, "units": the paired
    units (seed and target) of the base runs, "findings": [...]}``."""
    results = [r for r in results if is_usable(r, metric)]
    scale = points_scale(metric)
    depth = max((len(r.blocks or []) for r in results), default=0) or max(
        (r.n for r in results), default=0)
    if scale is None or not depth:
        reason = (f"the findings compare accuracies; metric {metric} is not one" if scale is None
                  else "no usable runs")
        return {"layers": {}, "findings": [], "skipped": reason}
    table = role_table(results, metric)
    ran = sorted({n for name, by_n in table.items() if name not in BASES for n in by_n})
    context = _Context(table, scale, settings, ran)
    ranges = layer_ranges(depth, settings)
    findings = [_finding1(context, ranges), _finding2(context, ranges), _finding3(context, ranges),
                _finding4(context, ranges), _finding5(results, metric, context, ranges),
                _finding6(context, ranges)]
    units = len({u for u, _ in lookup(table, BASE, 0)})
    block = {"layers": ranges, "depth": depth, "units": units, "findings": findings}
    return block | ({"note": _one_seed_note(results)} if units == 1 else {})


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
    ran: list[int]

    def differences(self, role: str, reference: str, n: int) -> dict[tuple, float]:
        """Per-unit role - reference at layer n, in points."""
        ref = dict(lookup(self.table, reference, n))
        return {u: (value - ref[u]) * self.scale for u, value in lookup(self.table, role, n) if u in ref}

    def per_layer(self, role: str, reference: str, layers: list[int], claim: list[Bound],
                  opposite: list[Bound], sign: float = 1.0) -> tuple[list[Row], list[str]]:
        """A row per layer of the paired differences ``sign * (role - reference)``, and the runs
        missing for a test (named by label)."""
        rows, missing = [], []
        for n in [n for n in layers if n in self.ran] or layers:
            diffs = [sign * d for d in self.differences(role, reference, n).values()]
            if len(diffs) < MIN_PAIRS:
                missing.append(_missing(role, reference, n, len(diffs)))
            if diffs:
                rows.append(one_sample_row(f"n={n}", diffs, claim, opposite))
        return rows, missing


def _label(role: str, n: int) -> str:
    series = SERIES_BY_KEY[role]
    return run_label(series.treatment, 0 if TREATMENTS[series.treatment].is_base else n, series.finetune, "B")


def _missing(role: str, reference: str, n: int, pairs: int) -> str:
    return (f"{_label(role, n)} with {_label(reference, n)} ({pairs} run(s) paired by seed and "
            f"target, {MIN_PAIRS} needed)")


def _finding(number: int, statement: str, layers: list[int], test: str, shown: Row | None,
             rows: list[Row], every: bool, c: _Context, detail: str, missing: list[str]) -> dict:
    """The finding's record; ``shown``: the row whose estimate stands for it (its p: the finding's)."""
    result, decision = verdict(rows, every, c.s.alpha)
    point = shown.point if shown else {}
    p = finding_p(rows, every) if shown else None
    return {"id": number, "statement": statement, "layers": layers, "test": test,
            "estimate": point.get("mean"), "ci95": point.get("ci95"), "p": p,
            "verdict": NOT_ENOUGH_RUNS if missing else result,
            "decision": None if missing else decision, "detail": detail, "missing": missing}


def _rows_text(rows: list[Row]) -> str:
    return "; ".join(r.text() for r in rows)


def _interval(point: dict) -> str:
    return format_interval(point.get("mean"), point.get("ci95"))


def _worst(rows: list[Row], key: Callable[[Row], float]) -> Row | None:
    return max(rows, key=key) if rows else None


def _finding1(c: _Context, ranges: dict[str, list[int]]) -> dict:
    near = c.s.near_points
    rows, missing = c.per_layer(TRANSFER, BASE, ranges["first"], [Bound(-near, GREATER)],
                                [Bound(-near, LESS)])
    layers = [n for n in ranges["all"] if n in c.ran]
    slopes = _unit_slopes(c, layers)
    if len(slopes) < MIN_PAIRS:
        missing.append(f"AnB at 3 or more layers with baseB for {MIN_PAIRS} or more seeds "
                       f"({len(slopes)} now)")
    span = max(layers, default=0) - min(layers, default=0)
    trend = one_sample_row("slope", slopes, [Bound(0.0, LESS)], [Bound(-near / (span or 1), GREATER)])
    detail = (f"AnB - baseB at the first layers (non-inferiority to -{near:g} points): {_rows_text(rows)}. "
              f"Slope of AnB - baseB over n per seed (n={len(slopes)}; opposite: a fall over "
              f"n={min(layers, default=0)}..{max(layers, default=0)} under {near:g} points), points per layer: "
              f"{trend.text()}")
    shown = trend if slopes else None
    return _finding(1, "AnB stays near baseB in the first layers and falls as n grows", ranges["all"],
                    "per-seed slope of AnB - baseB over n, t-test < 0; non-inferiority at the first layers",
                    shown, rows + ([trend] if slopes else []), True, c, detail, missing)


def _unit_slopes(c: _Context, layers: list[int]) -> list[float]:
    """Per unit, the least-squares slope of AnB - baseB (points) over the layers it has."""
    by_unit: dict[tuple, list[tuple[int, float]]] = {}
    for n in layers:
        for u, diff in c.differences(TRANSFER, BASE, n).items():
            by_unit.setdefault(u, []).append((n, diff))
    return [slope(*zip(*points)) for points in by_unit.values() if len(points) >= 3]


def _finding2(c: _Context, ranges: dict[str, list[int]]) -> dict:
    m = c.s.same_points
    rows, missing = c.per_layer(SELFFER, BASE, ranges["middle"], [Bound(0.0, GREATER)], [Bound(m, LESS)],
                                sign=-1.0)
    detail = (f"baseB - BnB (the co-adaptation loss), one-sided > 0, Holm across layers; opposite: "
              f"under {m:g} points at every layer: {_rows_text(rows)}")
    return _finding(2, "BnB dips below baseB in the middle layers (co-adaptation)", ranges["middle"],
                    "paired t of baseB - BnB > 0 per middle layer, Holm",
                    _worst(rows, key=lambda r: r.mean), rows, False, c, detail, missing)


def _finding3(c: _Context, ranges: dict[str, list[int]]) -> dict:
    m = c.s.same_points
    rows, missing = c.per_layer(SELFFER_TUNED, BASE, ranges["all"], [Bound(-m, GREATER), Bound(m, LESS)],
                                [Bound(-m, LESS), Bound(m, GREATER)])
    detail = f"BnB+ - baseB, equivalence within +-{m:g} points (two one-sided tests): {_rows_text(rows)}"
    return _finding(3, "BnB+ stays at baseB", ranges["all"],
                    f"paired equivalence test (TOST, +-{m:g} points) at every layer",
                    _worst(rows, key=lambda r: abs(r.mean)), rows, True, c, detail, missing)


def _finding4(c: _Context, ranges: dict[str, list[int]]) -> dict:
    m = c.s.same_points
    rows, missing = c.per_layer(TRANSFER_TUNED, BASE, ranges["all"], [Bound(-m, GREATER)], [Bound(-m, LESS)])
    above = [r.name for r, p in zip(rows, holm([r.test(Bound(0.0, GREATER)) for r in rows]))
             if p is not None and p < c.s.alpha]
    detail = (f"AnB+ - baseB (the fine-tuning boost), non-inferiority to -{m:g} points: {_rows_text(rows)}; "
              f"significantly above baseB (one-sided, Holm) at {', '.join(above) or 'no n'}")
    return _finding(4, "AnB+ is at or above baseB (the fine-tuning boost)", ranges["all"],
                    f"paired non-inferiority test (margin {m:g} points) at every layer",
                    _worst(rows, key=lambda r: -r.mean), rows, True, c, detail, missing)


def _finding5(results: list[RunRecord], metric: str, c: _Context, ranges: dict[str, list[int]]) -> dict:
    top = ranges["top"]
    drops = {RANDOM_SPLIT: [], "dissimilar": []}
    for split in sorted({r.split for r in results}, key=str):
        sub = _Context(role_table([r for r in results if r.split == split], metric), c.scale, c.s, c.ran)
        group = RANDOM_SPLIT if split == RANDOM_SPLIT else "dissimilar"
        drops[group] += _top_drops(sub, top)
    missing = [f"{group} split: AnB at n={', '.join(map(str, top))} with baseB for {MIN_PAIRS} or more "
               f"seeds ({len(values)} now)" for group, values in drops.items() if len(values) < MIN_PAIRS]
    if missing:
        missing.append("run both splits (e.g. split=random and split=family) and compare them: "
                       "python -m benchmark.analysis DIR_RANDOM DIR_FAMILY")
    m = c.s.same_points
    rows = [welch_row("dissimilar - random", drops["dissimilar"], drops[RANDOM_SPLIT],
                       [Bound(0.0, GREATER)], [Bound(m, LESS)])] if all(drops.values()) else []
    detail = (f"baseB - AnB averaged over n={', '.join(map(str, top))}: dissimilar "
              f"{_interval(describe(drops['dissimilar']))}, random {_interval(describe(drops[RANDOM_SPLIT]))} "
              f"points; difference (Welch, one-sided > 0; opposite: under {m:g} points): "
              f"{_rows_text(rows) or '--'}")
    return _finding(5, "a dissimilar split falls more at the top layers than a random one", top,
                    "Welch t of the per-seed top-layer drop, dissimilar > random",
                    rows[0] if rows else None, rows, True, c, detail, missing)


def _top_drops(c: _Context, top: list[int]) -> list[float]:
    """Per unit, baseB - AnB (points) averaged over the top layers (units with all of them)."""
    per_layer = [c.differences(TRANSFER, BASE, n) for n in top if n in c.ran] or [{}]
    units = set.intersection(*(set(d) for d in per_layer))
    return [-sum(d[u] for d in per_layer) / len(per_layer) for u in sorted(units, key=str)]


def _finding6(c: _Context, ranges: dict[str, list[int]]) -> dict:
    far = c.s.far_points
    rows, missing = c.per_layer(TRANSFER, RANDOM_CONTROL, ranges["random"], [Bound(far, GREATER)],
                                [Bound(far, LESS)])
    detail = f"AnB - RnB, one-sided against {far:g} points: {_rows_text(rows)}"
    return _finding(6, "random frozen layers do far worse than transferred ones", ranges["random"],
                    f"paired t of AnB - RnB > {far:g} points at every layer",
                    _worst(rows, key=lambda r: -r.mean), rows, True, c, detail, missing)
