"""The statistics of the aggregation against scipy (and Holm against its definition)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from benchmark.analysis.stats import (holm, one_sample_p, one_sided_power, paired, slope, unpaired_test,
                                     welch_test)

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


@pytest.mark.parametrize("offset, spread, units", [(1.0, 1.0, 8), (0.5, 1.0, 27), (3.0, 2.0, 5)])
def test_power_reaches_80_percent_at_g_power_units_and_not_one_fewer(offset, spread, units):
    # 8 and 27: G*Power's one-sided one-sample t at d = 1, 0.5, alpha 0.05, power 0.8
    power = one_sided_power(offset, spread, np.array([units - 1, units]), 0.05)
    assert power[1] >= 0.8 > power[0]


def test_power_of_a_mean_on_the_wrong_side_of_its_bound_stays_under_alpha():
    power = one_sided_power(-0.5, 1.0, np.arange(2, 1001), 0.05)
    assert power.max() < 0.05 and one_sided_power(0.0, 1.0, np.array([1000]), 0.05)[0] == pytest.approx(0.05)


def test_a_single_unit_against_a_group_is_the_prediction_t_test():
    group = [5.0, 6.0, 7.0, 6.5]
    result = unpaired_test([15.0], group, "greater", shift=2.0)
    se = np.std(group, ddof=1) * np.sqrt(1 + 1 / len(group))
    t = (15.0 - np.mean(group) - 2.0) / se
    assert result["test"] == "prediction" and result["p"] == pytest.approx(stats.t.sf(t, len(group) - 1))
    assert unpaired_test(group, [15.0])["mean"] == pytest.approx(np.mean(group) - 15.0)
    assert unpaired_test(group, group[:2])["test"] == "Welch" and unpaired_test([1.0], [2.0])["p"] is None
