"""The newest online row of every entity, held in memory as columns.

The feature service is the only writer of its feature views' online rows
(ingest pushes them, Materialize copies them from offline), so it can keep a
copy of what it wrote and answer online reads from it: one dict lookup per
requested entity and NumPy gathers per feature, instead of Feast's
one-row-per-feature SQLite reads and protobuf parses. Feast's online store
stays the system of record: every write goes to it first, and a view's copy
is (re)built from it at start and after a materialization.

Statuses follow `rxcast.feature.online.read_online` exactly (tested side by
side): NOT_FOUND without a row or without the feature in it, OUTSIDE_TTL for a
row older than the view's TTL, NULL_VALUE for a null or NaN value.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pandas as pd
from feast import FeatureStore

from rxcast.feature.catalog import VALUE_TYPES, ViewRead
from rxcast.feature.definitions import EVENT_TIMESTAMP
from rxcast.feature.offline import NOT_FOUND, NULL_VALUE, OUTSIDE_TTL, PRESENT
from rxcast.feature.online import NUMPY_TYPE, PLACEHOLDER, read_entities

# What a row holds for one feature.
_ABSENT, _NULL, _SET = 0, 1, 2
#: Entities per Feast read while (re)building a view.
LOAD_CHUNK = 5_000


class ViewCopy:
    """One feature view's newest row per entity: a slot per entity key, and per
    value type one 2-D block (slots x features), so a read is a few gathers
    whatever the number of features."""

    def __init__(self, name: str, join_keys: tuple[str, ...], types: dict[str, str]):
        self.name = name
        self.join_keys = join_keys
        self.types = dict(types)
        self._names = list(self.types)
        kinds = sorted(set(self.types.values()))
        self._kind_columns = {k: [f for f in self._names if self.types[f] == k] for k in kinds}
        # feature → (its value type, its column in that type's block, its column in the state block)
        self._where = {
            f: (self.types[f], self._kind_columns[self.types[f]].index(f), i) for i, f in enumerate(self._names)
        }
        self._slots: dict[tuple, int] = {}
        self._capacity = 0
        self._event_ms = np.zeros(0, dtype=np.int64)
        self._state = np.zeros((0, len(self._names)), dtype=np.int8)
        self._blocks = {k: np.zeros((0, len(c)), dtype=NUMPY_TYPE[k]) for k, c in self._kind_columns.items()}
        self._reads: dict[tuple[str, ...], tuple] = {}
        self._grow(1)  # never empty, so a read of unknown keys can gather slot 0
        # One writer (ingest, materialize) beside many readers: a read sees whole rows.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._slots)

    def covers(self, features: Sequence[str]) -> bool:
        return all(f in self.types for f in features)

    def _grow(self, count: int) -> None:
        if count <= self._capacity:
            return
        capacity = max(1024, 2 * self._capacity, count)

        def grown(array: np.ndarray, fill) -> np.ndarray:
            out = np.full((capacity, *array.shape[1:]), fill, dtype=array.dtype)
            out[: len(array)] = array
            return out

        self._event_ms = grown(self._event_ms, 0)
        self._state = grown(self._state, _ABSENT)
        self._blocks = {k: grown(b, PLACEHOLDER[k]) for k, b in self._blocks.items()}
        self._capacity = capacity

    def _slots_for_writing(self, keys: list[tuple]) -> np.ndarray:
        slots = self._slots
        out = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            slot = slots.get(key)
            if slot is None:
                slot = slots[key] = len(slots)
            out[i] = slot
        self._grow(len(slots))
        return out

    def write(
        self,
        keys: list[tuple],
        event_ms: np.ndarray,
        columns: dict[str, np.ndarray],
        absent: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Replace the rows of `keys` (a later key repeated wins). A feature missing from
        `columns`, or marked in `absent`, is absent from the row, as in a store row
        written without it; a null or NaN value is null."""
        with self._lock:
            slots = self._slots_for_writing(keys)
            self._event_ms[slots] = event_ms
            for feature, (kind, column, index) in self._where.items():
                given = columns.get(feature)
                if given is None:
                    self._state[slots, index] = _ABSENT
                    continue
                null = pd.isna(given)
                state = np.where(null, _NULL, _SET).astype(np.int8)
                if absent is not None and feature in absent:
                    state[absent[feature]] = _ABSENT
                self._state[slots, index] = state
                self._blocks[kind][slots, column] = np.where(null, PLACEHOLDER[kind], given) if null.any() else given

    def _read_plan(self, features: tuple[str, ...]) -> tuple:
        """For a feature list: its state columns, and per value type the block columns
        and the features' positions in the answer."""
        plan = self._reads.get(features)
        if plan is None:
            where = [self._where[f] for f in features]
            by_kind = {}
            for position, (kind, column, _) in enumerate(where):
                by_kind.setdefault(kind, ([], []))
                by_kind[kind][0].append(column)
                by_kind[kind][1].append(position)
            plan = self._reads[features] = (
                np.asarray([index for _, _, index in where], dtype=np.int64),
                {k: (np.asarray(c, dtype=np.int64), p) for k, (c, p) in by_kind.items()},
            )
        return plan

    def read(self, keys: dict[str, Sequence], part: ViewRead, now_ms: int) -> dict[str, tuple]:
        """(values, statuses, event ms) per feature of `part`, in request row order."""
        state_columns, kinds = self._read_plan(part.features)
        get = self._slots.get
        rows = len(keys[part.join_keys[0]])
        wanted = zip(*(keys[k] for k in part.join_keys))
        with self._lock:
            slots = np.fromiter((get(key, -1) for key in wanted), dtype=np.int64, count=rows)
            found = slots >= 0
            at = np.where(found, slots, 0)[:, None]
            event_ms = np.where(found, self._event_ms[at[:, 0]], 0)
            state = self._state[at, state_columns]
            gathered = {k: self._blocks[k][at, columns] for k, (columns, _) in kinds.items()}
        state[~found] = _ABSENT
        statuses = np.full(state.shape, PRESENT, dtype=np.int8)
        statuses[state == _NULL] = NULL_VALUE
        if part.ttl_ms:
            statuses[found & (now_ms - event_ms > part.ttl_ms)] = OUTSIDE_TTL
        statuses[state == _ABSENT] = NOT_FOUND
        statuses = statuses.T.copy()  # a contiguous row per feature
        missing = statuses != PRESENT
        out = {}
        for kind, (_, positions) in kinds.items():
            block = gathered[kind].T.copy()
            block[missing[positions]] = PLACEHOLDER[kind]
            for row, position in enumerate(positions):
                out[part.features[position]] = (block[row], statuses[position], event_ms)
        return out


