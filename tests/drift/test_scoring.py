"""Verdicts per feature: the right signal decides, corrections and floors hold,
and bad input gets a clear error or a clear per-feature result."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from rxcast.drift.scoring import (
    DATA_QUALITY,
    DRIFT,
    INSUFFICIENT_DATA,
    NO_DRIFT,
    FeatureResult,
    Thresholds,
    score,
)
from rxcast.model.profile import build_reference_profile
from rxcast.runtime.errors import InvalidArgument

REGIONS = np.array(["north", "south", "east", "west"], dtype=object)


def _world(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    price = rng.lognormal(1.0, 0.3, n)
    price[rng.random(n) < 0.02] = np.nan
    return {
        "demand": rng.poisson(5.0, n).astype(float),
        "price": price,
        "stock": rng.normal(100.0, 15.0, n),
        "region": rng.choice(REGIONS, n, p=[0.4, 0.3, 0.2, 0.1]),
    }


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(21)
    features = _world(rng, 20_000)
    return build_reference_profile(features, ["region"], features["demand"] * 0.9 + 1)


def _current(seed: int = 22, n: int = 2000) -> dict[str, np.ndarray]:
    return _world(np.random.default_rng(seed), n)


def _by_name(scores) -> dict[str, FeatureResult]:
    return {r.feature: r for r in scores.features}


def test_the_same_world_is_no_drift(reference):
    current = _current()
    scores = score(reference, current, current["demand"] * 0.9 + 1)
    assert [r.verdict for r in scores.features] == [NO_DRIFT] * 4
    assert scores.prediction.verdict == NO_DRIFT and scores.verdict == NO_DRIFT
    assert all(not math.isnan(s.value) for r in scores.features for s in r.signals)


def test_ignored_features_are_left_out_of_the_report_and_the_correction(reference):
    current = _current()
    current["stock"] = current["stock"] + 30.0
    scores = score(reference, current, ignore=("stock",))
    assert sorted(_by_name(scores)) == ["demand", "price", "region"]
    assert scores.verdict == NO_DRIFT


def test_no_alarms_over_many_windows_of_the_same_world(reference):
    verdicts = [r.verdict for seed in range(40) for r in score(reference, _current(100 + seed, 500)).features]
    assert verdicts.count(DRIFT) + verdicts.count(DATA_QUALITY) == 0


def test_a_mean_shift_is_drift_decided_by_ks_with_an_effect(reference):
    current = _current()
    current["stock"] = current["stock"] + 15.0  # one reference std
    result = _by_name(score(reference, current))["stock"]
    assert result.verdict == DRIFT
    ks = result.signal("ks")
    assert ks.fired and ks.adjusted_p_value < 0.01
    assert result.signal("wasserstein").value == pytest.approx(1.0, abs=0.1)
    assert result.reason.startswith("drift: ks")
    assert "wasserstein" in result.reason


def test_a_trivial_shift_in_a_huge_sample_is_not_an_alarm(reference):
    current = _current(n=200_000)
    current["stock"] = current["stock"] + 0.75  # 0.05 std
    result = _by_name(score(reference, current))["stock"]
    assert result.signal("ks").adjusted_p_value < 0.01  # significant...
    assert result.verdict == NO_DRIFT  # ...but below every effect floor
    assert "no effect reaches its floor" in result.reason


def test_a_unit_change_is_named_a_scale_change(reference):
    current = _current()
    current["price"] = current["price"] * 10
    result = _by_name(score(reference, current))["price"]
    assert result.verdict == DRIFT
    assert result.signal("mean_ratio").value == pytest.approx(10, rel=0.05)
    assert result.signal("std_ratio").fired
    assert "scale change" in result.reason


def test_missing_values_appearing_are_data_quality(reference):
    current = _current()
    current["demand"][:600] = np.nan
    result = _by_name(score(reference, current))["demand"]
    assert result.verdict == DATA_QUALITY
    signal = result.signal("null_rate_delta")
    assert signal.fired and signal.value == pytest.approx(0.3, abs=0.01)
    assert "null_rate_delta" in result.reason


def test_a_column_gone_constant_is_data_quality(reference):
    current = _current()
    current["price"] = np.full(2000, 1.0)
    result = _by_name(score(reference, current))["price"]
    assert result.verdict == DATA_QUALITY
    assert result.signal("constant").fired
    assert "constant column" in result.reason


def test_a_rare_value_repeating_in_a_tiny_window_is_not_called_constant(reference):
    current = {"demand": np.array([5.0, 5.0])}  # P(5) ~ 0.18 under the reference: 0.03 for two rows
    result = _by_name(score(reference, current, thresholds=Thresholds(min_count=1)))["demand"]
    assert result.verdict != DATA_QUALITY


def test_infinities_are_data_quality_and_never_a_nan(reference):
    current = _current()
    current["stock"][:100] = np.inf
    current["stock"][100:150] = -np.inf
    result = _by_name(score(reference, current))["stock"]
    assert result.verdict == DATA_QUALITY and result.signal("infinite_rate_delta").fired
    assert all(math.isfinite(s.value) for s in result.signals)


def test_an_unseen_category_is_drift_on_its_own(reference):
    current = _current()
    current["region"][:300] = "coastal"
    result = _by_name(score(reference, current))["region"]
    assert result.verdict == DRIFT
    assert result.signal("unseen_mass").value == pytest.approx(0.15)
    assert "unseen_mass" in result.reason


def test_a_shift_in_category_frequencies_is_drift_by_chi_square(reference):
    rng = np.random.default_rng(23)
    current = _current()
    current["region"] = rng.choice(REGIONS, 2000, p=[0.1, 0.2, 0.3, 0.4])
    result = _by_name(score(reference, current))["region"]
    assert result.verdict == DRIFT and result.signal("chi2").fired
    assert result.signal("unseen_mass").value == 0.0


def test_an_empty_window_is_insufficient_data_everywhere(reference):
    scores = score(
        reference,
        {name: np.array([]) for name in ("demand", "price", "stock")} | {"region": np.array([], dtype=object)},
    )
    assert {r.verdict for r in scores.features} == {INSUFFICIENT_DATA}
    assert scores.verdict == INSUFFICIENT_DATA and scores.current_rows == 0
    assert "0 current values < min_count" in scores.features[0].reason


def test_an_all_null_feature_is_data_quality(reference):
    current = _current()
    current["stock"] = np.full(2000, np.nan)
    current["region"] = np.full(2000, None, dtype=object)
    results = _by_name(score(reference, current))
    assert results["stock"].verdict == DATA_QUALITY and results["stock"].current_count == 0
    assert results["region"].verdict == DATA_QUALITY


def test_a_small_window_is_insufficient_data_not_a_verdict(reference):
    current = {k: v[:10] for k, v in _current().items()}
    results = _by_name(score(reference, current))
    assert results["stock"].verdict == INSUFFICIENT_DATA
    assert "10 current values < min_count 30" in results["stock"].reason


def test_a_feature_absent_from_the_data_is_named(reference):
    current = _current()
    del current["price"]
    result = _by_name(score(reference, current))["price"]
    assert result.verdict == INSUFFICIENT_DATA and "absent from the data" in result.reason


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(unknown=np.zeros(2000)), "not in the reference profile"),
        (lambda c: c.update(stock=np.zeros(5)), "differ in length"),
        (lambda c: c.update(region=np.zeros(2000)), "categorical feature needs strings"),
        (lambda c: c.update(stock=np.array(["a"] * 2000, dtype=object)), "numeric feature needs numbers"),
    ],
)
def test_mismatched_schemas_are_invalid_arguments(reference, change, message):
    current = _current()
    change(current)
    with pytest.raises(InvalidArgument, match=message):
        score(reference, current)


def test_predictions_need_a_reference_with_predictions():
    profile = build_reference_profile({"x": np.arange(100.0)}, [])
    with pytest.raises(InvalidArgument, match="no predictions"):
        score(profile, {"x": np.arange(100.0)}, np.arange(100.0))


def test_prediction_drift_is_scored_like_a_numeric_feature(reference):
    current = _current()
    scores = score(reference, current, current["demand"] * 2.0 + 1)
    assert scores.prediction.feature == "prediction" and scores.prediction.verdict == DRIFT


def test_adjusted_p_values_are_benjamini_hochberg_across_features(reference):
    current = _current()
    current["stock"] = current["stock"] + 3.0
    scores = score(reference, current, current["demand"] * 0.9 + 1)
    tests = [r.signals[0] for r in [*scores.features, scores.prediction]]
    assert [t.name for t in tests] == ["ks", "ks", "ks", "chi2", "ks"]
    expected = scipy_stats.false_discovery_control([t.p_value for t in tests], method="bh")
    assert [t.adjusted_p_value for t in tests] == pytest.approx(expected.tolist(), abs=1e-12)
    none = score(reference, current, thresholds=Thresholds(correction="none"))
    assert all(r.signals[0].adjusted_p_value == r.signals[0].p_value for r in none.features)


def test_correction_turns_a_marginal_feature_into_no_drift():
    # Nineteen quiet features and one whose raw p-value sits just below alpha.
    rng = np.random.default_rng(24)
    reference_data = {f"f{i}": rng.normal(size=4000) for i in range(20)}
    profile = build_reference_profile(reference_data, [])
    loose = Thresholds(wasserstein=1e-6)
    for shift in np.linspace(0.05, 0.3, 26):
        current = {f"f{i}": np.random.default_rng(i).normal(size=500) for i in range(20)}
        current["f0"] = np.random.default_rng(99).normal(size=500) + shift
        raw = score(profile, current, thresholds=Thresholds(correction="none", wasserstein=1e-6))
        if raw.features[0].verdict == DRIFT and raw.features[0].signals[0].p_value > 0.001:
            break
    else:
        pytest.fail("no marginal shift found")
    corrected = score(profile, current, thresholds=loose)
    assert corrected.features[0].verdict == NO_DRIFT
    assert corrected.features[0].signals[0].adjusted_p_value > 0.01


def test_results_round_trip_through_json(reference):
    current = _current()
    current["price"] = current["price"] * 10
    for result in score(reference, current).features:
        again = FeatureResult.from_dict(json.loads(json.dumps(result.to_dict(), allow_nan=False)))
        assert again == result


@pytest.mark.parametrize(
    "bad", [{"alpha": 0}, {"correction": "holm"}, {"min_count": 0}, {"mean_ratio": 1.0}, {"psi": -1}]
)
def test_bad_thresholds_are_rejected(bad):
    with pytest.raises(InvalidArgument, match="thresholds"):
        Thresholds(**bad)


def test_values_outside_a_constant_reference_are_drift_by_out_of_range():
    # Every reference entity had a full 28-day history; new entities do not.
    profile = build_reference_profile({"days_recorded_28d": np.full(5000, 28.0)}, [])
    current = np.full(3000, 28.0)
    current[:150] = np.arange(150) % 28
    result = score(profile, {"days_recorded_28d": current}).features[0]
    assert result.verdict == DRIFT
    assert result.signal("out_of_range").value == pytest.approx(0.05) and result.signal("out_of_range").fired
    assert "out_of_range" in result.reason


def test_a_column_constant_at_the_value_most_of_the_reference_holds_is_not_broken():
    # Most stores have a full 28 days recorded; the few new ones ramp up. A day on
    # which every store is past its first 28 days is the world settling.
    rng = np.random.default_rng(3)
    days = np.where(rng.random(20_000) < 0.8, 28.0, rng.integers(1, 28, 20_000).astype(float))
    reference = build_reference_profile({"days_recorded_28d": days}, [])
    result = _by_name(score(reference, {"days_recorded_28d": np.full(3000, 28.0)}))["days_recorded_28d"]
    assert result.verdict != DATA_QUALITY and result.signal("constant").fired is False
    # Pinned to a value the reference rarely holds: a broken pipeline.
    stuck = _by_name(score(reference, {"days_recorded_28d": np.full(3000, 3.0)}))["days_recorded_28d"]
    assert stuck.verdict == DATA_QUALITY and stuck.signal("constant").fired is True  # a JSON bool, not numpy's
