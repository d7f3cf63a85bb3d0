"""Prediction flags: the bits of `PredictionFlag`, as NumPy-friendly constants."""

from __future__ import annotations

import numpy as np

from rxcast.predictor.v1 import predictor_pb2 as _pb

COLD_START_MEDICATION = np.uint32(_pb.PREDICTION_FLAG_COLD_START_MEDICATION)
COLD_START_STORE = np.uint32(_pb.PREDICTION_FLAG_COLD_START_STORE)
MISSING_FEATURES = np.uint32(_pb.PREDICTION_FLAG_MISSING_FEATURES)
FALLBACK = np.uint32(_pb.PREDICTION_FLAG_FALLBACK)
STALE_FEATURES = np.uint32(_pb.PREDICTION_FLAG_STALE_FEATURES)
FEATURES_UNAVAILABLE = np.uint32(_pb.PREDICTION_FLAG_FEATURES_UNAVAILABLE)

NAMES = {
    int(COLD_START_MEDICATION): "cold_start_medication",
    int(COLD_START_STORE): "cold_start_store",
    int(MISSING_FEATURES): "missing_features",
    int(FALLBACK): "fallback",
    int(STALE_FEATURES): "stale_features",
    int(FEATURES_UNAVAILABLE): "features_unavailable",
}


def describe(mask: int) -> list[str]:
    """The names of the bits set in `mask`, lowest first."""
    return [name for bit, name in NAMES.items() if mask & bit]


def counts(flags: np.ndarray) -> dict[str, int]:
    """How many rows carry each flag (for metrics), vectorized over rows."""
    return {name: int(np.count_nonzero(flags & np.uint32(bit))) for bit, name in NAMES.items()}
