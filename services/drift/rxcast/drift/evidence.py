"""An incident's evidence as data: the statistics of a feature and the
reference and current histograms they were computed from, so an operator
(or a dashboard) can see what moved without re-running anything."""

from __future__ import annotations

from typing import Any

import numpy as np

from rxcast.drift.scoring import FeatureResult
from rxcast.model.profile import CategoricalProfile, NumericProfile

#: Categories shown per histogram (the largest on either side).
MAX_CATEGORIES_SHOWN = 20


def feature_evidence(result: FeatureResult, reference: NumericProfile | CategoricalProfile | None, column: Any) -> dict:
    """Signals of one feature's verdict and its histograms, JSON-ready."""
    evidence: dict[str, Any] = {
        "verdict": result.verdict,
        "current_count": result.current_count,
        "signals": [
            {
                "name": s.name,
                "value": s.value,
                "threshold": s.threshold,
                "adjusted_p_value": s.adjusted_p_value,
                "fired": s.fired,
            }
            for s in result.signals
        ],
    }
    if isinstance(reference, NumericProfile) and column is not None:
        evidence["histogram"] = numeric_histogram(reference, np.asarray(column, dtype=float))
    elif isinstance(reference, CategoricalProfile) and column is not None:
        evidence["histogram"] = categorical_histogram(reference, np.asarray(column, dtype=object))
    return evidence


def numeric_histogram(reference: NumericProfile, values: np.ndarray) -> dict[str, Any]:
    """Both sides on the reference's quantile bins, (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    finite = values[np.isfinite(values)]
    current = np.bincount(
        np.searchsorted(reference.bin_edges, finite, side="left"), minlength=reference.bin_counts.size
    )
    return {
        "bin_edges": [float(e) for e in reference.bin_edges],
        "reference": _fractions(reference.bin_counts),
        "current": _fractions(current),
    }


def categorical_histogram(reference: CategoricalProfile, values: np.ndarray) -> dict[str, Any]:
    """Category shares on both sides; categories beyond the largest shown are summed in "other"."""
    missing = np.equal(values, None) | np.equal(values, "") | np.not_equal(values, values)
    names, counts = np.unique(values[~missing].astype(str), return_counts=True)
    current = dict(zip(names.tolist(), counts.tolist(), strict=True))
    ref_total = max(sum(reference.counts.values()) + reference.other_count, 1)
    cur_total = max(int(counts.sum()), 1)
    shown = sorted(
        set(reference.counts) | set(current),
        key=lambda c: -max(reference.counts.get(c, 0) / ref_total, current.get(c, 0) / cur_total),
    )[:MAX_CATEGORIES_SHOWN]
    return {
        "categories": shown,
        "reference": [reference.counts.get(c, 0) / ref_total for c in shown],
        "current": [current.get(c, 0) / cur_total for c in shown],
    }


def _fractions(counts: np.ndarray) -> list[float]:
    total = float(np.sum(counts))
    return [float(c) / total if total else 0.0 for c in counts]
