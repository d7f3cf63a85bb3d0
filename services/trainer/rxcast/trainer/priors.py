"""Cold-start priors and the entities a model has seen.

A predictor asked about a store or medication the model never saw falls back
to these: mean demand over the horizon, overall and per medication category,
per store and per store region.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rxcast.trainer.dataset import TrainingSet

CATEGORY_FEATURE = "medication_category"
REGION_FEATURE = "store_region"


def _group_means(keys: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Mean label per key ("" = missing, left out), keys sorted."""
    codes, levels = pd.factorize(np.asarray(keys))  # hashing: faster than sorting strings
    sums = np.bincount(codes[codes >= 0], weights=labels[codes >= 0], minlength=levels.size)
    counts = np.bincount(codes[codes >= 0], minlength=levels.size)
    means = {str(level): round(float(s / c), 6) for level, s, c in zip(levels, sums, counts, strict=True)}
    means.pop("", None)
    return dict(sorted(means.items()))


def _distinct(values: np.ndarray) -> tuple[str, ...]:
    return tuple(sorted(str(v) for v in pd.unique(np.asarray(values)) if str(v) != ""))


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
    return {"store_ids": _distinct(data.store_ids), "medication_ids": _distinct(data.medication_ids)}
