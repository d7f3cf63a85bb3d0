"""The offline store's files, and point-in-time lookups over them.

Each feature view's batch source is a directory of parquet files, one per
ingest batch (`batch-<seq>.parquet`), which Feast reads as one FileSource.
A row is (join keys, event_timestamp, created_timestamp, features); a later
copy of the same (keys, event_timestamp) has a later created_timestamp and
wins, which is how Feast deduplicates too.

`OfflineView` keeps the deduplicated rows of a view in memory, sorted by
(entity, event time), and reads only files it has not seen yet. Lookups are
vectorized binary searches, so ~100k rows take milliseconds rather than a
Feast file-store join (which also drops rows, see `point_in_time`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rxcast.feature import durable
from rxcast.feature.definitions import CREATED_TIMESTAMP, EVENT_TIMESTAMP, FeatureDef

_ARROW_TYPES = {"Float64": pa.float64(), "Int64": pa.int64(), "Bool": pa.bool_(), "String": pa.string()}
_TIMESTAMP = pa.timestamp("us", tz="UTC")
KEY_SEPARATOR = "\x1f"
#: Bits of a lookup key that hold the event time in ms (good until 2109).
_TIME_BITS = 42

# Statuses of a lookup (the values of rxcast.feature.v1.FeatureStatus).
PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_TTL = 1, 2, 3, 4


def arrow_schema(join_keys: tuple[str, ...], features: tuple[FeatureDef, ...]) -> pa.Schema:
    return pa.schema(
        [(key, pa.string()) for key in join_keys]
        + [(EVENT_TIMESTAMP, _TIMESTAMP), (CREATED_TIMESTAMP, _TIMESTAMP)]
        + [(f.name, _ARROW_TYPES[str(f.dtype)]) for f in features]
    )


def entity_keys(columns: list[np.ndarray]) -> np.ndarray:
    """One string per entity from its join-key columns."""
    if len(columns) == 1:
        return np.asarray(columns[0], dtype=object)
    joined = pd.Series(np.asarray(columns[0], dtype=object), dtype=object)
    for column in columns[1:]:
        joined = joined + KEY_SEPARATOR + pd.Series(np.asarray(column, dtype=object), dtype=object)
    return joined.to_numpy(dtype=object)


def point_in_time(
    table_codes: np.ndarray, table_ms: np.ndarray, query_codes: np.ndarray, query_ms: np.ndarray, ttl_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each query (entity code, instant), the index of the table row with
    the same entity and the latest event time at or before the instant.

    The table is sorted by (code, ms). Returns (row index or -1, status):
    NOT_FOUND without such a row, OUTSIDE_TTL when it is older than `ttl_ms`
    (0 = no limit), PRESENT otherwise. Unlike Feast's file-store join, a row
    is never dropped from the result.
    """
    table_key = (table_codes << _TIME_BITS) + table_ms
    query_key = (np.maximum(query_codes, 0) << _TIME_BITS) + np.maximum(query_ms, 0)
    found = np.searchsorted(table_key, query_key, side="right") - 1
    clipped = np.maximum(found, 0)
    ok = (found >= 0) & (query_codes >= 0) & (query_ms >= 0)
    ok &= table_codes[clipped] == query_codes if table_codes.size else np.zeros_like(ok)
    index = np.where(ok, found, -1)
    status = np.where(ok, PRESENT, NOT_FOUND)
    if ttl_ms > 0 and table_ms.size:
        stale = ok & (query_ms - table_ms[clipped] > ttl_ms)
        status = np.where(stale, OUTSIDE_TTL, status)
    return index, status


@dataclass
class ViewRows:
    """A view's deduplicated offline rows, sorted by (entity, event time)."""

    keys: pd.Index  # entity key strings; a row's code is its position here
    codes: np.ndarray
    event_ms: np.ndarray
    created_us: np.ndarray
    columns: dict[str, np.ndarray]  # join keys and features

    def __len__(self) -> int:
        return len(self.codes)

    def codes_of(self, keys: np.ndarray) -> np.ndarray:
        return self.keys.get_indexer(keys).astype(np.int64)


