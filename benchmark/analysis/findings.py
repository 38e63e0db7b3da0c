"""The six findings of Yosinski et al. 2014, each tested on a sweep with a verdict.

Runs pair by unit (experiment, seed and target half: the same class split and the same
base networks), so every per-layer comparison is a t-test on the per-unit differences,
in points (percentage points of the metric). Each finding names its layers as fractions
of the depth L (``analysis.findings.*`` in conf/config.yaml), so they scale with the model.

How each verdict is reached, and why:

1. AnB near baseB in the first layers, falling as n grows. Near: at every first layer a
   non-inferiority test (AnB - baseB > -near_points). Falling: the least-squares slope of
   AnB - baseB over n is computed per unit and the slopes are tested against 0 (one-sided
   t). A per-unit slope uses every layer and keeps the pairing, where a rank test over
   3 seeds (Page, Spearman) has too little resolution to reject at 5%.
2. BnB dips below baseB in the middle layers: one-sided paired tests of baseB - BnB > 0
   at each middle layer, Holm-corrected across them (the claim is "at some layer").
3. BnB+ stays at baseB: an equivalence test (two one-sided tests, within
   +-same_points) at every layer. 4. AnB+ is at or above baseB: a non-inferiority test
   (AnB+ - baseB > -same_points) at every layer. 6. Random frozen layers do far worse:
   AnB - RnB > far_points at every layer from ``random_from`` on. A claim about every
   layer holds only when each layer's test rejects (an intersection-union test), which
   needs no multiple-comparison correction.
5. A dissimilar split falls more at the top layers than a random one: the per-unit mean of
   baseB - AnB over the top layers, compared between the splits by Welch's t-test
   (one-sided): different splits have different base networks, so runs do not pair.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields

from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from benchmark.analysis.curve import Table, is_usable, lookup, role_table
from benchmark.analysis.findings_table import format_interval, format_p
from benchmark.analysis.stats import describe, holm, one_sample_p, paired, slope, welch_test
from benchmark.errors import UserError
from benchmark.protocol import (BASE, BASES, RANDOM_CONTROL, SELFFER, SELFFER_TUNED, SERIES_BY_KEY,
                                TRANSFER, TRANSFER_TUNED, TREATMENTS, run_label)
from benchmark.schema import type_error, validate
from benchmark.schema.analysis import FindingsSettings
from benchmark.schema.split import RANDOM_SPLIT
from benchmark.store.record import RunRecord

HOLDS, FAILS, MISSING = "holds", "does not hold", "not enough runs"
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
    return 100.0 if metric.startswith("top") else None


def test_findings(results: Iterable[RunRecord], metric: str, settings: FindingsSettings) -> dict:
    """Every finding's test on the usable runs: ``{"layers": ..., "findings": [...]}``."""
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
    return {"layers": ranges, "depth": depth, "findings": findings}


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

    def per_layer(self, role: str, reference: str, layers: list[int], sign: float = 1.0,
                  test: Callable[[list[float]], float | None] = lambda d: one_sample_p(d)
                  ) -> tuple[list[dict], list[str]]:
        """Per-layer paired differences ``sign * (role - reference)`` with ``test``'s p, and
        the runs missing for a test (named by label)."""
        rows, missing = [], []
        present = [n for n in layers if n in self.ran] or layers
        for n in present:
            diffs = [sign * d for d in self.differences(role, reference, n).values()]
            if len(diffs) < MIN_PAIRS:
                missing.append(_missing(role, reference, n, len(diffs)))
                continue
            point = describe(diffs)
            rows.append({"n": n, "mean": point["mean"], "ci95": point["ci95"], "count": point["count"],
                         "p": test(diffs)})
        return rows, missing


def _label(role: str, n: int) -> str:
    series = SERIES_BY_KEY[role]
    return run_label(series.treatment, 0 if TREATMENTS[series.treatment].is_base else n, series.finetune, "B")


def _missing(role: str, reference: str, n: int, pairs: int) -> str:
    return (f"{_label(role, n)} with {_label(reference, n)} ({pairs} run(s) paired by seed and "
            f"target, {MIN_PAIRS} needed)")


