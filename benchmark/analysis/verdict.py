"""How a finding's tests make its verdict, and how many seeds an inconclusive one would need.

A finding's effect is estimated by rows (a layer's paired differences, or a statistic over
layers, per unit of replication). Its **regions** partition the possible true effects: the
finding beyond its margin (``holds``), in the finding's direction but under the margin (``real
but small``), absent or reversed (``contradicted``). Each region is a list of conditions, all of
which its tests must show; a condition is a family of one-sided t-tests (row, bound, side):

- ``every``: each test rejects (an intersection-union test: no multiplicity correction);
- otherwise ``some``: one rejects after Holm's correction across the family.

A region's conditions are built so that no two regions can be shown on the same data: a row
cannot lie significantly above a bound and below it (or below a lower one) at once. As units
grow, exactly one region is shown unless the true effect sits on a bound. Neither shown:
``inconclusive``, with the units a decision would need at 80% joint power.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from benchmark.analysis.findings_table import format_interval
from benchmark.analysis.stats import describe, holm, one_sample_p, one_sided_power, unpaired_test
from benchmark.protocol import CONTRADICTED, HOLDS, INCONCLUSIVE, SMALL

GREATER, LESS = "greater", "less"
POWER = 0.8          # the joint power an inconclusive finding's "seeds needed" aims at
MAX_UNITS = 1000     # beyond this, "more than MAX_UNITS"
DECIDED = (HOLDS, SMALL, CONTRADICTED)  # the regions a finding's tests can show


@dataclass
class Row:
    """One estimate of a finding: ``point`` (mean, ci95, count), one unit's ``spread`` (its
    standard deviation; the standard error is spread / sqrt(units)) and ``test``: the p-value of
    the one-sided test that the mean lies beyond a bound (bound, side)."""

    name: str
    point: dict
    spread: float | None
    test: Callable[[float, str], float | None]

    @property
    def mean(self) -> float | None:
        return self.point.get("mean")

    def text(self) -> str:
        return f"{self.name}: {format_interval(self.mean, self.point.get('ci95'))}"


def one_sample_row(name: str, values: Sequence[float]) -> Row:
    """A row of per-unit values (paired differences, slopes), tested by one-sample t-tests."""
    point = describe(values)
    return Row(name, point, point["std"], lambda bound, side: one_sample_p(point["values"], bound, side))


def two_group_row(name: str, a: Sequence[float], b: Sequence[float]) -> Row:
    """A row of mean(a) - mean(b) for two unpaired groups of units (stats.unpaired_test); one
    unit's spread is that of a unit of each group."""
    point = unpaired_test(a, b)
    spreads = [describe(group)["std"] for group in (a, b)]
    spread = math.hypot(*[s for s in spreads if s is not None]) if any(s is not None for s in spreads) else None
    return Row(name, point, spread, lambda bound, side: unpaired_test(a, b, side, bound)["p"])


@dataclass(frozen=True)
class Test:
    """One one-sided test: row's mean beyond ``bound`` on ``side``."""

    row: Row
    bound: float
    side: str

    def p(self) -> float | None:
        return self.row.test(self.bound, self.side)

    def offset(self, mean: float) -> float:
        """How far ``mean`` lies beyond the bound, on the test's side (negative: short of it)."""
        return mean - self.bound if self.side == GREATER else self.bound - mean

    def beyond(self, mean: float) -> bool:
        """Whether a mean lies beyond the bound (on the test's side)."""
        return self.offset(mean) > 0

    def reach(self) -> float:
        """How far the row's mean lies beyond the bound (-inf: no mean)."""
        return -math.inf if self.row.mean is None else self.offset(self.row.mean)

    def describe(self) -> str:
        return f"{'>' if self.side == GREATER else '<'} {self.bound:+.2f}"


