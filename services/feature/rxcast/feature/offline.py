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

    keys: pd.Index  # one key string per entity; a row's code is its entity's position here
    entities: dict[str, np.ndarray]  # join-key values per entity (not per row: rows share them)
    codes: np.ndarray
    event_ms: np.ndarray
    created_us: np.ndarray
    columns: dict[str, np.ndarray]  # features

    def __len__(self) -> int:
        return len(self.codes)

    def codes_of(self, keys: np.ndarray) -> np.ndarray:
        return self.keys.get_indexer(keys).astype(np.int64)

    def row_columns(self) -> dict[str, np.ndarray]:
        """Join keys and features per row."""
        return {**{k: v[self.codes] for k, v in self.entities.items()}, **self.columns}


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

    def _table(self, columns: dict[str, np.ndarray], event_ms: np.ndarray, created_us) -> pa.Table:
        n = len(event_ms)
        arrays = []
        for field in self.schema:
            if field.name == EVENT_TIMESTAMP:
                values = pa.array(np.asarray(event_ms, dtype=np.int64) * 1000, type=pa.int64()).cast(_TIMESTAMP)
            elif field.name == CREATED_TIMESTAMP:
                created = np.broadcast_to(np.asarray(created_us, dtype=np.int64), (n,))
                values = pa.array(created, type=pa.int64()).cast(_TIMESTAMP)
            else:
                values = pa.array(columns[field.name], type=field.type, from_pandas=True)
            arrays.append(values)
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def write(self, seq: int, columns: dict[str, np.ndarray], event_ms: np.ndarray, created_us: int) -> int:
        """Write one batch's rows as file `seq`; returns the row count."""
        n = len(event_ms)
        if n:
            durable.write_parquet(self._table(columns, event_ms, created_us), durable.batch_path(self.directory, seq))
        return n

    def _files(self) -> list[tuple[str, int, Path]]:
        return durable.numbered_files(self.directory)

    def _compacted_upto(self, files) -> int:
        return max((seq for kind, seq, _ in files if kind == "upto"), default=0)

    def has_batch(self, seq: int) -> bool:
        """Whether batch `seq`'s rows are in the files (on their own or compacted)."""
        return durable.batch_path(self.directory, seq).exists() or seq <= self._compacted_upto(self._files())

    def compact_if_needed(self, threshold: int) -> bool:
        """Merge the files into one (latest copy of each row) once there are
        `threshold` of them, so readers open few files. The merged file is
        durable before the files it replaces go."""
        with self._lock:
            files = self._files()
            upto = self._compacted_upto(files)
            live = [(kind, seq, path) for kind, seq, path in files if kind == "batch" or seq == upto]
            if len(live) < threshold:
                return False
            rows = self._rows_locked()
            newest = max(seq for _, seq, _ in live)
            durable.write_parquet(
                self._table(rows.row_columns(), rows.event_ms, rows.created_us),
                durable.batch_path(self.directory, newest, "upto"),
            )
            for kind, seq, path in files:
                if seq <= newest and not (kind == "upto" and seq == newest):
                    path.unlink(missing_ok=True)
            durable.fsync_directory(self.directory)
            self._rows, self._seen = None, {}
            return True

    def rows(self) -> ViewRows:
        """The deduplicated rows of every file, reading only new files."""
        with self._lock:
            return self._rows_locked()

    def _rows_locked(self) -> ViewRows:
        files = {p.name: p for p in self.directory.glob("*.parquet") if not p.name.startswith("_")}
        stats = {name: (p.stat().st_size, p.stat().st_mtime_ns) for name, p in files.items()}
        # A file rewritten or gone (recovery, compaction): read everything again.
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
        """`base` plus the rows of new files, deduplicated and sorted. Entities
        keep their codes, so rows already in `base` are not re-keyed."""
        features = [f.name for f in self.schema if f.name not in (*self.join_keys, EVENT_TIMESTAMP, CREATED_TIMESTAMP)]
        keys = base.keys if base is not None else pd.Index([], dtype=object)
        entities = dict(base.entities) if base is not None else {k: np.zeros(0, dtype=object) for k in self.join_keys}
        parts = [(base.codes, base.event_ms, base.created_us, base.columns)] if base is not None and len(base) else []
        for table in tables:
            key_values = [table.column(k).to_numpy(zero_copy_only=False).astype(object) for k in self.join_keys]
            strings = entity_keys(key_values)
            codes = keys.get_indexer(strings).astype(np.int64)
            unknown = codes < 0
            if unknown.any():
                fresh, first = np.unique(strings[unknown].astype(str), return_index=True)
                rows = np.flatnonzero(unknown)[first]
                keys = keys.append(pd.Index(fresh.astype(object)))
                entities = {k: np.concatenate([entities[k], v[rows]]) for k, v in zip(self.join_keys, key_values)}
                codes[unknown] = keys.get_indexer(strings[unknown])
            columns = {}
            for name in features:
                column = table.column(name) if name in table.column_names else None
                dtype = self.schema.field(name).type
                if column is None:
                    columns[name] = np.full(len(table), np.nan if pa.types.is_floating(dtype) else None, dtype=object)
                else:
                    columns[name] = column.to_numpy(zero_copy_only=False)
            parts.append(
                (
                    codes,
                    _micros(table.column(EVENT_TIMESTAMP)) // 1000,
                    _micros(table.column(CREATED_TIMESTAMP)),
                    columns,
                )
            )
        if not parts:
            empty = {name: np.zeros(0) for name in features}
            return ViewRows(keys, entities, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), empty)
        codes = np.concatenate([p[0] for p in parts])
        event_ms = np.concatenate([p[1] for p in parts])
        created_us = np.concatenate([p[2] for p in parts])
        # Sorted by (entity, event time, created); the last copy of each (entity, event time) wins.
        order = np.lexsort((created_us, event_ms, codes))
        codes, event_ms = codes[order], event_ms[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (codes[1:] != codes[:-1]) | (event_ms[1:] != event_ms[:-1])
        keep = order[last]
        columns = {name: np.concatenate([p[3][name] for p in parts])[keep] for name in features}
        return ViewRows(keys, entities, codes[last], event_ms[last], created_us[keep], columns)


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(_TIMESTAMP).cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64)
