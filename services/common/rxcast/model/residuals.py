"""Demand-forecast residuals on the scale of Poisson noise: the one definition
the trainer profiles its holdout errors with and the drift service computes
from actuals, so that both sides of the concept-drift comparison are alike."""

from __future__ import annotations

import numpy as np

#: A profile's holdout errors as `forecast_residuals` computes them.
POISSON_SCALE = "poisson"
#: A profile's holdout errors as actual - prediction, in units (profiles
#: written before the scale was recorded).
UNITS_SCALE = "units"


def forecast_residuals(actuals: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """(actual - prediction) / sqrt(max(prediction, 1)).

    Absolute errors of count forecasts grow with the demand level, so a
    season the model follows would read as concept drift; these do not.
    """
    predictions = np.asarray(predictions, dtype=float)
    return (np.asarray(actuals, dtype=float) - predictions) / np.sqrt(np.maximum(predictions, 1.0))
