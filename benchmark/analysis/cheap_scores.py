"""How well a cheap predictor of generality scores against the protocol's generality, beside
two nulls that a readout must beat before its agreement means anything:

- ``depth``: generality = 1 - n / L, a curve that knows only the depth. Generality curves fall
  with depth, so any decreasing sequence ranks the blocks of one curve as well as a monotone
  readout does; it ties every condition at the same block;
- ``random_init``: the same readout of a randomly initialised network of the same architecture
  (its other / own, as the runs read it for the random control), which knows the architecture
  and the target data but nothing the source learnt.

Cells are (condition, block): a condition is a sweep (a split, source, dataset or model), its
curves the means over its units (seed and target half). Each predictor gets, on the same cells:
the rank correlation across the blocks of each condition (averaged over conditions), across all
cells, the share of condition pairs it orders as the protocol does at the same block, the mean
absolute error in generality points, and how often the first block below the threshold (where
transfer starts to cost) is the protocol's, exactly and within one block (per unit); these two
for accuracy ratios only (``points``: LogME's differences have no points and no threshold).
Each score, and the readout's difference from each null, carries a 95% bootstrap interval over
splits (the unit of replication: a split's two directions go together; resampled within each
condition) when every condition has ``min_units`` of them; with fewer (3 seeds), the range of the
score with each split left out in turn, a plain statement of its spread, not an interval.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats

READOUT, DEPTH_NULL, RANDOM_INIT_NULL = "readout", "depth", "random_init"
NULLS = (DEPTH_NULL, RANDOM_INIT_NULL)
STATISTICS = ("within_curve_spearman", "all_cells_spearman", "same_block_order", "mae_points",
              "decision_exact", "decision_within_one")
BOOTSTRAP, LEAVE_ONE_OUT = "bootstrap over units", "leave-one-unit-out range"
MIN_BLOCKS = 3  # the fewest cells a rank correlation is computed over

Curve = dict[int, float]  # block n -> generality


@dataclass(frozen=True)
class UnitCurves:
    """One unit's protocol generality and each predictor's, by block n, in one condition.
    ``unit`` is ``EXPERIMENT.../SEED/TARGET``; its split (all but the target half) is the unit of
    replication: the two directions of a split are resampled and left out together."""

    condition: str
    unit: str
    protocol: Curve
    predictors: dict[str, Curve]

    @property
    def split(self) -> str:
        return self.unit.rsplit("/", 1)[0]

    def to_json(self) -> dict:
        return {"condition": self.condition, "unit": self.unit, "protocol": _str_keys(self.protocol),
                "predictors": {p: _str_keys(c) for p, c in self.predictors.items()}}

    @classmethod
    def from_json(cls, data: dict, condition: str | None = None) -> "UnitCurves":
        return cls(condition or data["condition"], data["unit"], _int_keys(data["protocol"]),
                   {p: _int_keys(c) for p, c in data["predictors"].items()})


def depth_null(depth: int) -> Curve:
    """generality = 1 - n / L for n = 1 .. L."""
    return {n: 1.0 - n / depth for n in range(1, depth + 1)}


def score(units: Sequence[UnitCurves], threshold: float, points: bool) -> dict[str, dict[str, float | None]]:
    """Every predictor's :data:`STATISTICS` on ``units`` (see the module docstring)."""
    conditions = sorted({u.condition for u in units})
    protocol = {c: _mean_curve([u.protocol for u in units if u.condition == c]) for c in conditions}
    result = {}
    for predictor in sorted({p for u in units for p in u.predictors}):
        means = {c: _mean_curve([u.predictors[predictor] for u in units if u.condition == c
                                 and predictor in u.predictors]) for c in conditions}
        cells = [(c, n, means[c][n], protocol[c][n]) for c in conditions for n in sorted(means[c])
                 if n in protocol[c]]
        within = [_spearman([x for c2, _, x, _ in cells if c2 == c], [y for c2, _, _, y in cells if c2 == c])
                  for c in conditions]
        within = [r for r in within if r is not None]
        decisions = [_decision(u.predictors[predictor], u.protocol, threshold) for u in units
                     if predictor in u.predictors and points]  # a threshold on a ratio of accuracies
        decisions = [d for d in decisions if d is not None]
        result[predictor] = {
            "within_curve_spearman": float(np.mean(within)) if within else None,
            "all_cells_spearman": _spearman([x for *_, x, _ in cells], [y for *_, y in cells]),
            "same_block_order": _order_agreement(cells),
            "mae_points": float(np.mean([100 * abs(x - y) for *_, x, y in cells])) if points and cells else None,
            "decision_exact": float(np.mean([d == 0 for d in decisions])) if decisions else None,
            "decision_within_one": float(np.mean([d <= 1 for d in decisions])) if decisions else None,
        }
    return result


def scored(units: Sequence[UnitCurves], threshold: float, points: bool, min_units: int, resamples: int
           ) -> dict:
    """:func:`score` with its intervals, and the readout's difference from each null."""
    full = score(units, threshold, points)
    by_condition: dict[str, dict[str, list[UnitCurves]]] = {}  # condition -> split -> its units
    for u in units:
        by_condition.setdefault(u.condition, {}).setdefault(u.split, []).append(u)
    fewest = min(len(splits) for splits in by_condition.values())
    if fewest >= min_units:
        method, draws = BOOTSTRAP, _bootstrap(by_condition, lambda us: score(us, threshold, points), resamples)
    else:
        splits = dict.fromkeys((u.condition, u.split) for u in units)
        method, draws = LEAVE_ONE_OUT, [score([u for u in units if (u.condition, u.split) != left],
                                              threshold, points)
                                        for left in splits if len(by_condition[left[0]]) > 1]
    spread = _percentiles if method == BOOTSTRAP else _range
    predictors = {p: {s: spread(full[p][s], [d[p][s] for d in draws]) for s in STATISTICS} for p in full}
    versus = {null: {s: spread(_minus(full[READOUT][s], full[null][s]),
                               [_minus(d[READOUT][s], d[null][s]) for d in draws]) for s in STATISTICS}
              for null in NULLS if null in full and READOUT in full}
    return {"units": len(units), "conditions": sorted(by_condition), "fewest_units": fewest, "method": method,
            "predictors": predictors, "readout_minus_null": versus}


