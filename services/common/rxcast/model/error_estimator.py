"""Direct loss estimation: the served model's error from its inputs alone.

Labels arrive a horizon after a forecast; the absolute error can be estimated
at once by a second model, fitted on the holdout, that maps the features and
the forecast to the forecast's absolute error (NannyML's direct loss
estimation for regression). Its mean over a window estimates the window's MAE
days before actuals confirm it.

The band is relative to the level: the estimated MAE over the mean forecast
(a WAPE with the forecast in place of the actuals, which are not there yet).
Demand forecasts err in proportion to the demand, so a season the model
follows raises the MAE with the level and would read as a rise in absolute
units; as a share of the forecast it does not.

Calibration on held-out days: the holdout's days are split into contiguous
folds; a model fitted on the other folds estimates each day's relative error
of the fold left out, next to the actual one (`calibration`, kept in the JSON
so its quality can be read). The band is the spread of the final model's
(fitted on the whole holdout) daily relative estimates over the holdout days:
a window whose estimated MAE is above `upper` times its mean forecast rose
beyond what the days the model was judged on show, at least `min_rise` of
their mean.

JSON (`format: rxcast.model.error-estimator/2`): the feature names, the
LightGBM model as text, the band and the calibration. Format 1 (a band in
absolute units) is retired: a profile that carries one is read without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np

from rxcast.runtime.errors import InvalidArgument

ESTIMATOR_FORMAT = "rxcast.model.error-estimator/2"
#: Formats whose band this release does not read (1: absolute units).
RETIRED_FORMATS = frozenset({"rxcast.model.error-estimator/1"})
#: The forecast itself is an input: errors grow with the demand forecast.
PREDICTION_INPUT = "prediction"
#: A small model: it learns where errors are large, not the demand.
PARAMS = {
    "objective": "regression",
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "learning_rate": 0.1,
    "verbosity": -1,
    "seed": 7,
    "num_threads": 1,
}
ROUNDS = 60
#: Contiguous day folds the calibration leaves out one at a time.
FOLDS = 4


@dataclasses.dataclass(frozen=True)
class ErrorEstimator:
    features: tuple[str, ...]
    model_text: str
    #: Mean and standard deviation over the holdout days of the daily
    #: estimated MAE relative to the day's mean forecast.
    daily_mean: float
    daily_std: float
    #: A window whose estimated MAE is above this share of its mean forecast rose.
    upper: float
    #: Per held-out day: [day, estimated relative error (model not fitted on
    #: that day), actual relative error (MAE over the mean forecast)].
    calibration: list[list[float]]

    def estimate(self, columns: Mapping[str, np.ndarray], predictions: np.ndarray) -> np.ndarray:
        """Each row's estimated absolute error."""
        missing = [n for n in self.features if n != PREDICTION_INPUT and n not in columns]
        if missing:
            raise InvalidArgument(f"error estimator: columns {missing} are missing")
        return np.clip(_booster(self.model_text).predict(_matrix(self.features, columns, predictions)), 0.0, None)

    def band(self, predictions: np.ndarray) -> float | None:
        """The upper bound of the estimated MAE of a window with these
        forecasts: `upper` times their level; None when they are all zero."""
        level = forecast_level(predictions)
        return self.upper * level if level > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {"format": ESTIMATOR_FORMAT, **dataclasses.asdict(self), "features": list(self.features)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorEstimator:
        if not isinstance(data, Mapping) or data.get("format") != ESTIMATOR_FORMAT:
            raise InvalidArgument(f"error estimator: format is not {ESTIMATOR_FORMAT!r}")
        try:
            return cls(
                features=tuple(str(n) for n in data["features"]),
                model_text=str(data["model_text"]),
                daily_mean=float(data["daily_mean"]),
                daily_std=float(data["daily_std"]),
                upper=float(data["upper"]),
                calibration=[[float(v) for v in row] for row in data["calibration"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"error estimator: {exc}") from None


def forecast_level(predictions: np.ndarray) -> float:
    """The mean forecast, negative forecasts counted as zero (0 for none):
    what the band's share of the forecast is taken of."""
    return float(np.clip(np.asarray(predictions, dtype=float), 0.0, None).mean()) if len(predictions) else 0.0


def fit_error_estimator(
    columns: Mapping[str, np.ndarray],
    predictions: np.ndarray,
    actuals: np.ndarray,
    days: np.ndarray,
    *,
    min_rise: float = 0.1,
    band_sigmas: float = 3.0,
) -> ErrorEstimator:
    """Fit on holdout rows (numeric `columns`, the model's `predictions`,
    the `actuals`, each row's `days` index) and calibrate on held-out days."""
    features = (*sorted(columns), PREDICTION_INPUT)
    x = _matrix(features, columns, predictions)
    target = np.abs(np.asarray(actuals, dtype=float) - np.asarray(predictions, dtype=float))
    days = np.asarray(days)
    unique = np.unique(days)
    if unique.size < 2 or target.size < 100:
        raise InvalidArgument("error estimator: needs at least 2 holdout days and 100 rows")
    level = np.clip(np.asarray(predictions, dtype=float), 0.0, None)
    if (_daily_sums(level, days, unique) <= 0).any():
        raise InvalidArgument("error estimator: every holdout day needs a forecast above zero")
    calibration = np.empty((unique.size, 3))
    calibration[:, 0] = unique
    start = 0
    for fold in np.array_split(unique, min(FOLDS, unique.size)):
        held = np.isin(days, fold)
        estimated = np.clip(_fit(x[~held], target[~held]).predict(x[held]), 0.0, None)
        stop = start + fold.size
        calibration[start:stop, 1] = _relative(estimated, level[held], days[held], fold)
        calibration[start:stop, 2] = _relative(target[held], level[held], days[held], fold)
        start = stop
    model = _fit(x, target)
    daily = _relative(np.clip(model.predict(x), 0.0, None), level, days, unique)
    mean, std = float(daily.mean()), float(daily.std(ddof=1))
    return ErrorEstimator(
        features=features,
        model_text=model.model_to_string(),
        daily_mean=mean,
        daily_std=std,
        upper=mean + max(band_sigmas * std, min_rise * mean),
        calibration=calibration.tolist(),
    )


def _daily_sums(values: np.ndarray, days: np.ndarray, unique: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(unique, days), weights=values, minlength=unique.size)


def _relative(errors: np.ndarray, level: np.ndarray, days: np.ndarray, unique: np.ndarray) -> np.ndarray:
    """Each day's summed error over its summed forecast (`unique`: the sorted days)."""
    return _daily_sums(errors, days, unique) / _daily_sums(level, days, unique)


def _fit(x: np.ndarray, y: np.ndarray) -> lgb.Booster:
    return lgb.train(PARAMS, lgb.Dataset(x, y, free_raw_data=True), num_boost_round=ROUNDS)


_BOOSTERS: dict[int, lgb.Booster] = {}


def _booster(model_text: str) -> lgb.Booster:
    """Parsed once per model text (a window estimate should not re-parse trees)."""
    key = hash(model_text)
    if key not in _BOOSTERS:
        _BOOSTERS[key] = lgb.Booster(model_str=model_text)
    return _BOOSTERS[key]


def _matrix(features: tuple[str, ...], columns: Mapping[str, np.ndarray], predictions: np.ndarray) -> np.ndarray:
    return np.column_stack(
        [np.asarray(predictions if name == PREDICTION_INPUT else columns[name], dtype=float) for name in features]
    )
