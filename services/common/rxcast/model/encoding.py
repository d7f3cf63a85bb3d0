"""Feature columns → the model's input matrix, the same way in training and serving."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rxcast.model.manifest import ModelManifest
from rxcast.runtime.errors import InvalidArgument


@dataclass(frozen=True)
class EncodedBatch:
    """A model input matrix and what was missing from it, per row."""

    matrix: np.ndarray  # (rows, features) float64, NaN = missing
    missing: np.ndarray  # (rows,) bool: some feature value was missing
    unseen: dict[str, np.ndarray]  # categorical feature → (rows,) bool: level unseen in training


def categorical_levels(values: np.ndarray) -> tuple[str, ...]:
    """The sorted distinct non-missing levels of a categorical column."""
    present = _as_str(values)
    return tuple(np.unique(present[present != ""]).tolist())


def _as_str(values: np.ndarray | Sequence) -> np.ndarray:
    """A unicode array with missing values (None, NaN) as ""."""
    array = np.asarray(values)
    if array.dtype.kind == "U":
        return array
    array = array.astype(object)
    return np.where(pd.isna(array), "", array).astype(str)


class FeatureEncoder:
    """Builds the model's input matrix in the manifest's feature order.

    Categorical levels are coded by their index in the manifest's sorted
    level list; a level never seen in training, or a missing one, becomes
    NaN, which LightGBM routes as missing rather than as some other level.
    """

    def __init__(self, manifest: ModelManifest):
        self.feature_names = manifest.feature_names
        self._levels = {name: np.asarray(levels, dtype=str) for name, levels in manifest.categorical_levels.items()}
        for name, levels in self._levels.items():
            if levels.size and np.any(levels[:-1] >= levels[1:]):
                raise InvalidArgument(f"manifest: categorical_levels[{name!r}] must be sorted and distinct")

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, name in enumerate(self.feature_names) if name in self._levels]

    def encode_categorical(self, name: str, values: np.ndarray | Sequence) -> tuple[np.ndarray, np.ndarray]:
        """Codes (float, NaN for missing/unseen) and an unseen-level mask for one column."""
        levels = self._levels[name]
        text = _as_str(values)
        if levels.size == 0:
            return np.full(text.shape, np.nan), text != ""
        position = np.searchsorted(levels, text)
        clipped = np.minimum(position, levels.size - 1)
        known = levels[clipped] == text
        codes = np.where(known, clipped, np.nan).astype(np.float64)
        return codes, ~known & (text != "")

    def encode(self, columns: Mapping[str, np.ndarray | Sequence]) -> EncodedBatch:
        """Encode columns named by the manifest's features (extra columns are ignored)."""
        absent = [name for name in self.feature_names if name not in columns]
        if absent:
            raise InvalidArgument(f"features missing from the input: {absent}")
        lengths = {len(columns[name]) for name in self.feature_names}
        if len(lengths) > 1:
            raise InvalidArgument(f"feature columns differ in length: {sorted(lengths)}")
        rows = lengths.pop()
        matrix = np.empty((rows, len(self.feature_names)), dtype=np.float64)
        unseen: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.feature_names):
            if name in self._levels:
                matrix[:, j], unseen[name] = self.encode_categorical(name, columns[name])
            else:
                try:
                    matrix[:, j] = np.asarray(columns[name], dtype=np.float64)
                except (TypeError, ValueError):
                    raise InvalidArgument(f"feature {name!r} must be numeric") from None
        matrix[~np.isfinite(matrix)] = np.nan
        missing = np.isnan(matrix).any(axis=1)
        return EncodedBatch(matrix, missing, unseen)
