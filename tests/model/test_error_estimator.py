"""Direct loss estimation: fitted on a holdout whose errors depend on the
inputs, it estimates held-out days' error close to the actual one, its band
holds the unchanged days and a season that raises the level, and a shift of
the inputs towards where errors are large moves the estimate beyond the band
before any label exists."""

from __future__ import annotations

import numpy as np
import pytest

from rxcast.model.error_estimator import ErrorEstimator, fit_error_estimator
from rxcast.model.profile import ReferenceProfile, build_reference_profile
from rxcast.runtime.errors import InvalidArgument


def _rows(rng: np.random.Generator, days: int, day0: int = 0, volatile_share: float = 0.2, season: float = 1.0):
    """Rows where a `volatility` feature sets the noise: errors are large
    where it is high, and in proportion to the level (`season` scales it)."""
    n = days * 1500
    volatility = np.where(rng.random(n) < volatile_share, 4.0, 1.0) + rng.random(n) * 0.1
    level = rng.gamma(4.0, 5.0, n) * season
    predictions = level
    actuals = level + rng.normal(0.0, volatility * 0.1 * level)
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
    # |N(0, 0.1 v level)| over the level: 0.1 E[v] sqrt(2 / pi), v 4.05 on a fifth of the rows, 1.05 on the rest.
    assert estimator.daily_mean == pytest.approx(0.1 * (0.2 * 4.05 + 0.8 * 1.05) * np.sqrt(2 / np.pi), rel=0.05)
    assert estimator.upper >= estimator.daily_mean * 1.1 - 1e-9  # at least the 10% floor


def test_unchanged_days_and_a_season_stay_in_the_band_and_a_shift_to_volatile_rows_leaves_it(estimator):
    rng = np.random.default_rng(1)
    for day in range(10):
        columns, predictions, actuals, _ = _rows(rng, 1, 100 + day, season=1.0 + day / 5)
        estimated = estimator.estimate(columns, predictions).mean()
        assert estimated <= estimator.band(predictions), f"level x{1 + day / 5:.1f}"
    # The band moves with the level: in absolute units the season's MAE would have left it.
    assert estimated > estimator.upper * _rows(rng, 1)[1].mean()
    columns, predictions, actuals, _ = _rows(rng, 1, 200, volatile_share=0.6)
    estimated = estimator.estimate(columns, predictions).mean()
    assert estimated > estimator.band(predictions) == pytest.approx(estimator.upper * predictions.mean())
    assert estimated == pytest.approx(np.abs(actuals - predictions).mean(), rel=0.1)
    assert estimator.band(np.zeros(3)) is None and estimator.band(np.array([])) is None


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
    # A band in absolute units (format 1) is not read: the profile loads without it.
    retired = {**estimator.to_dict(), "format": "rxcast.model.error-estimator/1"}
    assert ReferenceProfile.from_dict({**profile.to_dict(), "error_estimator": retired}).error_estimator is None


def test_too_small_a_holdout_or_a_day_without_forecasts_is_refused():
    columns, predictions, actuals, days = _rows(np.random.default_rng(3), 1)
    with pytest.raises(InvalidArgument, match="2 holdout days"):
        fit_error_estimator(columns, predictions, actuals, days)
    columns, predictions, actuals, days = _rows(np.random.default_rng(3), 3)
    predictions[days == 1] = 0.0
    with pytest.raises(InvalidArgument, match="every holdout day needs a forecast above zero"):
        fit_error_estimator(columns, predictions, actuals, days)
