"""Every ingested inventory record, in memory, by entity and business day.

The record history is the input of the derived features and of the forecast
target. Records sit in blocks of BLOCK_DAYS consecutive days, each block a
dense (entities × days) array per field, so a window of days for many
entities is a handful of NumPy fancy-index reads, and history that spans
years only costs memory for the blocks that hold records. It is rebuilt at
start-up from the durable record log (rxcast.feature.record_log).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rxcast.feature.records import FLAGS, NUMBERS, RecordBatch

BLOCK_SHIFT = 5
BLOCK_DAYS = 1 << BLOCK_SHIFT
FIELDS = (*NUMBERS, *FLAGS, "present")


def _blank(field: str, shape) -> np.ndarray:
    return np.full(shape, np.nan) if field in NUMBERS else np.zeros(shape, dtype=bool)


@dataclass
class UpsertResult:
    codes: np.ndarray  # entity code per record of the (deduplicated) batch
    days: np.ndarray
    replaced: np.ndarray  # bool per record of the input batch: its key was stored before


@dataclass
class AttributeChange:
    """Rows of an attribute (store region, medication category) that a batch supplied."""

    ids: np.ndarray  # str
    days: np.ndarray  # business day the value was given on
    values: np.ndarray  # str
    latest: np.ndarray  # bool: this row is now the id's newest value (goes online)


class Attribute:
    """The newest value of a per-store or per-medication attribute."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[int, str]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._latest

    def __len__(self) -> int:
        return len(self._latest)

    def keys(self):
        return self._latest.keys()

    def get(self, key: str) -> str | None:
        found = self._latest.get(key)
        return None if found is None else found[1]

    @staticmethod
    def _given(ids, days, values) -> pd.DataFrame:
        """The values a batch gives, one per (id, day): the last one given."""
        text = np.char.strip(np.asarray(values, dtype=str))
        given = text != ""
        rows = pd.DataFrame(
            {"id": np.asarray(ids, dtype=object)[given], "day": np.asarray(days)[given], "value": text[given]}
        )
        return rows.drop_duplicates(["id", "day"], keep="last").reset_index(drop=True)

    def update(self, ids, days, values) -> None:
        """Take the values a batch gives (empty ones are ignored); the value of
        the latest business day wins, and later batches win ties."""
        rows = self._given(ids, days, values)
        newest = rows.sort_values(["id", "day"], kind="stable").drop_duplicates("id", keep="last")
        for key, day, value in zip(newest["id"], newest["day"], newest["value"]):
            current = self._latest.get(key)
            if current is None or day >= current[0]:
                self._latest[key] = (int(day), str(value))

    def change(self, ids, days, values) -> AttributeChange:
        """The rows a batch gives, flagged where they are the id's newest value now."""
        rows = self._given(ids, days, values)
        get = self._latest.get
        latest = np.fromiter(
            (get(i) == (int(d), v) for i, d, v in zip(rows["id"], rows["day"], rows["value"])),
            dtype=bool,
            count=len(rows),
        )
        return AttributeChange(
            rows["id"].to_numpy(dtype=object), rows["day"].to_numpy(dtype=np.int64),
            rows["value"].to_numpy(dtype=object), latest,
        )  # fmt: skip