@dataclass(frozen=True)
class Condition:
    """A family of tests that must all reject (``every``) or of which one must reject after
    Holm's correction (some)."""

    tests: tuple[Test, ...]
    every: bool

    def evidence(self, alpha: float) -> "Evidence":
        """Whether the condition is shown, and its deciding test with that test's p-value: for
        ``every`` the worst test (largest p), for some the best (smallest Holm-adjusted p)."""
        raw = [t.p() for t in self.tests]
        if self.every:
            worst = max(range(len(raw)), key=lambda i: math.inf if raw[i] is None else raw[i], default=None)
            p = None if worst is None else raw[worst]
            return Evidence(bool(raw) and None not in raw and p < alpha, self.tests[worst] if raw else None, p)
        adjusted = holm(raw)
        known = [i for i, p in enumerate(adjusted) if p is not None]
        best = min(known, key=lambda i: adjusted[i], default=None)
        if best is None:  # no test defined (a single unit): show the row farthest beyond its bound
            return Evidence(False, max(self.tests, key=Test.reach, default=None), None)
        return Evidence(adjusted[best] < alpha, self.tests[best], adjusted[best])

    def in_mean(self, shift: Callable[[Row], float]) -> bool:
        """Whether the row means (each moved by ``shift(row)``) lie beyond the bounds."""
        inside = [t.beyond(t.row.mean + shift(t.row)) for t in self.tests if t.row.mean is not None]
        return bool(inside) and (all(inside) if self.every else any(inside))

    def power(self, units: np.ndarray, alpha: float, shift: Callable[[Row], float]) -> np.ndarray:
        """Probability of showing the condition with ``units`` units each, if the moved means and
        the observed spreads are the truth: the product of the tests' powers (every), the best
        test's at Bonferroni's level (some); both err on the low side."""
        level = alpha if self.every else alpha / len(self.tests)
        powers = [_power(t, units, level, shift) for t in self.tests]
        if not powers:
            return np.zeros(units.shape)
        return np.prod(powers, axis=0) if self.every else np.max(powers, axis=0)


@dataclass(frozen=True)
class Evidence:
    shown: bool
    test: Test | None
    p: float | None


def every(rows: Sequence[Row], bound: float, side: str) -> Condition:
    """Each row's mean beyond ``bound`` on ``side``."""
    return Condition(tuple(Test(r, bound, side) for r in rows), True)


def some(rows: Sequence[Row], bound: float, side: str) -> Condition:
    """Some row's mean beyond ``bound`` on ``side`` (Holm across the rows)."""
    return Condition(tuple(Test(r, bound, side) for r in rows), False)


def some_of(*conditions: Condition) -> Condition:
    """One test of any of these conditions rejects (Holm across all their tests)."""
    return Condition(tuple(t for c in conditions for t in c.tests), False)


Regions = dict[str, list[Condition]]  # verdict -> the conditions that show it


def sized(rows: Sequence[Row], margin: float, negligible: float, at_every: bool) -> Regions:
    """Three regions of an effect whose finding is "larger than ``margin``" (rows oriented so).

    ``at_every``: the finding claims every row (its effect is the smallest row's); otherwise some
    row (the largest row's). Holds: beyond the margin; real but small: between ``negligible`` and
    the margin; contradicted: under ``negligible`` (including reversed)."""
    if at_every:
        return {HOLDS: [every(rows, margin, GREATER)],
                SMALL: [every(rows, negligible, GREATER), some(rows, margin, LESS)],
                CONTRADICTED: [some(rows, negligible, LESS)]}
    return {HOLDS: [some(rows, margin, GREATER)],
            SMALL: [some(rows, negligible, GREATER), every(rows, margin, LESS)],
            CONTRADICTED: [every(rows, negligible, LESS)]}


def at_least(rows: Sequence[Row], bound: float) -> Regions:
    """Two regions: every row above ``bound`` (holds) or some row below it (contradicted)."""
    return {HOLDS: [every(rows, bound, GREATER)], CONTRADICTED: [some(rows, bound, LESS)]}


def within(rows: Sequence[Row], margin: float) -> Regions:
    """Two regions: every row within +-``margin`` (holds: two one-sided tests per row) or some
    row outside it (contradicted: Holm across both sides of every row)."""
    inside = Condition(tuple(t for r in rows for t in (Test(r, -margin, GREATER), Test(r, margin, LESS))), True)
    return {HOLDS: [inside], CONTRADICTED: [some_of(some(rows, -margin, LESS), some(rows, margin, GREATER))]}


def both(first: Regions, second: Regions) -> Regions:
    """A finding with two parts, each with its own regions (at most one with a "real but small"
    region): holds when both hold, real but small when one holds and the other is real but
    small, contradicted when either is (Holm across both parts' tests)."""
    small = [first[a] + second[b] for a, b in ((HOLDS, SMALL), (SMALL, HOLDS)) if a in first and b in second]
    if len(small) > 1:
        raise ValueError("both(): at most one part may have a 'real but small' region")
    contradicted = some_of(*first[CONTRADICTED], *second[CONTRADICTED])
    return {HOLDS: first[HOLDS] + second[HOLDS], CONTRADICTED: [contradicted]} | (
        {SMALL: small[0]} if small else {})