class OfflineView:
    """One feature view's parquet directory: durable writes and cached reads."""

    def __init__(self, name: str, directory: Path, join_keys: tuple[str, ...], features: tuple[FeatureDef, ...]):
        self.name = name
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        durable.remove_scratch(self.directory)
        self.join_keys = join_keys
        self.schema = arrow_schema(join_keys, features)
        self._seen: dict[str, tuple[int, int]] = {}
        self._rows: ViewRows | None = None
        self._lock = threading.Lock()

    def write(self, seq: int, columns: dict[str, np.ndarray], event_ms: np.ndarray, created_us: int) -> int:
        """Write one batch's rows as file `seq`; returns the row count."""
        n = len(event_ms)
        if n == 0:
            return 0
        arrays = []
        for field in self.schema:
            if field.name == EVENT_TIMESTAMP:
                values = pa.array(np.asarray(event_ms, dtype=np.int64) * 1000, type=pa.int64()).cast(_TIMESTAMP)
            elif field.name == CREATED_TIMESTAMP:
                values = pa.array(np.full(n, created_us, dtype=np.int64), type=pa.int64()).cast(_TIMESTAMP)
            else:
                values = pa.array(columns[field.name], type=field.type, from_pandas=True)
            arrays.append(values)
        durable.write_parquet(pa.Table.from_arrays(arrays, schema=self.schema), self.directory / f"batch-{seq:012d}.parquet")
        return n

    def has_batch(self, seq: int) -> bool:
        return (self.directory / f"batch-{seq:012d}.parquet").exists()

    def rows(self) -> ViewRows:
        """The deduplicated rows of every file, reading only new files."""
        with self._lock:
            files = {p.name: p for p in self.directory.glob("*.parquet") if not p.name.startswith("_")}
            stats = {name: (p.stat().st_size, p.stat().st_mtime_ns) for name, p in files.items()}
            changed = any(stats.get(name) != seen for name, seen in self._seen.items())
            if changed or self._rows is None:
                self._seen, base = {}, None
            else:
                base = self._rows
            new = sorted(name for name in files if name not in self._seen)
            if new or base is None:
                tables = [pq.read_table(files[name]) for name in new]
                self._rows = self._merge(base, tables)
                self._seen.update({name: stats[name] for name in new})
            return self._rows

    def _merge(self, base: ViewRows | None, tables: list[pa.Table]) -> ViewRows:
        frames = []
        if base is not None and len(base):
            frame = pd.DataFrame(base.columns)
            frame["_event_ms"], frame["_created_us"] = base.event_ms, base.created_us
            frames.append(frame)
        for table in tables:
            table = table.cast(self.schema) if set(table.column_names) == set(self.schema.names) else table
            frame = table.drop_columns([EVENT_TIMESTAMP, CREATED_TIMESTAMP]).to_pandas()
            frame["_event_ms"] = _micros(table.column(EVENT_TIMESTAMP)) // 1000
            frame["_created_us"] = _micros(table.column(CREATED_TIMESTAMP))
            frames.append(frame)
        if not frames:
            frame = self.schema.empty_table().drop_columns([EVENT_TIMESTAMP, CREATED_TIMESTAMP]).to_pandas()
            frame["_event_ms"] = np.zeros(0, np.int64)
            frame["_created_us"] = np.zeros(0, np.int64)
            frames.append(frame)
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        keys = entity_keys([frame[k].to_numpy(dtype=object) for k in self.join_keys])
        codes, uniques = pd.factorize(keys)
        frame["_code"] = codes
        # Latest created copy of each (entity, event time) wins.
        frame = frame.sort_values(["_code", "_event_ms", "_created_us"], kind="stable")
        frame = frame.drop_duplicates(["_code", "_event_ms"], keep="last")
        columns = {c: frame[c].to_numpy() for c in frame.columns if not c.startswith("_")}
        return ViewRows(
            keys=pd.Index(uniques),
            codes=frame["_code"].to_numpy(dtype=np.int64),
            event_ms=frame["_event_ms"].to_numpy(dtype=np.int64),
            created_us=frame["_created_us"].to_numpy(dtype=np.int64),
            columns=columns,
        )


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(_TIMESTAMP).cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
