"""Logged predictions kept for matching the actuals that arrive later.

Rows are keyed by (store, medication, event time), hashed to 64 bits; the
newest `max_rows` rows are kept, and a key logged twice (say by the online
and the batch predictor) keeps its newest row. Appends are cheap; lookups
sort what was appended since the last one and search it, all vectorized.

`snapshot` and `restore` give the log as plain NumPy arrays (ids as codes
into arrays of strings), which the state store saves as .npz without pickle.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rxcast.drift.codec import StateError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_FIELDS = (
    "key",
    "seq",
    "store_id",
    "medication_id",
    "event_ms",
    "model_version",
    "prediction",
    "matched",
    "asked_ms",
    "segment",
)


def entity_time_keys(store_ids: np.ndarray, medication_ids: np.ndarray, event_ms: np.ndarray) -> np.ndarray:
    """64-bit keys of (store, medication, event time) rows."""
    stores = pd.util.hash_array(np.asarray(store_ids, dtype=object))
    medications = pd.util.hash_array(np.asarray(medication_ids, dtype=object))
    with np.errstate(over="ignore"):
        return (stores * _GOLDEN) ^ (
            medications + np.asarray(event_ms, dtype=np.int64).view(np.uint64) * _GOLDEN + np.uint64(1)
        )


class Matches(NamedTuple):
    """Per actual: whether a logged prediction matched, and its version, value and segment."""

    found: np.ndarray
    versions: np.ndarray
    predictions: np.ndarray
    segments: np.ndarray


class PredictionLog:
    def __init__(self, max_rows: int):
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._pending: list[dict[str, np.ndarray]] = []
        self._columns = _empty()
        self._next_seq = 0

    def __len__(self) -> int:
        with self._lock:
            return int(self._consolidated()["key"].size)

    def add(
        self,
        model_version: int,
        store_ids: np.ndarray,
        medication_ids: np.ndarray,
        event_ms: np.ndarray,
        predictions: np.ndarray,
        segments: np.ndarray | None = None,
    ) -> None:
        """Keep rows for their actuals; `segments` names each row's segment
        (its medication category: errors are judged per segment too)."""
        n = int(predictions.size)
        with self._lock:
            self._pending.append(
                {
                    "key": entity_time_keys(store_ids, medication_ids, event_ms),
                    "seq": np.arange(self._next_seq, self._next_seq + n, dtype=np.int64),
                    "store_id": np.asarray(store_ids, dtype=object),
                    "medication_id": np.asarray(medication_ids, dtype=object),
                    "event_ms": np.asarray(event_ms, dtype=np.int64),
                    "model_version": np.full(n, model_version, dtype=np.int64),
                    "prediction": np.asarray(predictions, dtype=float),
                    "matched": np.zeros(n, dtype=bool),
                    "asked_ms": np.zeros(n, dtype=np.int64),
                    "segment": np.full(n, "", dtype=object) if segments is None else np.asarray(segments, dtype=object),
                }
            )
            self._next_seq += n

    def _consolidated(self) -> dict[str, np.ndarray]:
        if self._pending:
            columns = {f: np.concatenate([self._columns[f], *(p[f] for p in self._pending)]) for f in _FIELDS}
            self._pending = []
            # Newest first within a key, then keep each key's first row.
            order = np.lexsort((-columns["seq"], columns["key"]))
            keys = columns["key"][order]
            first = np.ones(keys.size, dtype=bool)
            first[1:] = keys[1:] != keys[:-1]
            order = order[first]
            if order.size > self.max_rows:
                newest = np.sort(np.argsort(columns["seq"][order])[-self.max_rows :])
                order = order[newest]
            self._columns = {f: v[order] for f, v in columns.items()}
        return self._columns

    def awaiting_actuals(self) -> int:
        """Logged rows no actual has matched yet. Rows logged since the last
        merge count as they came (a row logged again counts twice until the
        next match merges them): a metric must not sort the log."""
        with self._lock:
            unmerged = sum(int(p["key"].size) for p in self._pending)
            return int(np.count_nonzero(~self._columns["matched"])) + unmerged

    def match(self, store_ids: np.ndarray, medication_ids: np.ndarray, event_ms: np.ndarray) -> Matches:
        """For each actual: whether a logged prediction matches it, and that
        prediction's model version, value and segment. Matched rows are marked."""
        return self.match_keys(entity_time_keys(store_ids, medication_ids, event_ms))

    def match_keys(self, query: np.ndarray) -> Matches:
        """`match` by keys from `entity_time_keys`."""
        with self._lock:
            columns = self._consolidated()
            keys = columns["key"]
            index = np.minimum(np.searchsorted(keys, query), max(keys.size - 1, 0))
            found = (keys[index] == query) if keys.size else np.zeros(query.size, dtype=bool)
            columns["matched"][index[found]] = True
            versions = np.where(found, columns["model_version"][index] if keys.size else 0, 0)
            predictions = np.where(found, columns["prediction"][index] if keys.size else np.nan, np.nan)
            segments = np.where(found, columns["segment"][index] if keys.size else "", "").astype(object)
        return Matches(found, versions.astype(np.int64), predictions.astype(float), segments)

    def unmatched(self, limit: int, asked_before_ms: int, now_ms: int) -> pd.DataFrame:
        """Up to `limit` of the oldest logged rows without an actual, not asked
        about since `asked_before_ms`; they are marked as asked at `now_ms`."""
        with self._lock:
            columns = self._consolidated()
            candidates = np.flatnonzero(~columns["matched"] & (columns["asked_ms"] <= asked_before_ms))
            chosen = candidates[np.argsort(columns["seq"][candidates], kind="stable")[:limit]]
            columns["asked_ms"][chosen] = now_ms
            return pd.DataFrame(
                {f: columns[f][chosen] for f in ("store_id", "medication_id", "event_ms", "model_version")}
            )

    def mark_matched(self, keys: np.ndarray) -> None:
        """Mark the rows of `keys` matched (keys not kept are ignored)."""
        with self._lock:
            columns = self._consolidated()
            if not columns["key"].size or not keys.size:
                return
            index = np.minimum(np.searchsorted(columns["key"], keys), columns["key"].size - 1)
            columns["matched"][index[columns["key"][index] == keys]] = True

    def snapshot(self) -> Snapshot:
        """The log as it stands, unaffected by later changes (the columns
        changed in place are copied; the others are replaced, never changed);
        cheap, so it can be taken under a caller's lock and encoded outside."""
        with self._lock:
            columns = dict(self._consolidated())
            columns["matched"] = columns["matched"].copy()
            columns["asked_ms"] = columns["asked_ms"].copy()
            return Snapshot(columns, self._next_seq)

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Replace the log with a snapshot's content (what `snapshot` gave)."""
        types = _types()
        columns = {}
        try:
            for field in _FIELDS:
                if field == "segment" and "segment_codes" not in arrays:  # a log kept before segments
                    columns[field] = np.full(arrays["key"].size, "", dtype=object)
                elif field in _STRINGS:
                    codes, values = arrays[f"{field}_codes"], arrays[f"{field}_values"]
                    if (
                        codes.dtype.kind != "i"
                        or values.dtype.kind != "U"
                        or codes.ndim != 1
                        or (codes.size and (codes.min() < 0 or codes.max() >= values.size))
                    ):
                        raise StateError(f"predictions.{field}: codes do not index its values")
                    columns[field] = values.astype(object)[codes]
                else:
                    array = arrays[field]
                    if array.ndim != 1 or array.dtype != np.dtype(types[field]):
                        raise StateError(f"predictions.{field}: expected a column of {np.dtype(types[field])}")
                    columns[field] = array
        except KeyError as exc:
            raise StateError(f"predictions: missing {exc.args[0]}") from None
        sizes = {v.size for v in columns.values()}
        if len(sizes) > 1:
            raise StateError(f"predictions: columns differ in length {sorted(sizes)}")
        if columns["key"].size > 1 and np.any(columns["key"][1:] <= columns["key"][:-1]):
            raise StateError("predictions: keys are not sorted and unique")
        next_seq = meta.get("next_seq")
        if isinstance(next_seq, bool) or not isinstance(next_seq, int) or next_seq < 0:
            raise StateError("predictions.next_seq: expected an integer >= 0")
        with self._lock:
            self._columns, self._pending = columns, []
            self._next_seq = max(next_seq, int(columns["seq"].max()) + 1 if columns["seq"].size else 0)
            if columns["key"].size > self.max_rows:  # a smaller bound configured now
                self._pending = [_empty()]
                self._consolidated()