@dataclass(frozen=True)
class Decision:
    """A verdict and the test shown beside it (its row's estimate and its own p-value); for an
    inconclusive one, the units a decision would need."""

    verdict: str
    test: Test | None
    p: float | None
    seeds: dict | None


def decide(regions: Regions, alpha: float) -> Decision:
    """The one region the tests show, or inconclusive. The test shown is the region's deciding
    test (its weakest: largest p); inconclusive shows the finding's own (holds) region's."""
    shown = []
    for verdict, conditions in regions.items():
        evidence = [c.evidence(alpha) for c in conditions]
        if all(e.shown for e in evidence):
            shown.append((verdict, max(evidence, key=lambda e: e.p)))
    if len(shown) > 1:  # cannot happen: the regions are built to exclude each other
        raise AssertionError(f"regions {[v for v, _ in shown]} shown on the same data")
    if shown:
        verdict, evidence = shown[0]
        return Decision(verdict, evidence.test, evidence.p, None)
    evidence = max((c.evidence(alpha) for c in regions[HOLDS]), key=lambda e: math.inf if e.p is None else e.p)
    return Decision(INCONCLUSIVE, evidence.test, evidence.p, seeds_needed(regions, alpha))


def seeds_needed(regions: Regions, alpha: float) -> dict | None:
    """Units for 80% joint power to show the region the estimates lie in ("towards"), taking the
    observed spreads as the truth: at the estimates, and across each row's 95% CI (every row at
    its lower end, every row at its upper end). None for an entry no number of units up to
    MAX_UNITS reaches (an effect on or near a bound); the range's upper end is None too when an
    end of the CI lies in another region (a bound lies inside the CI, where no number of units
    decides). None overall when no row has a spread."""
    rows = {id(t.row): t.row for c in (c for cs in regions.values() for c in cs) for t in c.tests}.values()
    if not any(r.spread for r in rows):
        return None
    scenarios = {"estimate": lambda r: 0.0, "low": lambda r: _ci_end(r, 0), "high": lambda r: _ci_end(r, 1)}
    at = {name: _units_towards(regions, alpha, shift) for name, shift in scenarios.items()}
    towards, units = at["estimate"]
    ends = [u if region == towards else None for region, u in (at["low"], at["high"])]
    return {"towards": towards, "seeds": units, "range": [_lowest(units, *ends), _highest(units, *ends)],
            "limit": MAX_UNITS}


def _ci_end(row: Row, end: int) -> float:
    ci = row.point.get("ci95")
    return 0.0 if not ci or row.mean is None else ci[end] - row.mean


def _lowest(*units: int | None) -> int | None:
    known = [u for u in units if u is not None]
    return min(known) if known else None


def _highest(*units: int | None) -> int | None:
    return None if None in units else max(units)


def _units_towards(regions: Regions, alpha: float, shift: Callable[[Row], float]) -> tuple[str | None, int | None]:
    """The region the moved means lie in and the fewest units that show it with 80% power."""
    inside = [v for v in DECIDED if v in regions and all(c.in_mean(shift) for c in regions[v])]
    if len(inside) != 1:
        return None, None
    def enough(units: int) -> bool:
        return float(np.prod([c.power(np.array([units]), alpha, shift) for c in regions[inside[0]]])) >= POWER

    if not enough(MAX_UNITS):
        return inside[0], None
    low, high = 1, MAX_UNITS  # bisection: each test's power grows with the units where it can reach 80%
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return inside[0], high


def _power(test: Test, units: np.ndarray, level: float, shift: Callable[[Row], float]) -> np.ndarray:
    """Power of the one-sided t-test of ``test`` with ``units`` units at ``level`` (noncentral t)."""
    row = test.row
    if row.mean is None or not row.spread:
        return np.zeros(units.shape)
    return one_sided_power(test.offset(row.mean + shift(row)), row.spread, units, level)


def rows_text(rows: Sequence[Row]) -> str:
    """Each row's estimate [95% CI]."""
    return "; ".join(r.text() for r in rows)
