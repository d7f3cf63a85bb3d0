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

from rxcast.model.profile import build_reference_profile

#: Rows the profile is computed on, at most.
PROFILE_SAMPLE_ROWS = 50_000
#: The populations a production window is compared within (those present):
#: a window of some regions, or of one weekday, is judged against the same
#: regions on the same weekday, not against the whole mix.
STRATA_BY = ("store_region", "day_of_week")


def sample_rows(rows: int, seed: int, limit: int = PROFILE_SAMPLE_ROWS) -> np.ndarray:
    """Sorted indices of at most `limit` rows, chosen reproducibly."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


def reference_profile(
    features: Mapping[str, np.ndarray],
    categorical: frozenset[str],
    predictions: np.ndarray,
    holdout_errors: np.ndarray,
) -> dict[str, Any]:
    """The profile to store under the manifest's `reference_profile`: the
    training features and the model's predictions on the same rows, and the
    holdout errors (actual - forecast) that scale the error-stream detectors.

    Built by `rxcast.model.profile`, the code the drift service reads it
    with, stratified by the `STRATA_BY` features the model has.
    """
    present = frozenset(name for name in categorical if name in features)
    strata = tuple(name for name in STRATA_BY if name in features)
    return build_reference_profile(features, present, predictions, errors=holdout_errors, strata_by=strata).to_dict()
