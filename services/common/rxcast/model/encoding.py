"""Feature columns → the model's input matrix, the same way in training and serving."""

from __future__ import annotations

import math
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


def valid_codes(codes: np.ndarray, level_counts: int | np.ndarray) -> np.ndarray:
    """Which `codes` name a level: whole numbers in [0, level count). NaN, ±inf,
    fractions (2.5), negatives (-0.5) and codes past the last level (99) do not.
    `level_counts` is one count, or one per column of a 2-D `codes`."""
    return (codes >= 0) & (codes < level_counts) & (np.floor(codes) == codes)


def code_levels(codes: np.ndarray, levels: Sequence[str]) -> np.ndarray:
    """The level each code names (its index in `levels`), "" where it names none."""
    table = np.asarray((*levels, ""), dtype=str)
    codes = np.asarray(codes, dtype=np.float64)
    return table[np.where(valid_codes(codes, len(levels)), codes, len(levels)).astype(np.int64)]


#: check_matrix looks at batches up to this many rows in Python floats: the
#: half-dozen NumPy calls of the vectorized check cost more than a loop over
#: so few values (measured: 1 row ~1 µs against ~6 µs).
_SCALAR_CHECK_ROWS = 8


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
        # For check_matrix, resolved once per version: the categorical columns and their level counts.
        self._code_columns = np.asarray(self.categorical_indices, dtype=np.intp)
        counts = [self._levels[self.feature_names[j]].size for j in self._code_columns]
        self._level_counts = np.asarray(counts, dtype=np.float64)
        self._last_codes = self._level_counts - 1.0
        self._code_checks = [(int(j), float(n)) for j, n in zip(self._code_columns, counts, strict=True)]

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

    def check_matrix(self, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """A matrix already in this encoding (float64, rows × features, e.g. a
        caller's own), held to the rule `encode` applies: a value that is not
        finite, or a categorical code that is not a whole number naming a level
        (`valid_codes`), is missing. LightGBM would otherwise cut 2.5 to level 2,
        read -0.5 as level 0 and route 99 as some other level.

        Returns the matrix to predict with (`matrix` itself when every value is
        valid or already NaN; otherwise a copy with the invalid values NaN) and
        each row's missing flag, None when no row has one (the common case,
        which then costs the caller no mask). Never writes to `matrix`, which
        may be a read-only view of a request's bytes."""
        if self._all_valid(matrix):  # the common case, told cheaply
            return matrix, None
        invalid = ~np.isfinite(matrix)
        if self._code_columns.size:
            codes = matrix[:, self._code_columns]
            invalid[:, self._code_columns] |= ~valid_codes(codes, self._level_counts)
        missing = invalid.any(axis=1)
        if not missing.any():  # only a sum that overflowed brought it here
            return matrix, None
        if not np.isnan(matrix[invalid]).all():
            matrix = np.where(invalid, np.nan, matrix)
        return matrix, missing

    def _all_valid(self, matrix: np.ndarray) -> bool:
        """Whether every value of `matrix` is finite and every categorical code valid."""
        if matrix.shape[0] <= _SCALAR_CHECK_ROWS:
            for row in matrix.tolist():
                # A finite sum means finite values; one that overflows only sends
                # a valid row down check_matrix's exact path.
                if not math.isfinite(sum(row)):
                    return False
                for column, count in self._code_checks:
                    code = row[column]
                    if not (0.0 <= code < count and code.is_integer()):
                        return False
            return True
        if not np.isfinite(matrix).all():
            return False
        if not self._code_columns.size:
            return True
        if not self._level_counts.all():  # a categorical without levels: no code is valid
            return matrix.shape[0] == 0
        # valid_codes in fewer NumPy calls, each of which costs more than the
        # arithmetic on a request's rows: a finite c is a whole number in
        # [0, count) exactly when clipping floor(c) to [0, count - 1] gives c back.
        codes = matrix.take(self._code_columns, axis=1)
        nearest = np.floor(codes)
        np.maximum(nearest, 0.0, out=nearest)
        np.minimum(nearest, self._last_codes, out=nearest)
        return bool((nearest == codes).all())
