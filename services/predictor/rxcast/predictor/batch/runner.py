"""Batch runs: on request and on a schedule, one at a time.

A run takes the model version current when it starts, reads every entity's
point-in-time features as of its instant from the feature service, scores
them in partitions with Dask, commits the forecasts to the store, and hands
them to the drift log. Progress (rows scored) is visible while it runs, to
RunBatch callers, in ListBatchRuns, in logs and in metrics. A run goes on
when the caller who started it goes away.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from rxcast.model.timebase import as_of_day, day_text
from rxcast.predictor.batch.runs import FAILED, RUNNING, SUCCEEDED, RunRecord, new_run_id
from rxcast.predictor.batch.scoring import DaskScorer
from rxcast.predictor.batch.store import BatchStore
from rxcast.predictor.driftlog import LogEntry, PredictionLogQueue
from rxcast.predictor.features import PopulationChunk
from rxcast.predictor.frame import concat_frames, split_frame
from rxcast.predictor.holder import ModelHolder
from rxcast.runtime.errors import FailedPrecondition, RxcastError
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.predictor.batch")

BATCH_RUNS = Counter("rxcast_predictor_batch_runs_total", "Batch runs finished, by state.", ["state"])
BATCH_ROWS_DONE = Gauge("rxcast_predictor_batch_rows_done", "Entities scored so far by the current batch run.")
BATCH_ROWS_TOTAL = Gauge("rxcast_predictor_batch_rows_total", "Entities the current batch run scores.")
BATCH_LAST_SUCCESS = Gauge(
    "rxcast_predictor_batch_last_success_timestamp_seconds", "When the newest successful batch run finished."
)
BATCH_SECONDS = Histogram(
    "rxcast_predictor_batch_run_seconds",
    "Wall time of finished batch runs.",
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)


class Population(Protocol):
    """Every entity's point-in-time features as of an instant, in chunks."""

    def population(self, as_of_ms: int, features) -> Iterator[PopulationChunk]: ...


class FeatureServicePopulation:
    """The feature service's daily grid for the last business day ended by the instant."""

    def __init__(self, client):
        self._client = client

    def population(self, as_of_ms: int, features) -> Iterator[PopulationChunk]:
        day = int(as_of_day(as_of_ms))  # the business day whose end is the latest at or before as_of
        return self._client.historical_daily(day_text(day), features)


@dataclass(frozen=True)
class BatchSettings:
    partition_rows: int = 50_000
    max_feature_age_seconds: float = 0.0
    interval_seconds: float = 0.0
    log_wait_seconds: float = 5.0


class RunHandle:
    """A run's record as it changes; callers follow it with `updates()`."""

    def __init__(self, record: RunRecord):
        self._record = record
        self._changed = threading.Condition()

    @property
    def record(self) -> RunRecord:
        return self._record

    def update(self, **changes) -> RunRecord:
        with self._changed:
            self._record = self._record.with_updates(**changes)
            self._changed.notify_all()
            return self._record

    def updates(self, poll_seconds: float = 1.0) -> Iterator[RunRecord]:
        """The record now, then after each change, until the run has finished."""
        last = None
        while True:
            with self._changed:
                if self._record is last:
                    self._changed.wait(poll_seconds)
                record = self._record
            if record is not last:
                yield record
                last = record
            if record.finished_run:
                return

    def wait(self, timeout: float | None = None) -> RunRecord:
        with self._changed:
            self._changed.wait_for(lambda: self._record.finished_run, timeout)
            return self._record


