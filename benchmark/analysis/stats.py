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
