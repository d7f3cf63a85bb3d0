"""Vectorized lookups of string keys: set membership and key → value tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


class KeySet:
    """A fixed set of strings; membership for a whole array at once."""

    def __init__(self, keys: Iterable[str]):
        self._sorted = np.unique(np.asarray(list(keys), dtype=str))

    def __len__(self) -> int:
        return self._sorted.size

    def contains(self, keys: np.ndarray) -> np.ndarray:
        if self._sorted.size == 0:
            return np.zeros(len(keys), dtype=bool)
        position = np.minimum(np.searchsorted(self._sorted, keys), self._sorted.size - 1)
        return self._sorted[position] == keys


class KeyTable:
    """A fixed str → float table; values for a whole array at once, NaN where absent."""

    def __init__(self, mapping: Mapping[str, float] | None):
        items = [(str(k), float(v)) for k, v in (mapping or {}).items() if v is not None and np.isfinite(float(v))]
        items.sort()
        self._keys = np.asarray([k for k, _ in items], dtype=str)
        self._values = np.asarray([v for _, v in items], dtype=np.float64)

    def __len__(self) -> int:
        return self._keys.size

    def get(self, keys: np.ndarray) -> np.ndarray:
        if self._keys.size == 0:
            return np.full(len(keys), np.nan)
        position = np.minimum(np.searchsorted(self._keys, keys), self._keys.size - 1)
        return np.where(self._keys[position] == keys, self._values[position], np.nan)
