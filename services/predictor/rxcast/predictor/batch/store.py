"""Batch runs on disk, each visible whole or not at all.

Layout under the store's directory:
  runs/<run_id>/predictions.parquet   store_id, medication_id, forecast, flags
  runs/<run_id>/run.json              the RunRecord
  failed/<run_id>.json                records of failed runs (no forecasts)
  staging/<run_id>/                   a run being written
  LATEST                              the run id served by default

A run is written to staging/, then renamed into runs/ (a rename is atomic
on one file system), then LATEST is replaced atomically; a crash at any
point leaves either the old or the new run served, and staging/ is cleared
at start-up. The newest `keep_runs` runs are kept; older ones are deleted
after LATEST has moved past them.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rxcast.predictor.batch.runs import FAILED, SUCCEEDED, RunRecord
from rxcast.runtime.durable import atomic_write, fsync_directory, write_text
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from rxcast.runtime.logs import get_logger
from rxcast.runtime.validation import quote

log = get_logger("rxcast.predictor.batch.store")

PREDICTIONS = "predictions.parquet"
RECORD = "run.json"
LATEST = "LATEST"
_SEP = "\x1f"
_RUN_ID = re.compile(r"[A-Za-z0-9_-]+")


def entity_keys(store_ids: np.ndarray, medication_ids: np.ndarray) -> np.ndarray:
    """One comparable key per (store, medication)."""
    return np.char.add(np.char.add(np.asarray(store_ids, dtype=str), _SEP), np.asarray(medication_ids, dtype=str))


@dataclass(frozen=True)
class StoredRun:
    """A succeeded run's forecasts, indexed for lookup by entity."""

    record: RunRecord
    keys: np.ndarray  # sorted entity keys
    forecasts: np.ndarray
    flags: np.ndarray

    @classmethod
    def index(cls, record: RunRecord, store_ids, medication_ids, forecasts, flags) -> StoredRun:
        keys = entity_keys(store_ids, medication_ids)
        order = np.argsort(keys, kind="stable")
        return cls(
            record,
            keys[order],
            np.asarray(forecasts, dtype=np.float64)[order],
            np.asarray(flags, dtype=np.uint32)[order],
        )

    def lookup(self, store_ids, medication_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(forecasts, found, flags) for the entities, in their order."""
        wanted = entity_keys(store_ids, medication_ids)
        if self.keys.size == 0:
            rows = wanted.size
            return np.zeros(rows), np.zeros(rows, dtype=bool), np.zeros(rows, dtype=np.uint32)
        position = np.minimum(np.searchsorted(self.keys, wanted), self.keys.size - 1)
        found = self.keys[position] == wanted
        return (
            np.where(found, self.forecasts[position], 0.0),
            found,
            np.where(found, self.flags[position], 0).astype(np.uint32),
        )


class BatchStore:
    def __init__(self, directory: Path, keep_runs: int = 5):
        if keep_runs < 1:
            raise ValueError("keep_runs must be >= 1")
        self.directory = Path(directory)
        self.keep_runs = keep_runs
        self._runs = self.directory / "runs"
        self._failed = self.directory / "failed"
        self._staging = self.directory / "staging"
        for folder in (self._runs, self._failed, self._staging):
            folder.mkdir(parents=True, exist_ok=True)
        for leftover in self._staging.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        self._lock = threading.Lock()
        self._latest: StoredRun | None = None
        latest_id = self._read_latest_id()
        if latest_id:
            try:
                self._latest = self._load(latest_id)
            except (OSError, ValueError, pa.ArrowException) as exc:
                log.error("batch_latest_unreadable", run_id=latest_id, error=str(exc))

    # -- reading -------------------------------------------------------------------------

    def latest(self) -> StoredRun | None:
        return self._latest

    def get(self, run_id: str = "") -> StoredRun:
        """A succeeded run by id (default: the newest)."""
        latest = self._latest
        if not run_id:
            if latest is None:
                raise FailedPrecondition("no batch run has completed yet; start one with RunBatch")
            return latest
        if not _RUN_ID.fullmatch(run_id):
            raise InvalidArgument(f"run_id: {quote(run_id)} is not a run id (letters, digits, '-' and '_')")
        if latest is not None and latest.record.run_id == run_id:
            return latest
        if (self._failed / f"{run_id}.json").exists():
            raise FailedPrecondition(f"run_id: batch run {quote(run_id)} failed and has no forecasts")
        if not (self._runs / run_id / RECORD).exists():
            raise NotFound(f"run_id: no stored batch run {quote(run_id)}")
        return self._cached_load(run_id)

    def records(self) -> list[RunRecord]:
        """Every kept run, newest first."""
        records = []
        for folder in self._runs.iterdir():
            path = folder / RECORD
            if path.exists():
                records.append(RunRecord.from_json(path.read_text()))
        for path in self._failed.glob("*.json"):
            records.append(RunRecord.from_json(path.read_text()))
        records.sort(key=lambda r: (r.started, r.run_id), reverse=True)
        return records

    # -- writing -------------------------------------------------------------------------

    def commit(self, record: RunRecord, store_ids, medication_ids, forecasts, flags) -> StoredRun:
        """Write a succeeded run and serve it; visible whole or not at all."""
        if record.state != SUCCEEDED:
            raise ValueError("only succeeded runs hold forecasts")
        staging = self._staging / record.run_id
        staging.mkdir(parents=True)
        try:
            table = pa.table(
                {
                    "store_id": pa.array(np.asarray(store_ids, dtype=str)),
                    "medication_id": pa.array(np.asarray(medication_ids, dtype=str)),
                    "forecast": pa.array(np.asarray(forecasts, dtype=np.float64)),
                    "flags": pa.array(np.asarray(flags, dtype=np.uint32)),
                }
            )
            atomic_write(staging / PREDICTIONS, lambda sink: pq.write_table(table, sink))
            write_text(staging / RECORD, record.to_json())
            fsync_directory(staging)
            os.rename(staging, self._runs / record.run_id)
            fsync_directory(self._runs)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        stored = StoredRun.index(record, store_ids, medication_ids, forecasts, flags)
        with self._lock:
            write_text(self.directory / LATEST, record.run_id)
            self._latest = stored
            self._cached_load.cache_clear()
        self._prune()
        return stored

    def record_failure(self, record: RunRecord) -> None:
        if record.state != FAILED:
            raise ValueError("record_failure takes failed runs")
        write_text(self._failed / f"{record.run_id}.json", record.to_json())
        self._prune()

    def _prune(self) -> None:
        latest = self._latest.record.run_id if self._latest else ""
        for record in self.records()[self.keep_runs :]:
            if record.run_id == latest:
                continue
            if record.state == FAILED:
                (self._failed / f"{record.run_id}.json").unlink(missing_ok=True)
            else:
                shutil.rmtree(self._runs / record.run_id, ignore_errors=True)
            log.info("batch_run_pruned", run_id=record.run_id)
        self._cached_load.cache_clear()

    # -- internals -----------------------------------------------------------------------

    def _read_latest_id(self) -> str:
        try:
            return (self.directory / LATEST).read_text().strip()
        except FileNotFoundError:
            return ""

    def _load(self, run_id: str) -> StoredRun:
        folder = self._runs / run_id
        record = RunRecord.from_json((folder / RECORD).read_text())
        frame: pd.DataFrame = pq.read_table(folder / PREDICTIONS).to_pandas()
        return StoredRun.index(
            record,
            frame["store_id"].to_numpy(dtype=str),
            frame["medication_id"].to_numpy(dtype=str),
            frame["forecast"].to_numpy(),
            frame["flags"].to_numpy(),
        )

    @functools.lru_cache(maxsize=2)  # noqa: B019 - the store lives as long as the process
    def _cached_load(self, run_id: str) -> StoredRun:
        return self._load(run_id)