def _finding(number: int, statement: str, layers: list[int], test: str, estimate: dict | None,
             verdict: str, detail: str, missing: list[str] | None = None) -> dict:
    estimate = estimate or {}
    return {"id": number, "statement": statement, "layers": layers, "test": test,
            "estimate": estimate.get("mean"), "ci95": estimate.get("ci95"), "p": estimate.get("p"),
            "verdict": MISSING if missing else verdict, "detail": detail, "missing": missing or []}


def _verdict(ok: bool) -> str:
    return HOLDS if ok else FAILS


def _rows_text(rows: list[dict], p_key: str = "p") -> str:
    return "; ".join(f"n={r['n']}: {_interval(r)}, p={format_p(r.get(p_key))}" for r in rows)


def _interval(point: dict) -> str:
    return format_interval(point.get("mean"), point.get("ci95"))


def _all_reject(rows: list[dict], alpha: float) -> bool:
    return bool(rows) and all(r["p"] is not None and r["p"] < alpha for r in rows)


def _worst(rows: list[dict], key: Callable[[dict], float]) -> dict | None:
    return max(rows, key=key) if rows else None


def _finding1(c: _Context, ranges: dict[str, list[int]]) -> dict:
    near = c.s.near_points
    rows, missing = c.per_layer(TRANSFER, BASE, ranges["first"],
                                test=lambda d: one_sample_p(d, -near, "greater"))
    slopes = _unit_slopes(c, [n for n in ranges["all"] if n in c.ran])
    if len(slopes) < MIN_PAIRS:
        missing.append(f"AnB at 3 or more layers with baseB for {MIN_PAIRS} or more seeds "
                       f"({len(slopes)} now)")
    trend = paired(slopes, 0.0, "less")
    ok = _all_reject(rows, c.s.alpha) and trend["p"] is not None and trend["p"] < c.s.alpha
    detail = (f"AnB - baseB at the first layers (non-inferiority to -{near:g} points): {_rows_text(rows)}. "
              f"Slope of AnB - baseB over n per seed: {_interval(trend)} points per layer "
              f"(n={len(slopes)}), one-sided p={format_p(trend['p'])}")
    return _finding(1, "AnB stays near baseB in the first layers and falls as n grows",
                    ranges["all"],
                    "per-seed slope of AnB - baseB over n, t-test < 0; non-inferiority at the first layers",
                    trend, _verdict(ok), detail, missing)


def _unit_slopes(c: _Context, layers: list[int]) -> list[float]:
    """Per unit, the least-squares slope of AnB - baseB (points) over the layers it has."""
    by_unit: dict[tuple, list[tuple[int, float]]] = {}
    for n in layers:
        for unit, diff in c.differences(TRANSFER, BASE, n).items():
            by_unit.setdefault(unit, []).append((n, diff))
    return [slope(*zip(*points)) for points in by_unit.values() if len(points) >= 3]


def _finding2(c: _Context, ranges: dict[str, list[int]]) -> dict:
    rows, missing = c.per_layer(SELFFER, BASE, ranges["middle"], sign=-1.0,
                                test=lambda d: one_sample_p(d, 0.0, "greater"))
    for row, adjusted in zip(rows, holm([r["p"] for r in rows])):
        row["p_holm"] = adjusted
    best = _worst(rows, key=lambda r: r["mean"])
    ok = any(r["p_holm"] is not None and r["p_holm"] < c.s.alpha for r in rows)
    detail = f"baseB - BnB (the co-adaptation loss), one-sided, Holm across layers: {_rows_text(rows, 'p_holm')}"
    estimate = best and {**best, "p": best["p_holm"]}
    return _finding(2, "BnB dips below baseB in the middle layers (co-adaptation)", ranges["middle"],
                    "paired t of baseB - BnB > 0 per middle layer, Holm", estimate, _verdict(ok),
                    detail, missing)


