"""How a finding's tests make its verdict (benchmark/protocol.py: holds, contradicted,
inconclusive), and how many seeds an inconclusive one would need.

A finding is a list of rows: a layer, or a statistic over layers, whose per-unit values are
tested one-sided against bounds, those of the finding (``claim``: each must reject for the
row to show it) and those of its opposite beyond the finding's margin (``opposite``: any one
rejecting shows the opposite). A claim about every row holds when each row's test rejects (an
intersection-union test) and is contradicted when its opposite is shown at some row (Holm);
a claim about some row the other way round.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmark.analysis.findings_table import format_interval, format_p
from benchmark.analysis.stats import describe, holm, one_sample_p, units_needed, welch_test
from benchmark.protocol import CONTRADICTED, HOLDS, INCONCLUSIVE

GREATER, LESS = "greater", "less"


@dataclass(frozen=True)
class Bound:
    """A one-sided test of a row's mean: above ``value`` (GREATER) or below it (LESS)."""

    value: float
    side: str

    def offset(self, mean: float) -> float:
        """How far ``mean`` lies beyond the bound, on the side the test looks for."""
        return mean - self.value if self.side == GREATER else self.value - mean


@dataclass
class Row:
    """One test of a finding: its estimate (``point``: mean, ci95, count), one unit's spread,
    the bounds whose tests all show the finding (``claim``) and those any of which shows its
    opposite (``opposite``), and ``test``: the p-value of a bound's test."""

    name: str
    point: dict
    spread: float | None
    claim: list[Bound]
    opposite: list[Bound]
    test: Callable[[Bound], float | None]
    p: float | None = field(init=False)
    p_opposite: list[float | None] = field(init=False)

    def __post_init__(self) -> None:
        claim = [self.test(b) for b in self.claim]
        self.p = None if None in claim else max(claim)
        self.p_opposite = [self.test(b) for b in self.opposite]

    @property
    def mean(self) -> float | None:
        return self.point.get("mean")

    def text(self) -> str:
        p_opposite = min((p for p in self.p_opposite if p is not None), default=None)
        return (f"{self.name}: {format_interval(self.mean, self.point.get('ci95'))}, p={format_p(self.p)}, "
                f"opposite p={format_p(p_opposite)}")


def one_sample_row(name: str, values: list[float], claim: list[Bound], opposite: list[Bound]) -> Row:
    """A row of per-unit values (differences, slopes) tested by one-sample t-tests."""
    point = describe(values)
    return Row(name, point, point["std"], claim, opposite,
               lambda b: one_sample_p(values, b.value, b.side))


def welch_row(name: str, a: list[float], b: list[float], claim: list[Bound], opposite: list[Bound]) -> Row:
    """A row comparing two unpaired groups (mean(a) - mean(b)), tested by Welch's t-tests; one
    unit's spread is that of a unit of each group (units counted per group)."""
    spreads = [describe(group)["std"] for group in (a, b)]
    spread = None if None in spreads else math.hypot(*spreads)
    return Row(name, welch_test(a, b), spread, claim, opposite,
               lambda bound: welch_test(a, b, bound.side, bound.value)["p"])


def _every_rejects(pvalues: list[float | None], alpha: float) -> bool:
    return bool(pvalues) and all(p is not None and p < alpha for p in pvalues)


def _some_rejects(pvalues: list[float | None], alpha: float) -> bool:
    return any(p is not None and p < alpha for p in holm(pvalues))


def verdict(rows: list[Row], every: bool, alpha: float) -> tuple[str, dict | None]:
    """A finding's verdict from its rows, and for ``inconclusive`` the decision the observed
    means and spreads point to: ``{"seeds": units a decision needs, "towards": verdict}``
    (None when no number of seeds would decide at the observed means). ``every``: the finding
    claims every row (contradicted at some row); otherwise some row (contradicted at every)."""
    claim = [p for r in rows for p in ([r.p] if every else [r.test(b) for b in r.claim])]
    opposite = [p for r in rows for p in r.p_opposite]
    holds, contradicted = ((_every_rejects(claim, alpha), _some_rejects(opposite, alpha)) if every
                           else (_some_rejects(claim, alpha), _every_rejects(opposite, alpha)))
    if holds or contradicted:
        return (HOLDS if holds else CONTRADICTED), None
    reach = ((_seeds(rows, "claim", every, alpha), HOLDS),
             (_seeds(rows, "opposite", not every, alpha), CONTRADICTED))
    decisions = [(seeds, towards) for seeds, towards in reach if seeds is not None]
    seeds, towards = min(decisions, default=(None, None))
    return INCONCLUSIVE, seeds and {"seeds": seeds, "towards": towards}


def _seeds(rows: list[Row], bounds: str, every: bool, alpha: float) -> int | None:
    """Units for the ``bounds`` ("claim" or "opposite") of the rows to reject: each of them
    (``every``), or the first of them, at Holm's first level (alpha / their number)."""
    tests = [(r, b) for r in rows for b in getattr(r, bounds) if r.mean is not None]
    level = alpha if every else alpha / max(len(tests), 1)
    needed = [units_needed(b.offset(r.mean), r.spread, level) for r, b in tests]
    if every:
        return None if not needed or None in needed else max(needed)
    return min((n for n in needed if n is not None), default=None)


def finding_p(rows: list[Row], every: bool) -> float | None:
    """The p-value of the finding's claim: its worst row's (every row) or its best Holm-adjusted
    one (some row)."""
    if every:
        return None if any(r.p is None for r in rows) else max((r.p for r in rows), default=None)
    return min((p for p in holm([r.p for r in rows]) if p is not None), default=None)