class BatchRunner:
    def __init__(
        self,
        holder: ModelHolder,
        store: BatchStore,
        population: Population | None,
        scorer: DaskScorer,
        log_queue: PredictionLogQueue | None = None,
        settings: BatchSettings = BatchSettings(),
        refresh_model: Callable[[], object] | None = None,
    ):
        self._holder = holder
        # Asks the trainer for the alias's version before a run takes its model, so a run
        # started after the alias moved scores with the new version, not the last poll's.
        self._refresh_model = refresh_model
        self._store = store
        self._population = population
        self._scorer = scorer
        self._log_queue = log_queue
        self._settings = settings
        self._lock = threading.Lock()
        self._active: RunHandle | None = None
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None

    # -- runs ----------------------------------------------------------------------------

    def active(self) -> RunHandle | None:
        return self._active

    def start_run(self, as_of_ms: int | None = None, reason: str = "manual") -> RunHandle:
        """Start a run on a background thread; FAILED_PRECONDITION when one is running or no model is loaded."""
        if self._population is None:
            raise FailedPrecondition("no feature service is configured (--feature-address); batch runs need it")
        self._raise_if_running()
        if self._refresh_model is not None:
            self._refresh_model()  # failures are reported by the updater; the held version is used
        model = self._holder.current()
        now = time.time()
        with self._lock:
            self._raise_if_running()
            record = RunRecord(
                run_id=new_run_id(now),
                state=RUNNING,
                as_of_ms=int(now * 1000) if as_of_ms is None else int(as_of_ms),
                model_version=model.version,
                horizon_days=model.manifest.horizon_days,
                reason=reason or "manual",
                started=now,
            )
            handle = RunHandle(record)
            self._active = handle
        log.info(
            "batch_run_started",
            run_id=record.run_id,
            as_of_ms=record.as_of_ms,
            model_version=model.version,
            reason=record.reason,
        )
        threading.Thread(target=self._execute, args=(handle, model), name=f"batch-{record.run_id}", daemon=True).start()
        return handle

    def _raise_if_running(self) -> None:
        active = self._active
        if active is not None and not active.record.finished_run:
            raise FailedPrecondition(f"batch run {active.record.run_id} is still running; one runs at a time")

    def _execute(self, handle: RunHandle, model) -> None:
        record = handle.record
        started = time.perf_counter()
        try:
            frames = []
            for chunk in self._population.population(record.as_of_ms, model.requested_features):
                frames.append(chunk.frame)
                if chunk.total_rows != handle.record.rows_total:
                    handle.update(rows_total=chunk.total_rows)
                    BATCH_ROWS_TOTAL.set(chunk.total_rows)
            rows = sum(len(f) for f in frames)
            if rows == 0:
                raise FailedPrecondition(f"the feature service knows no entities as of {record.as_of_ms} ms")
            handle.update(rows_total=rows)
            BATCH_ROWS_TOTAL.set(rows)
            BATCH_ROWS_DONE.set(0)
            frame = concat_frames(frames)
            partitions = split_frame(frame, self._settings.partition_rows)
            progress = _Progress(handle, rows)
            scored = self._scorer.score(
                model, partitions, record.as_of_ms, self._settings.max_feature_age_seconds, progress.add
            )
            forecasts = np.concatenate([s.forecasts for s in scored])
            flags = np.concatenate([s.flags for s in scored])
            finished = handle.record.with_updates(state=SUCCEEDED, rows_done=rows, finished=time.time())
            self._store.commit(finished, frame.keys.store_ids, frame.keys.medication_ids, forecasts, flags)
            handle.update(state=SUCCEEDED, rows_done=rows, finished=finished.finished)
            BATCH_LAST_SUCCESS.set(finished.finished)
            log.info(
                "batch_run_succeeded", run_id=record.run_id, rows=rows, seconds=round(time.perf_counter() - started, 3)
            )
            self._log_predictions(model, record, partitions, scored)
        except Exception as exc:  # a failed run is recorded, never raised into the thread
            message = exc.message if isinstance(exc, RxcastError) else f"{type(exc).__name__}: {exc}"
            failed = handle.record.with_updates(state=FAILED, finished=time.time(), error=message)
            try:
                self._store.record_failure(failed)
            except OSError as io_error:
                log.error("batch_run_record_failed", run_id=record.run_id, error=str(io_error))
            handle.update(state=FAILED, finished=failed.finished, error=message)
            log.error(
                "batch_run_failed", run_id=record.run_id, error=message, exc_info=not isinstance(exc, RxcastError)
            )
        finally:
            BATCH_RUNS.labels(handle.record.state.lower()).inc()
            BATCH_SECONDS.observe(time.perf_counter() - started)

    def _log_predictions(self, model, record: RunRecord, partitions, scored) -> None:
        if self._log_queue is None:
            return
        for part, result in zip(partitions, scored):
            self._log_queue.submit(
                LogEntry(
                    model,
                    result.forecasts,
                    record.as_of_ms,
                    "batch",
                    columns=part.columns,
                    store_ids=part.keys.store_ids,
                    medication_ids=part.keys.medication_ids,
                ),
                wait_seconds=self._settings.log_wait_seconds,
            )

    def records(self, limit: int = 0) -> list[RunRecord]:
        """Kept runs, newest first, the running one included."""
        records = self._store.records()
        active = self._active
        if active is not None and not active.record.finished_run:
            records.insert(0, active.record)
        return records[:limit] if limit > 0 else records

    # -- schedule ------------------------------------------------------------------------

    def start_schedule(self) -> None:
        if self._settings.interval_seconds <= 0:
            return
        self._scheduler = threading.Thread(target=self._schedule, name="batch-schedule", daemon=True)
        self._scheduler.start()

    def _due_in(self) -> float:
        """Seconds until the next scheduled run: one interval after the newest run started."""
        newest = self._store.records()
        last = max((r.started for r in newest), default=0.0)
        return last + self._settings.interval_seconds - time.time()

    def _schedule(self) -> None:
        while not self._stop.is_set():
            if self._holder.wait_loaded(timeout=1.0) is None:
                continue
            wait = self._due_in()
            if wait > 0:
                self._stop.wait(min(wait, 5.0))
                continue
            try:
                self.start_run(None, "schedule").wait()
            except FailedPrecondition as exc:
                log.info("batch_schedule_skipped", reason=exc.message)
                self._stop.wait(min(self._settings.interval_seconds, 5.0))

    def stop(self) -> None:
        self._stop.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)
        active = self._active
        if active is not None:
            active.wait(timeout=30)


class _Progress:
    """Counts scored rows; publishes at most every 1% (or each partition when few)."""

    def __init__(self, handle: RunHandle, total: int):
        self._handle = handle
        self._done = 0
        self._step = max(1, total // 100)
        self._published = 0
        self._lock = threading.Lock()

    def add(self, rows: int) -> None:
        with self._lock:
            self._done += rows
            done = self._done
            if done - self._published < self._step:
                return
            self._published = done
        self._handle.update(rows_done=done)
        BATCH_ROWS_DONE.set(done)
        log.info(
            "batch_run_progress",
            run_id=self._handle.record.run_id,
            rows_done=done,
            rows_total=self._handle.record.rows_total,
        )
