"""Direct loss estimation: fitted on a holdout whose errors depend on the
inputs, it estimates held-out days' MAE close to the actual one, its band
holds the unchanged days, and a shift of the inputs towards where errors are
large moves the estimate beyond the band before any label exists."""

from __future__ import annotations

import numpy as np
import pytest

from rxcast.model.error_estimator import ErrorEstimator, fit_error_estimator
from rxcast.model.profile import ReferenceProfile, build_reference_profile
from rxcast.runtime.errors import InvalidArgument


def _rows(rng: np.random.Generator, days: int, day0: int = 0, volatile_share: float = 0.2):
    """Rows where a `volatility` feature sets the noise: errors are large where it is high."""
    n = days * 1500
    volatility = np.where(rng.random(n) < volatile_share, 4.0, 1.0) + rng.random(n) * 0.1
    level = rng.gamma(4.0, 5.0, n)
    predictions = level
    actuals = level + rng.normal(0.0, volatility * 2.0)
    columns = {"volatility": volatility, "level_7d": level + rng.normal(0, 1, n)}
    return columns, predictions, actuals, np.repeat(np.arange(day0, day0 + days), 1500)


@pytest.fixture(scope="module")
def estimator() -> ErrorEstimator:
    columns, predictions, actuals, days = _rows(np.random.default_rng(0), 7)
    return fit_error_estimator(columns, predictions, actuals, days)


def test_held_out_days_are_estimated_within_a_few_percent(estimator):
    days, estimated, actual = np.array(estimator.calibration).T
    assert days.tolist() == list(range(7))
    assert np.max(np.abs(estimated - actual) / actual) < 0.05
    assert estimator.daily_mean == pytest.approx(actual.mean(), rel=0.05)
    assert estimator.upper >= estimator.daily_mean * 1.1 - 1e-9  # at least the 10% floor


def test_unchanged_days_stay_in_the_band_and_a_shift_to_volatile_rows_leaves_it(estimator):
    rng = np.random.default_rng(1)
    for day in range(10):
        columns, predictions, actuals, _ = _rows(rng, 1, 100 + day)
        assert estimator.estimate(columns, predictions).mean() <= estimator.upper
    columns, predictions, actuals, _ = _rows(rng, 1, 200, volatile_share=0.6)
    estimated = estimator.estimate(columns, predictions).mean()
    assert estimated > estimator.upper
    assert estimated == pytest.approx(np.abs(actuals - predictions).mean(), rel=0.1)


def test_it_travels_in_the_reference_profile_json(estimator):
    columns, predictions, _, _ = _rows(np.random.default_rng(2), 1)
    profile = build_reference_profile(columns, (), predictions)
    doc = {**profile.to_dict(), "error_estimator": estimator.to_dict()}
    again = ReferenceProfile.from_dict(doc)
    assert again.error_estimator == estimator
    assert again.to_dict()["error_estimator"] == estimator.to_dict()
    np.testing.assert_allclose(
        again.error_estimator.estimate(columns, predictions), estimator.estimate(columns, predictions)
    )
    with pytest.raises(InvalidArgument, match="columns \\['volatility'\\] are missing"):
        estimator.estimate({"level_7d": columns["level_7d"]}, predictions)
    with pytest.raises(InvalidArgument, match="format"):
        ErrorEstimator.from_dict({"format": "other"})


def test_too_small_a_holdout_is_refused():
    columns, predictions, actuals, days = _rows(np.random.default_rng(3), 1)
    with pytest.raises(InvalidArgument, match="2 holdout days"):
        fit_error_estimator(columns, predictions, actuals, days)
