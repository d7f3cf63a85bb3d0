"""Cold-start priors and the entities a model has seen.

A predictor asked about a store or medication the model never saw falls back
to these: mean demand over the horizon, overall and per medication category,
per store and per store region.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rxcast.trainer.dataset import TrainingSet

CATEGORY_FEATURE = "medication_category"
REGION_FEATURE = "store_region"


def _group_means(keys: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    text = np.asarray(keys).astype(str)
    known = text != ""
    levels, codes = np.unique(text[known], return_inverse=True)
    sums = np.bincount(codes, weights=labels[known], minlength=levels.size)
    counts = np.bincount(codes, minlength=levels.size)
    return {str(level): round(float(s / c), 6) for level, s, c in zip(levels, sums, counts, strict=True)}


def cold_start_priors(data: TrainingSet) -> dict[str, Any]:
    """Mean label overall and by category, store and region."""
    labels = np.asarray(data.labels, dtype=np.float64)
    priors: dict[str, Any] = {
        "global": round(float(labels.mean()), 6) if labels.size else 0.0,
        "horizon_days": data.horizon_days,
        "by_store": _group_means(data.store_ids, labels),
        "by_category": {},
        "by_region": {},
    }
    if CATEGORY_FEATURE in data.columns:
        priors["by_category"] = _group_means(data.columns[CATEGORY_FEATURE], labels)
    if REGION_FEATURE in data.columns:
        priors["by_region"] = _group_means(data.columns[REGION_FEATURE], labels)
    return priors


def entities_seen(data: TrainingSet) -> dict[str, tuple[str, ...]]:
    """The stores and medications the model was trained on, sorted."""
    return {
        "store_ids": tuple(np.unique(np.asarray(data.store_ids).astype(str)).tolist()),
        "medication_ids": tuple(np.unique(np.asarray(data.medication_ids).astype(str)).tolist()),
    }