def _finding3(c: _Context, ranges: dict[str, list[int]]) -> dict:
    m = c.s.same_points
    rows, missing = c.per_layer(SELFFER_TUNED, BASE, ranges["all"], test=lambda d: _tost(d, m))
    worst = _worst(rows, key=lambda r: abs(r["mean"]))
    estimate = worst and {**worst, "p": max((r["p"] for r in rows if r["p"] is not None), default=None)}
    detail = f"BnB+ - baseB, equivalence within +-{m:g} points (two one-sided tests): {_rows_text(rows)}"
    return _finding(3, "BnB+ stays at baseB", ranges["all"],
                    f"paired equivalence test (TOST, +-{m:g} points) at every layer", estimate,
                    _verdict(_all_reject(rows, c.s.alpha)), detail, missing)


def _tost(differences: list[float], margin: float) -> float | None:
    low = one_sample_p(differences, -margin, "greater")
    high = one_sample_p(differences, margin, "less")
    return None if low is None or high is None else max(low, high)


def _finding4(c: _Context, ranges: dict[str, list[int]]) -> dict:
    m = c.s.same_points
    rows, missing = c.per_layer(TRANSFER_TUNED, BASE, ranges["all"],
                                test=lambda d: one_sample_p(d, -m, "greater"))
    worst = _worst(rows, key=lambda r: -r["mean"])
    estimate = worst and {**worst, "p": max((r["p"] for r in rows if r["p"] is not None), default=None)}
    above = [r["n"] for r, p in zip(rows, holm([one_sample_p(_diffs(c, TRANSFER_TUNED, r["n"]), 0.0, "greater")
                                                   for r in rows])) if p is not None and p < c.s.alpha]
    detail = (f"AnB+ - baseB (the fine-tuning boost), non-inferiority to -{m:g} points: {_rows_text(rows)}; "
              f"significantly above baseB (one-sided, Holm) at n={above or 'none'}")
    return _finding(4, "AnB+ is at or above baseB (the fine-tuning boost)", ranges["all"],
                    f"paired non-inferiority test (margin {m:g} points) at every layer", estimate,
                    _verdict(_all_reject(rows, c.s.alpha)), detail, missing)


def _diffs(c: _Context, role: str, n: int) -> list[float]:
    return list(c.differences(role, BASE, n).values())


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
    test = welch_test(drops["dissimilar"], drops[RANDOM_SPLIT], alternative="greater")
    ok = test["p"] is not None and test["p"] < c.s.alpha and test["mean"] > 0
    detail = (f"baseB - AnB averaged over n={', '.join(map(str, top))}: dissimilar "
              f"{_interval(describe(drops['dissimilar']))}, random {_interval(describe(drops[RANDOM_SPLIT]))} "
              f"points; difference {_interval(test)}, Welch one-sided p={format_p(test['p'])}")
    return _finding(5, "a dissimilar split falls more at the top layers than a random one", top,
                    "Welch t of the per-seed top-layer drop, dissimilar > random", test,
                    _verdict(ok), detail, missing)


def _top_drops(c: _Context, top: list[int]) -> list[float]:
    """Per unit, baseB - AnB (points) averaged over the top layers (units with all of them)."""
    per_layer = [c.differences(TRANSFER, BASE, n) for n in top if n in c.ran] or [{}]
    units = set.intersection(*(set(d) for d in per_layer))
    return [-sum(d[u] for d in per_layer) / len(per_layer) for u in sorted(units, key=str)]


def _finding6(c: _Context, ranges: dict[str, list[int]]) -> dict:
    far = c.s.far_points
    rows, missing = c.per_layer(TRANSFER, RANDOM_CONTROL, ranges["random"],
                                test=lambda d: one_sample_p(d, far, "greater"))
    worst = _worst(rows, key=lambda r: -r["mean"])
    estimate = worst and {**worst, "p": max((r["p"] for r in rows if r["p"] is not None), default=None)}
    detail = f"AnB - RnB, one-sided against {far:g} points: {_rows_text(rows)}"
    return _finding(6, "random frozen layers do far worse than transferred ones", ranges["random"],
                    f"paired t of AnB - RnB > {far:g} points at every layer", estimate,
                    _verdict(_all_reject(rows, c.s.alpha)), detail, missing)
