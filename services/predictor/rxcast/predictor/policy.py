"""How a forecast is made for each row: by the model, or by a documented fallback.

For every row, in this order:
- The medication or the store was never seen in training (per the manifest's
  `entities_seen`): COLD_START_MEDICATION / COLD_START_STORE, and the row is
  answered by a prior (FALLBACK): the model never learned anything about it.
- No feature value at all was found for the row (an entity the feature
  store does not know yet): MISSING_FEATURES | FALLBACK, answered by a prior.
- Some feature values are missing (null, not found, outside their TTL) or a
  categorical level was never seen in training: MISSING_FEATURES, and the
  model predicts with those inputs passed as missing (LightGBM routes NaN
  down each split's learned default branch).
- The feature service could not be reached (and the server is configured to
  answer anyway): FEATURES_UNAVAILABLE | FALLBACK, answered by a prior.

The prior is the first one the manifest has for the row, most specific first:
the medication's category (`by_category`), the store (`by_store`), the
store's region (`by_region`), then the global mean. Priors are means of the
target over training, so they are already in units over the horizon.

A model forecast whose newest feature value is older than the freshness
bound also gets STALE_FEATURES (it is still the model's forecast). The
feature age reported is now minus the newest event time among the row's
present values (which, for a fallback row, may be an old attribute such as
the store's region), or -1 when no value was present.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rxcast.predictor import flags as F
from rxcast.predictor.frame import FeatureFrame
from rxcast.predictor.serving import ServingModel


@dataclass(frozen=True)
class Forecasts:
    """Forecasts for a frame's rows, with how each was made."""

    values: np.ndarray  # float64, units over the horizon
    flags: np.ndarray  # uint32 PredictionFlag bits
    feature_ages_seconds: np.ndarray  # float64, -1 where no features were used
    model_version: int
    horizon_days: int
    #: The model's input matrix (rows × features, NaN = missing), for prediction logs.
    matrix: np.ndarray


def prior_forecasts(model: ServingModel, frame: FeatureFrame) -> np.ndarray:
    """The most specific prior the manifest has for each row."""
    rows = len(frame)
    keys = frame.keys
    values = np.full(rows, np.nan)
    candidates = (
        (model.priors.by_category, frame.columns.get(model.entity_features.category)),
        (model.priors.by_store, keys.store_ids),
        (model.priors.by_region, frame.columns.get(model.entity_features.region)),
    )
    for table, column in candidates:
        if column is None or len(table) == 0:
            continue
        todo = np.isnan(values)
        if not todo.any():
            break
        values[todo] = table.get(np.asarray(column, dtype=str)[todo])
    values[np.isnan(values)] = model.priors.global_mean
    return values


def cold_start_flags(model: ServingModel, frame: FeatureFrame) -> np.ndarray:
    flags = np.zeros(len(frame), dtype=np.uint32)
    if model.seen_medications is not None:
        flags[~model.seen_medications.contains(frame.keys.medication_ids)] |= F.COLD_START_MEDICATION
    if model.seen_stores is not None:
        flags[~model.seen_stores.contains(frame.keys.store_ids)] |= F.COLD_START_STORE
    return flags


def feature_ages(frame: FeatureFrame, now_ms: int) -> np.ndarray:
    newest = frame.newest_event_ms
    return np.where(newest > 0, (now_ms - newest) / 1000.0, -1.0)


def forecast(
    model: ServingModel,
    frame: FeatureFrame,
    now_ms: int,
    max_feature_age_seconds: float = 0.0,
    num_threads: int = 1,
) -> Forecasts:
    """Forecast every row of `frame` with `model` or its priors (see the module doc)."""
    encoded = model.bundle.encode(frame.columns)
    matrix = encoded.matrix
    flags = cold_start_flags(model, frame)
    flags[encoded.missing] |= F.MISSING_FEATURES
    no_features = np.isnan(matrix).all(axis=1)
    by_model = ((flags & (F.COLD_START_MEDICATION | F.COLD_START_STORE)) == 0) & ~no_features
    flags[~by_model] |= F.FALLBACK

    values = np.empty(len(frame))
    if by_model.all():
        values[:] = model.predict(matrix, num_threads)
    else:
        if by_model.any():
            values[by_model] = model.predict(matrix[by_model], num_threads)
        values[~by_model] = prior_forecasts(model, frame.take(~by_model))

    ages = feature_ages(frame, now_ms)
    if max_feature_age_seconds > 0:
        flags[(ages > max_feature_age_seconds) & by_model] |= F.STALE_FEATURES
    return Forecasts(values, flags, ages, model.version, model.manifest.horizon_days, matrix)


def unavailable_forecast(model: ServingModel, frame: FeatureFrame) -> Forecasts:
    """Priors only, for when the feature service cannot be reached."""
    rows = len(frame)
    flags = cold_start_flags(model, frame) | F.FEATURES_UNAVAILABLE | F.FALLBACK
    matrix = np.full((rows, len(model.feature_names)), np.nan)
    return Forecasts(
        prior_forecasts(model, frame), flags, np.full(rows, -1.0), model.version, model.manifest.horizon_days, matrix
    )
