"""The inventory feature store: what the feature service does, free of gRPC.

Ingest: validate → append to the durable record log → update the in-memory
record history → derive the affected `inventory_daily` rows (one code path,
rxcast.feature.derive) → write them, and changed attributes, to the offline
files and to the online store. A batch is acknowledged only after all of
that; a crash in between is finished at the next start (the offline
`inventory_daily` file of a batch is written last and marks it complete).

Reads: online from an in-memory copy of the newest online row of each entity
(rxcast.feature.online_view; written through to Feast's online store, rebuilt
from it at start and after Materialize), historical as point-in-time lookups
over the offline files, actuals (the forecast target) from the record
history.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from prometheus_client import Counter, Gauge, Histogram

from rxcast.feature import feast_repo, totals
from rxcast.feature.catalog import Catalog, ReadPlan, Schema, ViewRead
from rxcast.feature.config import FeatureConfig
from rxcast.feature.definitions import (
    CREATED_TIMESTAMP,
    EVENT_TIMESTAMP,
    INVENTORY_FEATURES,
    INVENTORY_VIEW,
    MEDICATION_FEATURES,
    MEDICATION_VIEW,
    STORE_FEATURES,
    STORE_VIEW,
    view_directory,
)
from rxcast.feature.derive import DerivedRows, affected_ranges, derive_rows
from rxcast.feature.history import AttributeChange, RecordHistory
from rxcast.feature.offline import NOT_FOUND, NULL_VALUE, PRESENT, OfflineView, entity_keys, point_in_time
from rxcast.feature.online import NUMPY_TYPE, PLACEHOLDER, Column, push_online, read_online
from rxcast.feature.online_view import OnlineView
from rxcast.feature.record_log import RecordLog
from rxcast.feature.records import Limits, RecordBatch, RecordError, validate
from rxcast.model import timebase
from rxcast.runtime import context, validation
from rxcast.runtime.disk import DiskGuard, is_disk_full
from rxcast.runtime.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, ResourceExhausted
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.feature.store")

RECORDS_ACCEPTED = Counter("rxcast_feature_records_accepted_total", "Inventory records stored (new or replacing).")
RECORDS_REPLACED = Counter("rxcast_feature_records_replaced_total", "Accepted records that replaced a stored copy.")
RECORDS_REJECTED = Counter("rxcast_feature_records_rejected_total", "Inventory records rejected by validation.")
DERIVED_ROWS = Counter("rxcast_feature_derived_rows_total", "inventory_daily rows derived and written offline.")
INGEST_SECONDS = Histogram(
    "rxcast_feature_ingest_seconds", "Time to store one ingest batch, by stage.", ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)  # fmt: skip
ENTITIES = Gauge("rxcast_feature_entities", "(store, medication) pairs with records.")
INGEST_IN_FLIGHT = Gauge(
    "rxcast_feature_ingest_records_in_flight", "Records of ingest calls being stored or waiting for the ingest lock."
)
LATEST_DAY = Gauge("rxcast_feature_latest_business_day_seconds", "End of the latest business day ingested, Unix time.")
REGISTRY_CHANGES = Counter(
    "rxcast_feature_registry_changes_total", "Feature definition changes picked up by a refresh."
)
HISTORICAL_ROWS = Counter("rxcast_feature_historical_rows_total", "Rows returned by historical retrievals.")
ONLINE_NOT_FOUND = Counter("rxcast_feature_online_values_not_found_total", "Online values served as NOT_FOUND.")

MAX_HORIZON_DAYS = 366
JOIN_KEYS = ("store_id", "medication_id")


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    replaced: int
    errors: list[RecordError]


@dataclass(frozen=True)
class HistoricalChunk:
    row_offset: int
    total_rows: int
    store_ids: np.ndarray
    medication_ids: np.ndarray
    event_ms: np.ndarray
    columns: list[Column]


@dataclass(frozen=True)
class Actuals:
    values: np.ndarray
    statuses: np.ndarray
    horizon_days: int


@dataclass(frozen=True)
class Materialized:
    views: list[str]
    start: datetime
    end: datetime
    rows_written: int


def _now_us() -> int:
    return time.time_ns() // 1000


class _Clock:
    """Strictly increasing created_timestamp values (µs), so a later batch's
    copy of a row always wins over an earlier one."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, _now_us())
            return self._last


