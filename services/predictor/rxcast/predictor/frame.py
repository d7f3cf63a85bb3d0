"""Feature values for a batch of entities, as plain NumPy columns.

Whatever the source (the feature service's online or historical answer, a
stored partition), the serving code sees one shape: the entity keys, one
column per feature with missing values already blanked (NaN for numbers, ""
for categories), and the newest event time among each row's present values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rxcast.runtime.errors import InvalidArgument


@dataclass(frozen=True)
class EntityBatch:
    """(store, medication) keys as two parallel str arrays."""

    store_ids: np.ndarray
    medication_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.store_ids)

    @classmethod
    def validated(cls, store_ids, medication_ids, field: str = "keys", max_rows: int = 0) -> EntityBatch:
        """Keys from a request, checked: equal lengths, non-empty ids, within `max_rows`."""
        stores = np.asarray(store_ids, dtype=str)
        medications = np.asarray(medication_ids, dtype=str)
        if stores.size != medications.size:
            raise InvalidArgument(
                f"{field}: store_ids and medication_ids differ in length ({stores.size} vs {medications.size})"
            )
        if stores.size == 0:
            raise InvalidArgument(f"{field}: at least one entity is required")
        if max_rows and stores.size > max_rows:
            raise InvalidArgument(f"{field}: {stores.size} entities exceed the limit of {max_rows} per request")
        for name, ids in (("store_ids", stores), ("medication_ids", medications)):
            blank = np.flatnonzero((np.strings.str_len(ids) == 0) | np.strings.isspace(ids))
            if blank.size:
                raise InvalidArgument(f"{field}.{name}[{int(blank[0])}]: must not be empty")
        return cls(stores, medications)


@dataclass(frozen=True)
class FeatureFrame:
    """Feature columns for `keys`, missing values blanked."""

    keys: EntityBatch
    #: name → values: float64 with NaN for missing, or str with "" for missing.
    columns: Mapping[str, np.ndarray]
    #: per row, the newest event time (ms since the epoch) of a present value; 0 when none.
    newest_event_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    def take(self, rows: np.ndarray) -> FeatureFrame:
        """The frame restricted to `rows` (an index or a boolean mask)."""
        return FeatureFrame(
            EntityBatch(self.keys.store_ids[rows], self.keys.medication_ids[rows]),
            {name: values[rows] for name, values in self.columns.items()},
            self.newest_event_ms[rows],
        )

    @classmethod
    def empty_features(cls, keys: EntityBatch) -> FeatureFrame:
        """A frame with no feature values at all (the feature service was unreachable)."""
        return cls(keys, {}, np.zeros(len(keys), dtype=np.int64))


def concat_frames(frames: list[FeatureFrame]) -> FeatureFrame:
    """One frame of all rows of `frames` (same columns), in order."""
    if len(frames) == 1:
        return frames[0]
    names = list(frames[0].columns)
    return FeatureFrame(
        EntityBatch(
            np.concatenate([f.keys.store_ids for f in frames]),
            np.concatenate([f.keys.medication_ids for f in frames]),
        ),
        {name: np.concatenate([f.columns[name] for f in frames]) for name in names},
        np.concatenate([f.newest_event_ms for f in frames]),
    )


def split_frame(frame: FeatureFrame, rows_per_part: int) -> list[FeatureFrame]:
    """`frame` cut into consecutive parts of at most `rows_per_part` rows."""
    total = len(frame)
    if total <= rows_per_part:
        return [frame]
    return [frame.take(slice(start, start + rows_per_part)) for start in range(0, total, rows_per_part)]