class OnlineView:
    """In-memory copies of the feature views the service writes, read instead of Feast's online store."""

    def __init__(self, feast: FeatureStore):
        self._feast = feast
        self._views: dict[str, ViewCopy] = {}

    def copy_of(self, part: ViewRead) -> ViewCopy | None:
        """The view's copy when it can answer for `part` (built, same keys, every feature)."""
        copy = self._views.get(part.view.name)
        if copy is None or copy.join_keys != part.join_keys or not copy.covers(part.features):
            return None
        return copy

    def write(self, view: str, frame: pd.DataFrame) -> None:
        """Mirror rows just pushed to Feast's online store."""
        copy = self._views.get(view)
        if copy is None or not len(frame):
            return
        keys = list(zip(*(frame[k].tolist() for k in copy.join_keys)))
        event_ms = frame[EVENT_TIMESTAMP].dt.as_unit("ms").astype("int64").to_numpy()
        copy.write(keys, event_ms, {f: frame[f].to_numpy() for f in copy.types if f in frame})

    def load(self, part: ViewRead, entity_keys: list[tuple]) -> int:
        """(Re)build one view's copy from Feast's online store for the given entities;
        the new copy replaces the old one whole, so readers never see it half built."""
        copy = ViewCopy(part.view.name, part.join_keys, _types(part))
        provider = self._feast._get_provider()
        names = list(copy.types)
        for start in range(0, len(entity_keys), LOAD_CHUNK):
            chunk = entity_keys[start : start + LOAD_CHUNK]
            rows = read_entities(self._feast, provider, part, chunk, names)
            present = [(key, row) for key, row in zip(chunk, rows) if row is not None]
            if not present:
                continue
            event_ms = np.asarray([row[0] for _, row in present], dtype=np.int64)
            columns, absent = {}, {}
            for feature in names:
                stored = [row[1].get(feature) for _, row in present]
                columns[feature] = np.asarray([_raw(value) for value in stored], dtype=object)
                absent[feature] = np.asarray([value is None for value in stored], dtype=bool)
            copy.write([key for key, _ in present], event_ms, columns, absent)
        self._views[part.view.name] = copy
        return len(copy)


def _types(part: ViewRead) -> dict[str, str]:
    return {f.name: VALUE_TYPES[str(f.dtype)] for f in part.view.features if str(f.dtype) in VALUE_TYPES}


def _raw(value):
    """A Feast Value's Python value; None when unset or null."""
    if value is None:
        return None
    kind = value.WhichOneof("val")
    return None if kind is None or kind == "null_val" else getattr(value, kind)