def _lock_data_dir(data_dir: Path):
    handle = open(data_dir / ".lock", "a+")  # noqa: SIM115 - held open (and locked) for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FailedPrecondition(f"data_dir {str(data_dir)!r} is in use by another feature service process") from None
    return handle


class InventoryFeatureStore:
    """Ingest and serve inventory features on a Feast store under one data directory."""

    def __init__(self, config: FeatureConfig, feast_store):
        self.config = config
        self.data_dir = Path(config.data_dir).resolve()
        if not 1 <= config.horizon_days <= MAX_HORIZON_DAYS:
            raise InvalidArgument(f"horizon_days: must be within 1..{MAX_HORIZON_DAYS}, got {config.horizon_days}")
        self.earliest_day = timebase.day_number(config.earliest_business_day, "earliest_business_day")
        self.feast = feast_store
        self.catalog = Catalog(feast_store)
        self.history = RecordHistory()
        self.log = RecordLog(self.data_dir / "records", compact_after=config.compact_after)
        self.views = {
            INVENTORY_VIEW: OfflineView(INVENTORY_VIEW, view_directory(self.data_dir, INVENTORY_VIEW), JOIN_KEYS, INVENTORY_FEATURES),
            MEDICATION_VIEW: OfflineView(MEDICATION_VIEW, view_directory(self.data_dir, MEDICATION_VIEW), ("medication_id",), MEDICATION_FEATURES),
            STORE_VIEW: OfflineView(STORE_VIEW, view_directory(self.data_dir, STORE_VIEW), ("store_id",), STORE_FEATURES),
        }  # fmt: skip
        self.disk = DiskGuard(self.data_dir, config.min_free_mb * 1024 * 1024)
        self.online_view = OnlineView(feast_store) if config.online_view else None
        self._ingest_lock = threading.Lock()
        self._clock = _Clock()
        self._seq = self.log.last_seq()
        self._dir_lock = None

    @classmethod
    def open(cls, config: FeatureConfig) -> InventoryFeatureStore:
        """Lock the data directory, open Feast, rebuild history, finish interrupted batches."""
        data_dir = Path(config.data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        dir_lock = _lock_data_dir(data_dir)
        try:
            set_aside = feast_repo.set_aside_unreadable(data_dir)
            feast_store = feast_repo.open_store(data_dir, config.online_store, config.redis_url)
            store = cls(config, feast_store)
            store._dir_lock = dir_lock
            store._recover()
            if set_aside:
                # A new registry or online store knows no materialization: copy every view's latest values again.
                store.materialize(datetime(1970, 1, 1, tzinfo=UTC), None, [])
        except BaseException:
            dir_lock.close()
            raise
        return store

    def close(self) -> None:
        if self._dir_lock is not None:
            self._dir_lock.close()
            self._dir_lock = None

    # -- start-up ---------------------------------------------------------
    def _recover(self) -> None:
        started = time.monotonic()
        pending = []
        batches = 0
        for seq, batch in self.log.read():
            self._remember(batch)
            batches += 1
            if not self.views[INVENTORY_VIEW].has_batch(seq) and self.log.is_batch_file(seq):
                pending.append((seq, batch))
        for seq, batch in pending:
            # Derived from the full history, so later batches are already reflected.
            self._publish(seq, batch, self._clock.next())
        self._update_gauges()
        log.info(
            "history_loaded", batches=batches, records=self.history.record_count, entities=self.history.entity_count,
            recovered_batches=len(pending), seconds=round(time.monotonic() - started, 3),
        )  # fmt: skip
        for name in self.views:
            self._load_online_view(name)

    def _entity_keys(self, view: str) -> list[tuple]:
        """Every entity of a view the service has written online."""
        if view == INVENTORY_VIEW:
            codes = self.history.all_codes()
            return list(zip(self.history.store_ids(codes).tolist(), self.history.medication_ids(codes).tolist()))
        attribute = self.history.regions if view == STORE_VIEW else self.history.categories
        return [(key,) for key in sorted(attribute.keys())]

    def _load_online_view(self, name: str) -> None:
        """(Re)build the in-memory copy of one view from Feast's online store."""
        if self.online_view is None or name not in self.views:
            return
        started = time.monotonic()
        view = self.catalog.view(name)
        part = ViewRead(view, tuple(c.name for c in view.entity_columns), (), 0)
        entities = self.online_view.load(part, self._entity_keys(name))
        log.info("online_view_loaded", view=name, entities=entities, seconds=round(time.monotonic() - started, 3))

    def _remember(self, batch: RecordBatch):
        """Put records into the in-memory history."""
        result = self.history.upsert(batch)
        self.history.regions.update(batch.store_id, batch.business_day, batch.store_region)
        self.history.categories.update(batch.medication_id, batch.business_day, batch.medication_category)
        return result

    def _update_gauges(self) -> None:
        ENTITIES.set(self.history.entity_count)
        if self.history.max_day is not None:
            LATEST_DAY.set(timebase.day_end_ms(self.history.max_day) / 1000)

    # -- ingest -----------------------------------------------------------
    def ingest(self, columns: dict, nan_given: dict[str, np.ndarray] | None = None) -> IngestResult:
        """Validate and store records given as columns (see RecordBatch.from_columns);
        `nan_given` marks numbers the sender set to NaN (rejected), as opposed to missing."""
        n = len(columns.get("store_id", ()))
        if n > self.config.max_batch_records:
            raise ResourceExhausted(
                f"records: {n} records in one call, the limit is {self.config.max_batch_records}; split the batch"
            )
        INGEST_IN_FLIGHT.inc(n)
        try:
            return self._ingest(columns, nan_given, n)
        finally:
            INGEST_IN_FLIGHT.dec(n)

    def _ingest(self, columns: dict, nan_given: dict[str, np.ndarray] | None, n: int) -> IngestResult:
        """`ingest` once the batch is within the size limit."""
        started = time.monotonic()
        batch, day_parsed = RecordBatch.from_columns(columns)
        limits = Limits(timebase.today(), self.config.future_tolerance_days, self.earliest_day)
        with self._ingest_lock:
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                # Waited out the caller's deadline behind another batch: store nothing.
                raise DeadlineExceeded(
                    "the call's deadline passed before the batch could be stored; nothing was stored"
                )
            valid, errors = validate(
                batch, day_parsed, limits, self.history.regions.keys(), self.history.categories.keys(),
                day_texts=np.asarray(columns["business_day"], dtype=object) if n else None, nan_given=nan_given,
            )  # fmt: skip
            RECORDS_REJECTED.inc(int((~valid).sum()))
            good = batch.take(np.flatnonzero(valid))
            if len(good) == 0:
                return IngestResult(0, 0, errors)
            self.disk.require_space("the ingest")
            try:
                self._seq += 1
                seq = self._seq
                with INGEST_SECONDS.labels("log").time():
                    self.log.append(seq, good)
                result = self._remember(good)
                with INGEST_SECONDS.labels("publish").time():
                    self._publish(seq, good, self._clock.next())
                with INGEST_SECONDS.labels("compact").time():
                    self.log.compact_if_needed()
                    for view in self.views.values():
                        view.compact_if_needed(self.config.compact_after)
            except Exception as exc:
                if is_disk_full(exc):
                    raise self.disk.write_failed(exc, "writing the batch") from None
                raise
            replaced = int(result.replaced.sum())
            RECORDS_ACCEPTED.inc(len(good))
            RECORDS_REPLACED.inc(replaced)
            self._update_gauges()
        log.info(
            "ingested", batch=seq, accepted=len(good), replaced=replaced, rejected=n - len(good),
            seconds=round(time.monotonic() - started, 3),
        )  # fmt: skip
        return IngestResult(len(good), replaced, errors)

    def _publish(self, seq: int, batch: RecordBatch, created_us: int) -> None:
        """Write a stored batch's consequences offline and online; the
        inventory_daily file goes last and marks the batch complete."""
        history = self.history
        regions = history.regions.change(batch.store_id, batch.business_day, batch.store_region)
        categories = history.categories.change(batch.medication_id, batch.business_day, batch.medication_category)
        codes = history.entity_codes(batch.store_id, batch.medication_id)
        entity, start, end = affected_ranges(history, codes, batch.business_day.astype(np.int64))
        derived = derive_rows(history, entity, start, end)
        DERIVED_ROWS.inc(len(derived))

        self._write_attribute(seq, STORE_VIEW, "store_id", "store_region", regions, created_us)
        self._write_attribute(seq, MEDICATION_VIEW, "medication_id", "medication_category", categories, created_us)
        inventory = self._inventory_columns(derived)
        newest = derived.days == history.last_day(derived.codes)
        online = pd.DataFrame({name: values[newest] for name, values in inventory.items()})
        online[EVENT_TIMESTAMP] = pd.to_datetime(timebase.day_end_ms(derived.days[newest]), unit="ms", utc=True)
        online[CREATED_TIMESTAMP] = pd.to_datetime(created_us, unit="us", utc=True)
        self._push_online(INVENTORY_VIEW, online)
        self.views[INVENTORY_VIEW].write(seq, inventory, timebase.day_end_ms(derived.days), created_us)

    def _inventory_columns(self, derived: DerivedRows) -> dict[str, np.ndarray]:
        return {
            "store_id": self.history.store_ids(derived.codes),
            "medication_id": self.history.medication_ids(derived.codes),
            **derived.features,
        }

    def _write_attribute(self, seq, view, key, feature, change: AttributeChange, created_us) -> None:
        if len(change.ids) == 0:
            return
        event_ms = timebase.day_end_ms(change.days)
        self.views[view].write(seq, {key: change.ids, feature: change.values}, event_ms, created_us)
        online = pd.DataFrame({key: change.ids[change.latest], feature: change.values[change.latest]})
        online[EVENT_TIMESTAMP] = pd.to_datetime(event_ms[change.latest], unit="ms", utc=True)
        online[CREATED_TIMESTAMP] = pd.to_datetime(created_us, unit="us", utc=True)
        self._push_online(view, online)

    def _push_online(self, view: str, frame: pd.DataFrame) -> None:
        """Write rows to Feast's online store, then to the in-memory copy."""
        push_online(self.feast, view, frame)
        if self.online_view is not None:
            self.online_view.write(view, frame)

    # -- schema and registry ----------------------------------------------
    def refresh_registry(self) -> bool:
        changed = self.catalog.refresh()
        if changed:
            REGISTRY_CHANGES.inc()
            log.info("registry_changed")
        return changed

    def schema(self) -> Schema:
        return self.catalog.schema()

    def plan(self, features: Sequence[str], feature_service: str) -> ReadPlan:
        plan = self.catalog.plan(tuple(features), feature_service)
        for part in plan.parts:
            unknown = [k for k in part.join_keys if k not in JOIN_KEYS]
            if unknown:
                raise FailedPrecondition(
                    f"feature view {part.view.name!r} is keyed by {unknown}, which requests cannot supply"
                )
        return plan

    # -- online -----------------------------------------------------------
    def _ttl_now_ms(self) -> int:
        if self.config.ttl_clock == "data" and self.history.max_day is not None:
            return int(timebase.day_end_ms(self.history.max_day))
        return time.time_ns() // 1_000_000

    def online(
        self, store_ids, medication_ids, features: Sequence[str] = (), feature_service: str = ""
    ) -> list[Column]:
        store_ids, medication_ids = list(store_ids), list(medication_ids)
        if len(store_ids) != len(medication_ids):
            raise InvalidArgument(f"keys: {len(store_ids)} store_ids but {len(medication_ids)} medication_ids")
        if len(store_ids) > self.config.max_online_entities:
            raise ResourceExhausted(
                f"keys: {len(store_ids)} entities in one call, the limit is {self.config.max_online_entities}"
            )
        validation.identifiers(store_ids, "keys.store_ids")
        validation.identifiers(medication_ids, "keys.medication_ids")
        plan = self.plan(features, feature_service)
        columns = read_online(
            self.feast,
            plan,
            {"store_id": store_ids, "medication_id": medication_ids},
            self._ttl_now_ms(),
            self.online_view,
        )
        if columns:
            ONLINE_NOT_FOUND.inc(int((columns[0].statuses == NOT_FOUND).sum()))
        return columns

    # -- historical -------------------------------------------------------
    def daily_grid(self, start_day: str, end_day: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every entity known on or before each day of [start, end], as of each day's end."""
        start = timebase.day_number(start_day, "daily_grid.start_day")
        end = timebase.day_number(end_day, "daily_grid.end_day")
        if end < start:
            raise InvalidArgument(f"daily_grid: end_day {end_day} is before start_day {start_day}")
        codes = self.history.all_codes()
        stores, medications = self.history.store_ids(codes), self.history.medication_ids(codes)
        order = np.lexsort((medications.astype(str), stores.astype(str)))
        codes, stores, medications = codes[order], stores[order], medications[order]
        # Rows are counted per entity before any are built: a span of
        # millennia costs this much, not a (days x entities) matrix.
        since = np.maximum(self.history.first_day(codes), start)
        counts = np.clip(end - since + 1, 0, None)
        total = int(counts.sum())
        self._check_rows(total)
        entity_index = np.repeat(np.arange(len(codes)), counts)
        firsts = np.cumsum(counts) - counts
        days = since[entity_index] + np.arange(total, dtype=np.int64) - firsts[entity_index]
        day_major = np.lexsort((entity_index, days))
        entity_index, days = entity_index[day_major], days[day_major]
        return stores[entity_index], medications[entity_index], timebase.day_end_ms(days)

    def _check_rows(self, total: int) -> None:
        if total > self.config.max_historical_rows:
            raise ResourceExhausted(
                f"the query covers {total} rows, the limit is {self.config.max_historical_rows}; narrow it"
            )

    def historical(
        self,
        store_ids,
        medication_ids,
        event_ms,
        features: Sequence[str] = (),
        feature_service: str = "",
        chunk_rows: int = 0,
    ) -> Iterator[HistoricalChunk]:
        """Point-in-time correct values for rows (entity, instant), in chunks."""
        store_ids, medication_ids = _entity_columns(store_ids, medication_ids, "rows.keys")
        event_ms = np.asarray(event_ms, dtype=np.int64)
        if len(event_ms) != len(store_ids):
            raise InvalidArgument(f"rows.event_times_unix_ms: {len(event_ms)} timestamps for {len(store_ids)} entities")
        if len(event_ms) and event_ms.min() < 0:
            raise InvalidArgument("rows.event_times_unix_ms: must be >= 0 (ms since the Unix epoch)")
        self._check_rows(len(event_ms))
        chunk = chunk_rows or self.config.chunk_rows
        if not 0 < chunk <= self.config.max_chunk_rows:
            raise InvalidArgument(f"chunk_rows: must be within 0..{self.config.max_chunk_rows}, got {chunk_rows}")
        plan = self.plan(features, feature_service)
        tables = {part.view.name: self._offline_rows(part.view.name) for part in plan.parts}
        total = len(event_ms)
        keys = {"store_id": store_ids, "medication_id": medication_ids}
        for offset in range(0, max(total, 1), chunk):
            piece = slice(offset, min(offset + chunk, total))
            columns = self._lookup(plan, tables, {k: v[piece] for k, v in keys.items()}, event_ms[piece])
            HISTORICAL_ROWS.inc(piece.stop - piece.start)
            yield HistoricalChunk(offset, total, store_ids[piece], medication_ids[piece], event_ms[piece], columns)

    def _offline_rows(self, view: str):
        offline = self.views.get(view)
        if offline is None:
            raise FailedPrecondition(f"feature view {view!r} has no offline files rxcast knows of")
        return offline.rows()

    @staticmethod
    def _lookup(plan: ReadPlan, tables, keys: dict[str, np.ndarray], event_ms: np.ndarray) -> list[Column]:
        found = []
        for part in plan.parts:
            rows = tables[part.view.name]
            codes = rows.codes_of(entity_keys([keys[k] for k in part.join_keys]))
            index, status = point_in_time(rows.codes, rows.event_ms, codes, event_ms, part.ttl_ms)
            found.append((rows, index, status))
        columns = []
        for column in plan.columns:
            rows, index, status = found[column.part]
            dtype = NUMPY_TYPE[column.value_type]
            placeholder = PLACEHOLDER[column.value_type]
            source = rows.columns.get(column.name)
            statuses = status.astype(np.int8)
            hit = statuses == PRESENT
            if source is None:
                values = np.full(len(index), placeholder, dtype=dtype)
                statuses[hit] = NOT_FOUND
                hit[:] = False
            else:
                values = np.asarray(source)[np.maximum(index, 0)] if len(source) else np.full(len(index), placeholder)
                null = hit & pd.isna(values)
                statuses[null] = NULL_VALUE
                hit &= ~null
                values = np.where(hit, values, placeholder).astype(dtype)
            event = np.where(index >= 0, rows.event_ms[np.maximum(index, 0)] if len(rows) else 0, 0)
            columns.append(Column(column.name, column.value_type, values, statuses, event.astype(np.int64)))
        return columns

    # -- actuals ----------------------------------------------------------
    def actuals(self, store_ids, medication_ids, event_ms, horizon_days: int = 0) -> Actuals:
        """Units dispensed over the `horizon_days` business days after each row's
        as-of day; NOT_FOUND unless every one of those days has a record with
        units_dispensed."""
        store_ids, medication_ids = _entity_columns(store_ids, medication_ids, "rows.keys")
        event_ms = np.asarray(event_ms, dtype=np.int64)
        if len(event_ms) != len(store_ids):
            raise InvalidArgument(f"rows.event_times_unix_ms: {len(event_ms)} timestamps for {len(store_ids)} entities")
        horizon = horizon_days or self.config.horizon_days
        if not 1 <= horizon <= MAX_HORIZON_DAYS:
            raise InvalidArgument(f"horizon_days: must be within 0..{MAX_HORIZON_DAYS}, got {horizon_days}")
        self._check_rows(len(event_ms))
        if len(event_ms) * horizon > self.config.max_actuals_days:
            raise ResourceExhausted(
                f"rows x horizon_days: {len(event_ms)} rows of {horizon} days is {len(event_ms) * horizon} "
                f"entity-days, the limit is {self.config.max_actuals_days}; narrow it"
            )
        codes = self.history.entity_codes(store_ids, medication_ids)
        days = timebase.as_of_day(event_ms)[:, None] + 1 + np.arange(horizon, dtype=np.int64)[None, :]
        grid = self.history.gather(codes[:, None], days)
        dispensed = grid["units_dispensed"]
        complete = (grid["present"] & ~np.isnan(dispensed)).all(axis=1) & (codes >= 0)
        values = np.where(complete, np.nansum(np.where(grid["present"], dispensed, 0.0), axis=1), 0.0)
        statuses = np.where(complete, PRESENT, NOT_FOUND).astype(np.int8)
        return Actuals(values, statuses, horizon)

    # -- daily totals -----------------------------------------------------
    def daily_totals(self, field: str, group_by: Sequence[str], business_days: Sequence[str]) -> totals.DailyTotals:
        """Sum and count of a numeric record field per business day and group (rxcast.feature.totals)."""
        keys, days = totals.parse_request(field, group_by, business_days)
        return totals.daily_totals(self.history, field, keys, days)

    # -- materialization --------------------------------------------------
    def materialize(self, start: datetime | None, end: datetime | None, views: Sequence[str]) -> Materialized:
        """Copy each view's latest values in [start, end] from offline to online.
        Without `start`, each view continues from its last materialization."""
        names = list(views) or self.catalog.view_names()
        for name in names:
            self.catalog.view(name)  # NotFound for unknown views
        end = end or datetime.now(UTC)
        if start is not None and start >= end:
            raise InvalidArgument(f"start_time {start.isoformat()} is not before end_time {end.isoformat()}")
        earliest = datetime(1970, 1, 1, tzinfo=UTC)
        rows_written = 0
        covered_start = start or end
        for name in names:
            view = self.catalog.view(name)
            view_start = start or view.most_recent_end_time or earliest
            if view_start.tzinfo is None:
                view_start = view_start.replace(tzinfo=UTC)
            offline = self.views.get(name)
            if view_start >= end or (offline is not None and len(offline.rows()) == 0):
                continue  # nothing to copy (Feast cannot read an empty directory)
            covered_start = min(covered_start, view_start)
            with self._ingest_lock:
                with self.catalog.registry_lock, contextlib.redirect_stdout(io.StringIO()):
                    self.feast.materialize(view_start, end, [name])
                self._load_online_view(name)
            if offline is not None:
                rows = offline.rows()
                lo, hi = int(view_start.timestamp() * 1000), int(end.timestamp() * 1000)
                in_range = (rows.event_ms >= lo) & (rows.event_ms <= hi)
                rows_written += int(np.unique(rows.codes[in_range]).size)
        self.catalog.refresh()
        return Materialized(names, covered_start, end, rows_written)


def _entity_columns(store_ids, medication_ids, field: str) -> tuple[np.ndarray, np.ndarray]:
    store_ids, medication_ids = list(store_ids), list(medication_ids)
    validation.lengths_at_most(store_ids, f"{field}.store_ids")
    validation.lengths_at_most(medication_ids, f"{field}.medication_ids")
    stores = np.asarray(store_ids, dtype=object)
    medications = np.asarray(medication_ids, dtype=object)
    if len(stores) != len(medications):
        raise InvalidArgument(f"{field}: {len(stores)} store_ids but {len(medications)} medication_ids")
    return stores, medications
