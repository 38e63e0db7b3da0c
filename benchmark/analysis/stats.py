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
from scipy.special import stdtr  # Student t's CDF as a plain ufunc: stdtr(df, t) = stats.t.cdf(t, df)

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
    """p-value of Student's one-sample t-test (``scipy.stats.ttest_1samp``'s, computed directly:
    the verdicts run thousands of them), None when undefined (fewer than two values, or no
    spread)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2 or float(np.std(x)) == 0.0:
        return None
    t = (float(x.mean()) - popmean) / (float(x.std(ddof=1)) / math.sqrt(x.size))
    df = x.size - 1
    p = {"greater": stdtr(df, -t), "less": stdtr(df, t)}.get(alternative, 2 * stdtr(df, -abs(t)))
    return float(p) if math.isfinite(p) else None


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


def unpaired_test(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided",
                  shift: float = 0.0) -> dict:
    """mean(a) - mean(b) for two unpaired groups of units, with its 95% CI and the p-value of that
    difference against ``shift``: Welch's t-test when each group has two or more units; when one
    group has a single unit, the prediction test of that unit against the other group (its
    spread taken as both groups', t with the other group's degrees of freedom: a single
    natural/man-made split against several random ones)."""
    sizes = sorted((len(a), len(b)))
    if sizes[0] != 1 or sizes[1] < 2:
        return welch_test(a, b, alternative, shift) | {"test": "Welch"}
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    many = y if x.size == 1 else x
    difference = float(x.mean() - y.mean())
    out = {"mean": difference, "ci95": None, "p": None, "count": [int(x.size), int(y.size)],
           "test": "prediction"}
    se = float(many.std(ddof=1)) * math.sqrt(1 + 1 / many.size)
    if se == 0:
        return out
    df = many.size - 1
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    t = (difference - shift) / se
    p = {"greater": stats.t.sf(t, df), "less": stats.t.cdf(t, df)}.get(alternative, 2 * stats.t.sf(abs(t), df))
    return out | {"ci95": [difference - half, difference + half], "p": float(p)}


def one_sided_power(offset: float, spread: float, units: np.ndarray, alpha: float) -> np.ndarray:
    """Power of a one-sided one-sample t-test at level ``alpha`` with ``units`` units (an array)
    when the true mean lies ``offset`` beyond the tested bound (on the side the test looks for)
    and one unit's standard deviation is ``spread``: the noncentral t distribution (G*Power's)."""
    df = units - 1
    return stats.nct.sf(stats.t.ppf(1 - alpha, df), df, offset * np.sqrt(units) / spread)


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
