"""The statistics of the aggregation against scipy (and Holm against its definition)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from benchmark.analysis.stats import holm, one_sample_p, paired, slope, units_needed, welch_test

A = [0.712, 0.698, 0.731, 0.705, 0.722]
B = [0.701, 0.690, 0.711, 0.700, 0.709]


def test_paired_is_scipy_ttest_rel_with_t_interval_of_the_differences():
    diffs = np.subtract(A, B)
    point = paired(diffs)
    assert point["mean"] == pytest.approx(diffs.mean())
    assert point["p"] == pytest.approx(stats.ttest_rel(A, B).pvalue)
    low, high = stats.ttest_rel(A, B).confidence_interval(0.95)
    assert point["ci95"] == pytest.approx([low, high])


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_one_sided_and_shifted_tests_are_scipy_ttest_1samp(alternative):
    diffs = np.subtract(A, B) * 100
    assert paired(diffs, -2.0, alternative)["p"] == pytest.approx(
        stats.ttest_1samp(diffs, -2.0, alternative=alternative).pvalue)
    assert one_sample_p(diffs, 1.0, alternative) == pytest.approx(
        stats.ttest_1samp(diffs, 1.0, alternative=alternative).pvalue)


def test_undefined_tests_are_none():
    assert paired([0.5])["p"] is None
    assert one_sample_p([0.3, 0.3, 0.3]) is None
    assert welch_test([0.5], B)["p"] is None


def test_welch_test_is_scipy_with_its_interval():
    reference = stats.ttest_ind(A, B[:4], equal_var=False)
    result = welch_test(A, B[:4])
    assert result["mean"] == pytest.approx(np.mean(A) - np.mean(B[:4]))
    assert result["p"] == pytest.approx(reference.pvalue)
    assert result["ci95"] == pytest.approx(list(reference.confidence_interval(0.95)))
    assert welch_test(A, B[:4], "greater")["p"] == pytest.approx(
        stats.ttest_ind(A, B[:4], equal_var=False, alternative="greater").pvalue)
    assert result["count"] == [5, 4]
    shifted = stats.ttest_ind(np.subtract(A, 0.01), B[:4], equal_var=False, alternative="less").pvalue
    assert welch_test(A, B[:4], "less", shift=0.01)["p"] == pytest.approx(shifted)


def test_holm_by_hand():
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([None, 0.2, 0.01])  # an undefined test is not counted: m = 2
    assert adjusted[0] is None and adjusted[1:] == pytest.approx([0.2, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1, monotone
    assert holm([]) == []


def test_slope_is_least_squares():
    xs, ys = [1, 2, 3, 4, 5], [0.1, -0.8, -2.9, -4.2, -6.5]
    assert slope(xs, ys) == pytest.approx(np.polyfit(xs, ys, 1)[0])


def _power(effect: float, units: int, alpha: float = 0.05) -> float:
    """Power of the one-sided one-sample t-test (noncentral t) at a standardised effect."""
    df = units - 1
    return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, effect * np.sqrt(units)))


@pytest.mark.parametrize("offset, spread, units", [(1.0, 1.0, 8), (0.5, 1.0, 27), (3.0, 2.0, 5)])
def test_units_needed_reach_80_percent_power_and_one_fewer_does_not(offset, spread, units):
    assert units_needed(offset, spread, 0.05) == units  # 8 and 27: G*Power's one-sided d = 1, 0.5
    assert _power(offset / spread, units) >= 0.8 > _power(offset / spread, units - 1)


def test_no_number_of_units_shows_a_mean_on_the_wrong_side_of_its_bound():
    assert units_needed(-0.5, 1.0, 0.05) is None and units_needed(0.0, 1.0, 0.05) is None
    assert units_needed(1.0, None, 0.05) is None and units_needed(1e-3, 1.0, 0.05) is None  # over 1000
