"""Descriptive statistics with Student-t confidence intervals, and Welch's t-test.

Undefined quantities (the spread of a single value, a test with fewer than two
values in a group) are ``None``, so they serialise as JSON ``null``, never NaN.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def describe(values: Sequence[float]) -> dict:
    """Mean, sample std (ddof=1), count, 95% Student-t CI ``[low, high]`` and the values."""
    x = np.asarray(values, dtype=float)
    count = int(x.size)
    mean = float(x.mean()) if count else None
    std = float(x.std(ddof=1)) if count > 1 else None
    ci = None
    if std is not None:
        half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, count - 1)) * std / math.sqrt(count)
        ci = [mean - half, mean + half]
    return {"mean": mean, "std": std, "count": count, "ci95": ci, "values": x.tolist()}


def ci_half_width(point: dict) -> float | None:
    """Half the width of a :func:`describe` CI, or None when it is undefined."""
    ci = point.get("ci95")
    return None if ci is None else (ci[1] - ci[0]) / 2


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test (unequal variances), None when undefined."""
    if len(a) < 2 or len(b) < 2:
        return None
    with warnings.catch_warnings():
        # Constant groups give NaN plus a precision warning; NaN becomes None below.
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return p if math.isfinite(p) else None


def paired(differences: Sequence[float], shift: float = 0.0, alternative: str = "two-sided") -> dict:
    """Per-unit differences (e.g. AnB - baseB of each seed and target): :func:`describe`
    plus the p-value of the paired t-test of their mean against ``shift``.

    With ``shift`` 0 this is ``scipy.stats.ttest_rel`` on the two paired samples;
    ``alternative`` "greater" tests mean > shift (a non-inferiority test when ``shift`` is
    minus a margin), "less" mean < shift.
    """
    point = describe(differences)
    point["p"] = one_sample_p(point["values"], shift, alternative)
    return point


def one_sample_p(values: Sequence[float], popmean: float = 0.0,
                 alternative: str = "two-sided") -> float | None:
    """p-value of Student's one-sample t-test, None when undefined (fewer than two values,
    or no spread)."""
    if len(values) < 2 or float(np.std(values)) == 0.0:
        return None
    with warnings.catch_warnings():  # nearly constant values: scipy warns, the p-value stands
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_1samp(values, popmean, alternative=alternative).pvalue)
    return p if math.isfinite(p) else None


def welch_test(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided",
               shift: float = 0.0) -> dict:
    """Unpaired comparison of two groups: difference of means with its Welch 95% CI and
    Welch's p-value of that difference against ``shift`` (``alternative`` "greater":
    mean(a) - mean(b) > shift)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = {"mean": float(x.mean() - y.mean()) if x.size and y.size else None, "ci95": None,
           "p": None, "count": [int(x.size), int(y.size)]}
    if x.size < 2 or y.size < 2 or (x.var() == 0 and y.var() == 0):
        return out
    result = stats.ttest_ind(x, y, equal_var=False, alternative="two-sided")
    low, high = result.confidence_interval(CONFIDENCE)
    p = float(stats.ttest_ind(x - shift, y, equal_var=False, alternative=alternative).pvalue)
    return out | {"ci95": [float(low), float(high)], "p": p}


def units_needed(offset: float, spread: float | None, alpha: float, power: float = 0.8,
                 limit: int = 1000) -> int | None:
    """The fewest units (seeds, paired with their base) at which a one-sided t-test rejects at
    ``alpha`` with probability ``power``, taking the observed mean and spread as the truth:
    ``offset`` is how far the mean lies beyond the tested bound (on the side the test looks
    for), ``spread`` one unit's standard deviation (standard error = spread / sqrt(units)).
    None when the mean is not beyond the bound, the spread is unknown, or more than ``limit``
    units would be needed."""
    if spread is None or offset <= 0:
        return None
    for units in range(2, limit + 1):
        df = units - 1
        if offset * math.sqrt(units) >= spread * (stats.t.ppf(1 - alpha, df) + stats.t.ppf(power, df)):
            return units
    return None


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None and does not count as a test).

    Sorted ascending, the i-th of m p-values (0-based) becomes max over j <= i of
    min(1, (m - j) p_(j)): the step-down adjustment, as statsmodels' ``multipletests``
    with ``method="holm"`` computes it.
    """
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, index) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[index] = running
    return adjusted


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over xs (``scipy.stats.linregress``)."""
    return float(stats.linregress(xs, ys).slope)
