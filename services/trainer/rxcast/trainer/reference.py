"""The reference profile of a model's training data.

The profile describes the features the model was trained on and the model's
predictions on them (quantile bins, category counts, null rates, moments), so
that the drift service can compare live traffic with it. It is computed on a
bounded random sample of the training rows: the statistics need thousands of
rows, not millions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rxcast.model.error_estimator import fit_error_estimator
from rxcast.model.profile import build_reference_profile
from rxcast.model.residuals import forecast_residuals
from rxcast.runtime.errors import InvalidArgument
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.trainer.reference")

#: Rows the profile is computed on, at most.
PROFILE_SAMPLE_ROWS = 50_000
#: The populations a production window is compared within (those present):
#: a window of some regions, or of one weekday, is judged against the same
#: regions on the same weekday, not against the whole mix.
STRATA_BY = ("store_region", "day_of_week")
#: Features the drift service does not window (the calendar moves by
#: construction), so the error estimator cannot read them there.
NOT_WINDOWED = ("day_of_year", "week_of_year")


def sample_rows(rows: int, seed: int, limit: int = PROFILE_SAMPLE_ROWS) -> np.ndarray:
    """Sorted indices of at most `limit` rows, chosen reproducibly."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


def reference_profile(
    features: Mapping[str, np.ndarray],
    categorical: frozenset[str],
    predictions: np.ndarray,
    holdout_actuals: np.ndarray,
    holdout_predictions: np.ndarray,
    holdout: Mapping[str, np.ndarray] | None = None,
    holdout_days: np.ndarray | None = None,
) -> dict[str, Any]:
    """The profile to store under the manifest's `reference_profile`: the
    training features and the model's predictions on the same rows, and the
    holdout errors that the drift service's error-stream detectors judge
    served errors against, on the scale it computes them on
    (`forecast_residuals`); with the holdout's columns and days, the error
    estimator too.

    Built by `rxcast.model.profile`, the code the drift service reads it
    with, stratified by the `STRATA_BY` features the model has.
    """
    present = frozenset(name for name in categorical if name in features)
    strata = tuple(name for name in STRATA_BY if name in features)
    errors = forecast_residuals(holdout_actuals, holdout_predictions)
    profile = build_reference_profile(features, present, predictions, errors=errors, strata_by=strata)
    doc = profile.to_dict()
    if holdout is not None and holdout_days is not None:
        doc["error_estimator"] = error_estimator(holdout, present, holdout_predictions, holdout_actuals, holdout_days)
    return doc


def error_estimator(
    holdout: Mapping[str, np.ndarray],
    categorical: frozenset[str],
    predictions: np.ndarray,
    actuals: np.ndarray,
    days: np.ndarray,
) -> dict[str, Any] | None:
    """The holdout's direct loss estimator (rxcast.model.error_estimator) on
    the numeric features the drift service windows; None when the holdout is
    too small to fit and calibrate one (the version is served without)."""
    columns = {n: c for n, c in holdout.items() if n not in categorical and n not in NOT_WINDOWED}
    try:
        return fit_error_estimator(columns, predictions, actuals, days).to_dict()
    except InvalidArgument as exc:
        log.warning("no error estimator", reason=exc.message)
        return None
