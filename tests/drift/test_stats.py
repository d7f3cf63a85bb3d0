"""The statistics agree with scipy's reference implementations on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.spatial import distance

from rxcast.drift import stats
from rxcast.model.profile import NumericProfile

TOLERANCE = 1e-9


def _samples():
    rng = np.random.default_rng(11)
    yield rng.normal(size=800), rng.normal(0.2, 1.3, size=500)
    yield rng.poisson(3, 1000).astype(float), rng.poisson(3.4, 700).astype(float)  # heavy ties
    yield rng.exponential(size=50), rng.exponential(2.0, size=2000)
    yield np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0])
    yield rng.normal(size=300), rng.normal(size=300) + 100.0  # disjoint
    yield np.arange(10.0), np.arange(10.0)  # identical


@pytest.mark.parametrize("reference, current", list(_samples()))
def test_ks_statistic_and_asymptotic_p_value_match_scipy(reference, current):
    expected = scipy_stats.ks_2samp(reference, current, method="asymp")
    statistic = stats.ks_statistic(np.sort(reference), np.sort(current))
    assert statistic == pytest.approx(expected.statistic, abs=TOLERANCE)
    p = stats.ks_p_value(statistic, reference.size, current.size)
    assert float(p) == pytest.approx(expected.pvalue, abs=TOLERANCE)


@pytest.mark.parametrize("reference, current", list(_samples()))
def test_wasserstein_matches_scipy(reference, current):
    expected = scipy_stats.wasserstein_distance(reference, current)
    assert stats.wasserstein(np.sort(reference), np.sort(current)) == pytest.approx(expected, abs=TOLERANCE)


def test_ks_and_wasserstein_against_an_exact_profile_sketch_match_scipy():
    rng = np.random.default_rng(12)
    reference, current = rng.gamma(2.0, size=2000), rng.gamma(2.2, size=3000)
    profile = NumericProfile.build(reference)
    assert profile.sketch_exact
    current_sorted = np.sort(current)
    assert stats.ks_statistic(profile.sketch, current_sorted) == pytest.approx(
        scipy_stats.ks_2samp(reference, current).statistic, abs=TOLERANCE
    )
    assert stats.wasserstein(profile.sketch, current_sorted) == pytest.approx(
        scipy_stats.wasserstein_distance(reference, current), abs=TOLERANCE
    )


def test_ks_against_a_bounded_sketch_is_within_one_over_its_size():
    rng = np.random.default_rng(13)
    reference, current = rng.normal(size=100_000), rng.normal(0.05, 1.0, size=50_000)
    profile = NumericProfile.build(reference, sketch_size=2048)
    exact = scipy_stats.ks_2samp(reference, current).statistic
    assert abs(stats.ks_statistic(profile.sketch, np.sort(current)) - exact) <= 1 / 2048


@pytest.mark.parametrize("reference, current", list(_samples()))
def test_js_distance_matches_scipy_on_the_reference_bins(reference, current):
    profile = NumericProfile.build(reference)
    current_counts = stats.bin_counts(np.sort(current), profile.bin_edges)
    expected = distance.jensenshannon(profile.bin_counts, current_counts, base=2)
    assert stats.js_distance(profile.bin_counts, current_counts) == pytest.approx(expected, abs=TOLERANCE)


def test_js_distance_of_categories_matches_scipy():
    p = np.array([50.0, 30.0, 20.0, 0.0])
    q = np.array([10.0, 30.0, 40.0, 20.0])
    assert stats.js_distance(p, q) == pytest.approx(distance.jensenshannon(p, q, base=2), abs=TOLERANCE)
    assert stats.js_distance(p, p) == 0.0
    assert stats.js_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "reference, current",
    [
        ([500, 300, 200, 0], [40, 35, 20, 5]),
        ([1000, 10], [900, 100]),
        ([5, 7, 9, 11, 13], [13, 11, 9, 7, 5]),
    ],
)
def test_chi_square_matches_scipy(reference, current):
    reference, current = np.array(reference, float), np.array(current, float)
    statistic, p, dof = stats.chi_square(reference, current)
    expected = scipy_stats.chi2_contingency(np.vstack([reference, current]), correction=False)
    assert statistic == pytest.approx(expected.statistic, abs=TOLERANCE)
    assert p == pytest.approx(expected.pvalue, abs=TOLERANCE)
    assert dof == expected.dof


def test_chi_square_of_a_single_category_is_no_evidence():
    assert stats.chi_square(np.array([10.0, 0.0]), np.array([5.0, 0.0])) == (0.0, 1.0, 0)


def test_bin_counts_follow_right_closed_bins():
    counts = stats.bin_counts(np.array([0.0, 0.0, 1.0, 1.5, 2.0, 9.0]), np.array([0.0, 1.0, 2.0]))
    assert counts.tolist() == [2.0, 1.0, 2.0, 1.0]


def test_psi_is_zero_on_equal_proportions_and_finite_with_empty_bins():
    ref = np.array([100.0, 100.0, 100.0])
    assert stats.psi(ref, ref / 10) == pytest.approx(0.0, abs=1e-3)
    shifted = stats.psi(ref, np.array([0.0, 0.0, 300.0]))
    assert np.isfinite(shifted) and shifted > 2.0
    # By hand, with the half count added to each bin on both sides.
    p = (ref + 0.5) / (ref + 0.5).sum()
    q = np.array([0.5, 0.5, 300.5]) / 301.5
    assert shifted == pytest.approx(np.sum((q - p) * np.log(q / p)), abs=TOLERANCE)


def test_proportion_p_value_matches_a_two_proportion_z_test():
    p = stats.proportion_p_value(50, 1000, 30, 200)
    pooled = 80 / 1200
    z = (0.15 - 0.05) / np.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 200))
    assert p == pytest.approx(2 * scipy_stats.norm.sf(z), abs=TOLERANCE)
    assert stats.proportion_p_value(0, 100, 0, 50) == 1.0
    assert stats.proportion_p_value(0, 0, 3, 5) == 1.0


def test_ks_p_value_of_large_samples_stays_close_to_scipy():
    rng = np.random.default_rng(14)
    reference, current = rng.normal(size=60_000), rng.normal(0.02, 1.0, size=40_000)
    expected = scipy_stats.ks_2samp(reference, current, method="asymp")
    statistic = stats.ks_statistic(np.sort(reference), np.sort(current))
    assert statistic == pytest.approx(expected.statistic, abs=TOLERANCE)
    assert 60_000 * 40_000 / 100_000 > stats.KS_LIMIT_FROM_N
    assert stats.ks_p_value(statistic, 60_000, 40_000) == pytest.approx(expected.pvalue, rel=0.005)


def test_ks_p_value_edges():
    assert stats.ks_p_value(0.0, 100, 100) == 1.0
    assert stats.ks_p_value(0.5, 0, 100) == 1.0
    assert stats.ks_p_value(1.0, 1000, 1000) == 0.0


def test_outside_share_counts_values_beyond_the_reference_range():
    assert stats.outside_share(np.array([0.0, 1.0, 2.0, 3.0, 9.0]), 1.0, 3.0) == pytest.approx(0.4)
    assert stats.outside_share(np.array([]), 0.0, 1.0) == 0.0