_STRINGS = ("store_id", "medication_id", "segment")


class Snapshot:
    """A prediction log at one instant."""

    def __init__(self, columns: dict[str, np.ndarray], next_seq: int):
        self._columns = columns
        self.next_seq = next_seq

    @property
    def rows(self) -> int:
        return int(self._columns["key"].size)

    def meta(self) -> dict[str, Any]:
        return {"next_seq": self.next_seq, "rows": self.rows}

    def arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for .npz: no object arrays (ids as codes into string arrays)."""
        arrays = {f: self._columns[f] for f in _FIELDS if f not in _STRINGS}
        for field in _STRINGS:
            codes, uniques = pd.factorize(self._columns[field])
            arrays[f"{field}_codes"] = codes.astype(np.int64)
            arrays[f"{field}_values"] = np.asarray(uniques, dtype=str)
        return arrays


def _types() -> dict[str, Any]:
    return {
        "key": np.uint64,
        "seq": np.int64,
        "store_id": object,
        "medication_id": object,
        "event_ms": np.int64,
        "model_version": np.int64,
        "prediction": float,
        "matched": bool,
        "asked_ms": np.int64,
        "segment": object,
    }


def _empty() -> dict[str, np.ndarray]:
    types = _types()
    return {f: np.zeros(0, dtype=types[f]) for f in _FIELDS}