class RecordHistory:
    """Records by (store, medication) entity code and epoch day; latest copy wins."""

    def __init__(self) -> None:
        self._codes: dict[tuple[str, str], int] = {}
        self._stores: list[str] = []
        self._medications: list[str] = []
        self._capacity = 0
        self._first_day = np.zeros(0, dtype=np.int64)
        self._last_day = np.zeros(0, dtype=np.int64)
        self._blocks: dict[int, dict[str, np.ndarray]] = {}
        self.regions = Attribute()
        self.categories = Attribute()
        self.record_count = 0
        self._max_day: int | None = None
        # Readers (online, historical, actuals) run beside one writer (ingest);
        # growing the arrays must not be seen half done.
        self._lock = threading.RLock()

    # -- entities ---------------------------------------------------------
    @property
    def entity_count(self) -> int:
        return len(self._stores)

    def entity_codes(self, store_ids, medication_ids) -> np.ndarray:
        """Codes of (store, medication) pairs; -1 for pairs never ingested."""
        with self._lock:
            return self._entity_codes(store_ids, medication_ids)

    def _entity_codes(self, store_ids, medication_ids) -> np.ndarray:
        get = self._codes.get
        return np.fromiter(
            (get(key, -1) for key in zip(np.asarray(store_ids).tolist(), np.asarray(medication_ids).tolist())),
            dtype=np.int64,
            count=len(store_ids),
        )

    def _add_entities(self, store_ids, medication_ids) -> np.ndarray:
        codes = self._entity_codes(store_ids, medication_ids)
        for i in np.flatnonzero(codes < 0):
            key = (str(store_ids[i]), str(medication_ids[i]))
            code = self._codes.get(key)
            if code is None:
                code = self._codes[key] = len(self._stores)
                self._stores.append(key[0])
                self._medications.append(key[1])
            codes[i] = code
        self._grow(len(self._stores))
        return codes

    def _grow(self, count: int) -> None:
        if count <= self._capacity:
            return
        capacity = max(64, self._capacity * 2, count)
        for block in self._blocks.values():
            for field, array in block.items():
                grown = _blank(field, (capacity, BLOCK_DAYS))
                grown[: self._capacity] = array
                block[field] = grown
        first = np.full(capacity, np.iinfo(np.int64).max, dtype=np.int64)
        last = np.full(capacity, np.iinfo(np.int64).min, dtype=np.int64)
        first[: self._capacity], last[: self._capacity] = self._first_day, self._last_day
        self._first_day, self._last_day, self._capacity = first, last, capacity

    def store_ids(self, codes: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self._stores, dtype=object)[codes]

    def medication_ids(self, codes: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self._medications, dtype=object)[codes]

    def first_day(self, codes: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._first_day[codes]

    def last_day(self, codes: np.ndarray) -> np.ndarray:
        with self._lock:
            return self._last_day[codes]

    def all_codes(self) -> np.ndarray:
        return np.arange(self.entity_count, dtype=np.int64)

    @property
    def max_day(self) -> int | None:
        """The latest business day of any record, or None when empty."""
        return self._max_day

    # -- records ----------------------------------------------------------
    def upsert(self, batch: RecordBatch) -> UpsertResult:
        """Store valid records; a later copy of a (store, medication, day) key replaces the earlier."""
        with self._lock:
            return self._upsert(batch)

    def _upsert(self, batch: RecordBatch) -> UpsertResult:
        codes = self._add_entities(batch.store_id, batch.medication_id)
        days = batch.business_day.astype(np.int64)
        key = codes * (1 << 32) + days
        # The last copy of each key within the batch is the one kept.
        _, reversed_first = np.unique(key[::-1], return_index=True)
        keep = np.sort(len(key) - 1 - reversed_first)
        first_copy = np.zeros(len(key), dtype=bool)
        first_copy[np.unique(key, return_index=True)[1]] = True
        stored_before = self._gather(codes, days)["present"]
        # A record replaces when its key was stored before or came earlier in the batch.
        replaced = stored_before | ~first_copy

        codes_k, days_k = codes[keep], days[keep]
        columns = {name: getattr(batch, name)[keep] for name in (*NUMBERS, *FLAGS)}
        columns["present"] = np.ones(len(keep), dtype=bool)
        blocks = days_k >> BLOCK_SHIFT
        offsets = days_k & (BLOCK_DAYS - 1)
        for block_id, rows in _groups(blocks):
            block = self._blocks.get(int(block_id))
            if block is None:
                block = self._blocks[int(block_id)] = {f: _blank(f, (self._capacity, BLOCK_DAYS)) for f in FIELDS}
            for field in FIELDS:
                block[field][codes_k[rows], offsets[rows]] = columns[field][rows]
        np.minimum.at(self._first_day, codes_k, days_k)
        np.maximum.at(self._last_day, codes_k, days_k)
        if len(days_k):
            latest = int(days_k.max())
            self._max_day = latest if self._max_day is None else max(self._max_day, latest)
        self.record_count += int(len(keep) - stored_before[keep].sum())
        return UpsertResult(codes_k, days_k, replaced)

    def gather(self, codes: np.ndarray, days: np.ndarray) -> dict[str, np.ndarray]:
        """Each field at (codes[i], days[i]), elementwise, for arrays of one shape
        (or broadcastable); missing records read as NaN / False."""
        with self._lock:
            return self._gather(codes, days)

    def _gather(self, codes: np.ndarray, days: np.ndarray) -> dict[str, np.ndarray]:
        codes, days = np.broadcast_arrays(np.asarray(codes, dtype=np.int64), np.asarray(days, dtype=np.int64))
        shape = codes.shape
        codes, days = codes.ravel(), days.ravel()
        out = {f: _blank(f, codes.size) for f in FIELDS}
        known = codes >= 0
        blocks = np.where(known, days >> BLOCK_SHIFT, np.iinfo(np.int64).min)
        offsets = days & (BLOCK_DAYS - 1)
        for block_id, rows in _groups(blocks):
            block = self._blocks.get(int(block_id))
            if block is None:
                continue
            for field in FIELDS:
                out[field][rows] = block[field][codes[rows], offsets[rows]]
        return {f: v.reshape(shape) for f, v in out.items()}


def _groups(keys: np.ndarray):
    """(key, row indices) for each distinct key, vectorized grouping."""
    if keys.size == 0:
        return
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for start, end in zip(starts, ends):
        yield sorted_keys[start], order[start:end]
