"""Direct loss estimation: the served model's error from its inputs alone.

Labels arrive a horizon after a forecast; the absolute error can be estimated
at once by a second model, fitted on the holdout, that maps the features and
the forecast to the forecast's absolute error (NannyML's direct loss
estimation for regression). Its mean over a window estimates the window's MAE
days before actuals confirm it.

Calibration on held-out days: the holdout's days are split into contiguous
folds; a model fitted on the other folds estimates each day's MAE of the
fold left out, next to the actual MAE of that day (`calibration`, kept in
the JSON so its quality can be read). The band is the spread of the daily
estimates of the final model (fitted on the whole holdout) over the holdout
days: a window's estimate above `upper` is a rise beyond what the days the
model was judged on show, at least `min_rise` of their mean.

JSON (`format: rxcast.model.error-estimator/1`): the feature names, the
LightGBM model as text, the band and the calibration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np

from rxcast.runtime.errors import InvalidArgument

ESTIMATOR_FORMAT = "rxcast.model.error-estimator/1"
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
    #: Mean and standard deviation of the daily estimated MAE over the holdout days.
    daily_mean: float
    daily_std: float
    #: A window's estimated MAE above this is a rise.
    upper: float
    #: Per held-out day: [day, estimated MAE (model not fitted on that day), actual MAE].
    calibration: list[list[float]]

    def estimate(self, columns: Mapping[str, np.ndarray], predictions: np.ndarray) -> np.ndarray:
        """Each row's estimated absolute error."""
        missing = [n for n in self.features if n != PREDICTION_INPUT and n not in columns]
        if missing:
            raise InvalidArgument(f"error estimator: columns {missing} are missing")
        return np.clip(_booster(self.model_text).predict(_matrix(self.features, columns, predictions)), 0.0, None)

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
    calibration = []
    for fold in np.array_split(unique, min(FOLDS, unique.size)):
        held = np.isin(days, fold)
        model = _fit(x[~held], target[~held])
        estimated = np.clip(model.predict(x[held]), 0.0, None)
        for day in fold:
            mine = days[held] == day
            calibration.append([float(day), float(estimated[mine].mean()), float(target[held][mine].mean())])
    model = _fit(x, target)
    estimated = np.clip(model.predict(x), 0.0, None)
    daily = np.array([estimated[days == day].mean() for day in unique])
    mean, std = float(daily.mean()), float(daily.std(ddof=1))
    return ErrorEstimator(
        features=features,
        model_text=model.model_to_string(),
        daily_mean=mean,
        daily_std=std,
        upper=mean + max(band_sigmas * std, min_rise * mean),
        calibration=calibration,
    )


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