def _bootstrap(by_condition: dict[str, dict[str, list[UnitCurves]]],
               statistic: Callable[[list[UnitCurves]], dict], resamples: int) -> list[dict]:
    """Splits resampled with replacement within each condition, each with all its units."""
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(resamples):
        picked = [u for splits in by_condition.values() for chosen in _drawn(list(splits.values()), rng)
                  for u in chosen]
        draws.append(statistic(picked))
    return draws


def _drawn(splits: list[list[UnitCurves]], rng: np.random.Generator) -> list[list[UnitCurves]]:
    return [splits[i] for i in rng.integers(0, len(splits), len(splits))]


def _percentiles(value: float | None, draws: list[float | None]) -> dict:
    finite = [d for d in draws if d is not None and math.isfinite(d)]
    ci = [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))] if finite else None
    return {"value": value, "ci95": ci}


def _range(value: float | None, draws: list[float | None]) -> dict:
    finite = [d for d in draws if d is not None and math.isfinite(d)]
    return {"value": value, "range": [min(finite), max(finite)] if finite else None}


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _mean_curve(curves: list[Curve]) -> Curve:
    ns = set.intersection(*(set(c) for c in curves)) if curves else set()
    return {n: float(np.mean([c[n] for c in curves])) for n in sorted(ns)}


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho, None with fewer than MIN_BLOCKS cells or a constant side (no ranks)."""
    if len(x) < MIN_BLOCKS or len(set(x)) == 1 or len(set(y)) == 1:
        return None
    return float(stats.spearmanr(x, y).statistic)


def _order_agreement(cells: list[tuple[str, int, float, float]]) -> float | None:
    """The share of pairs of conditions at the same block that the predictor orders as the
    protocol does (a tie on either side counts one half); None with one condition."""
    by_block: dict[int, list[tuple[float, float]]] = {}
    for _, n, x, y in cells:
        by_block.setdefault(n, []).append((x, y))
    pairs = [(a, b) for values in by_block.values() for a, b in combinations(values, 2)]
    if not pairs:
        return None
    tie = lambda u, v: math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-12)  # noqa: E731  (means of equal values)
    agree = [0.5 if tie(a[0], b[0]) or tie(a[1], b[1]) else float((a[0] > b[0]) == (a[1] > b[1])) for a, b in pairs]
    return float(np.mean(agree))


def _decision(predicted: Curve, protocol: Curve, threshold: float) -> int | None:
    """How many blocks apart the first block below ``threshold`` is on the two curves (over
    the blocks both have; never below counts as the block after the last)."""
    ns = sorted(set(predicted) & set(protocol))
    if not ns:
        return None
    first = [next((i for i, n in enumerate(ns) if curve[n] < threshold), len(ns)) for curve in (predicted, protocol)]
    return abs(first[0] - first[1])


def _str_keys(curve: Curve) -> dict[str, float]:
    return {str(n): v for n, v in curve.items()}


def _int_keys(curve: dict[str, float]) -> Curve:
    return {int(n): v for n, v in curve.items()}


PREDICTOR_NAMES = {READOUT: "the readout", DEPTH_NULL: "depth-only null (1 - n/L)",
                   RANDOM_INIT_NULL: "the readout of a random-init network"}
STATISTIC_NAMES = {"within_curve_spearman": "Spearman across blocks", "all_cells_spearman": "Spearman, all cells",
                   "same_block_order": "same-block order agreement", "mae_points": "mean abs. error (points)",
                   "decision_exact": "first costly block exact", "decision_within_one": "... within one block"}


def scores_table(result: dict) -> list[str]:
    """Markdown rows of a :func:`scored` result: each predictor's scores, then the readout minus
    each null, with their intervals; the columns every row leaves empty are left out."""
    rows = [(PREDICTOR_NAMES[p], result["predictors"][p]) for p in (READOUT, *NULLS) if p in result["predictors"]]
    rows += [(f"readout - {PREDICTOR_NAMES[null]}", values) for null, values in result["readout_minus_null"].items()]
    shown = [s for s in STATISTICS if any(values[s]["value"] is not None for _, values in rows)]
    lines = ["| predictor | " + " | ".join(STATISTIC_NAMES[s] for s in shown) + " |",
             "| --- |" + " --- |" * len(shown)]
    lines += [f"| {name} | " + " | ".join(_with_spread(values[s], s, name.startswith("readout -")) for s in shown)
              + " |" for name, values in rows]
    spread = ("95% bootstrap intervals over units" if result["method"] == BOOTSTRAP else
              f"too few units for an interval ({result['fewest_units']} in the smallest condition): in "
              "parentheses, the range of the score with each unit left out in turn")
    return lines + ["", f"{result['units']} units; {spread}."]


def _with_spread(point: dict, statistic: str, signed: bool) -> str:
    value = point["value"]
    if value is None:
        return "--"
    form = f"{'+' if signed else ''}.{1 if statistic == 'mae_points' else 2}f"
    if point.get("ci95"):
        low, high = point["ci95"]
        return f"{value:{form}} [{low:{form}}, {high:{form}}]"
    if point.get("range"):
        low, high = point["range"]
        return f"{value:{form}} ({low:{form}} to {high:{form}})"
    return f"{value:{form}}"
