"""Prediction logs to the drift service, off the request path.

Requests hand their rows to a bounded in-memory queue and return at once; a
background thread sends them in batches on the drift service's
LogPredictions client stream. When the queue is full, or the drift service
cannot take a batch, rows are dropped and counted: logging never slows or
fails a forecast.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import grpc
import numpy as np
from prometheus_client import Counter, Gauge

from rxcast.clients import DriftClient
from rxcast.drift.v1 import drift_pb2
from rxcast.model.encoding import code_levels
from rxcast.predictor.serving import ServingModel
from rxcast.runtime.errors import RxcastError
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.predictor.driftlog")

LOG_ROWS = Counter(
    "rxcast_predictor_drift_log_rows_total",
    "Prediction rows handed to the drift log, by outcome (sent, dropped_full, dropped_send_failed).",
    ["outcome"],
)
LOG_QUEUED = Gauge("rxcast_predictor_drift_log_queued_rows", "Prediction rows waiting to be sent to the drift service.")


@dataclass(frozen=True)
class LogEntry:
    """Rows one request predicted, all by one model version.

    Features are either the raw columns by name (categories as text) or,
    for callers that sent an encoded matrix, that matrix (decoded when sent).
    """

    model: ServingModel
    predictions: np.ndarray
    event_time_ms: int
    source: str
    columns: Mapping[str, np.ndarray] | None = None
    matrix: np.ndarray | None = None
    store_ids: np.ndarray | None = None
    medication_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.predictions)


def _feature_values(entry: LogEntry) -> list[drift_pb2.FeatureValues]:
    manifest = entry.model.manifest
    out = []
    for j, name in enumerate(manifest.feature_names):
        levels = manifest.categorical_levels.get(name)
        if entry.columns is not None and name in entry.columns:
            values = entry.columns[name]
            if levels is not None:
                out.append(
                    drift_pb2.FeatureValues(
                        name=name, categorical=drift_pb2.StringList(values=np.asarray(values, dtype=str).tolist())
                    )
                )
            else:
                out.append(
                    drift_pb2.FeatureValues(
                        name=name, numeric=drift_pb2.DoubleList(values=np.asarray(values, dtype=np.float64).tolist())
                    )
                )
            continue
        if entry.matrix is None:
            continue
        codes = entry.matrix[:, j]
        if levels is not None:
            text = code_levels(codes, levels)
            out.append(drift_pb2.FeatureValues(name=name, categorical=drift_pb2.StringList(values=text.tolist())))
        else:
            out.append(drift_pb2.FeatureValues(name=name, numeric=drift_pb2.DoubleList(values=codes.tolist())))
    return out


def to_requests(entries: Iterable[LogEntry]) -> list[drift_pb2.LogPredictionsRequest]:
    """One LogPredictionsRequest per entry (each entry is one version, one source)."""
    requests = []
    for entry in entries:
        rows = len(entry)
        stores = entry.store_ids if entry.store_ids is not None else np.full(rows, "", dtype=str)
        medications = entry.medication_ids if entry.medication_ids is not None else np.full(rows, "", dtype=str)
        requests.append(
            drift_pb2.LogPredictionsRequest(
                model_version=entry.model.version,
                keys=drift_pb2.EntityKeys(store_ids=stores.tolist(), medication_ids=medications.tolist()),
                event_times_unix_ms=[entry.event_time_ms] * rows,
                features=_feature_values(entry),
                predictions=np.asarray(entry.predictions, dtype=np.float64).tolist(),
                source=entry.source,
            )
        )
    return requests


class DriftSink:
    """Sends request batches on one LogPredictions client stream per flush."""

    def __init__(self, address: str, timeout: float = 10.0):
        self._client = DriftClient(address, timeout=timeout)

    def send(self, requests: Sequence[drift_pb2.LogPredictionsRequest]) -> None:
        self._client.log_predictions(requests)

    def close(self) -> None:
        self._client.close()


class PredictionLogQueue:
    """Bounded (in rows), batched, never blocking the caller."""

    def __init__(self, sink, capacity_rows: int = 100_000, batch_rows: int = 5_000, linger_seconds: float = 1.0):
        self._sink = sink
        self._capacity = capacity_rows
        self._batch_rows = batch_rows
        self._linger = linger_seconds
        self._entries: collections.deque[LogEntry] = collections.deque()
        self._rows = 0
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def submit(self, entry: LogEntry, wait_seconds: float = 0.0) -> bool:
        """Queue `entry`; False (and counted) when there is no room for it.

        Request paths never wait; background work (batch runs) may wait up to
        `wait_seconds` for the sender to make room.
        """
        rows = len(entry)
        with self._lock:
            if self._rows + rows > self._capacity and wait_seconds > 0:
                self._wake.set()
                self._room.wait_for(lambda: self._rows + rows <= self._capacity or self._rows == 0, wait_seconds)
            if self._rows + rows > self._capacity and self._rows > 0:
                LOG_ROWS.labels("dropped_full").inc(rows)
                return False
            self._entries.append(entry)
            self._rows += rows
            full = self._rows >= self._batch_rows
        if full:
            self._wake.set()
        return True

    def _take(self) -> list[LogEntry]:
        with self._lock:
            taken: list[LogEntry] = []
            rows = 0
            while self._entries and (not taken or rows + len(self._entries[0]) <= self._batch_rows):
                entry = self._entries.popleft()
                taken.append(entry)
                rows += len(entry)
            self._rows -= rows
            if rows:
                self._room.notify_all()
        LOG_QUEUED.set(self._rows)
        return taken

    def flush(self) -> int:
        """Send what is queued now; returns the rows sent."""
        sent = 0
        while taken := self._take():
            rows = sum(len(e) for e in taken)
            try:
                self._sink.send(to_requests(taken))
            except (RxcastError, grpc.RpcError, ValueError) as exc:
                LOG_ROWS.labels("dropped_send_failed").inc(rows)
                if not self._failing:
                    code = (
                        exc.code().name if isinstance(exc, grpc.RpcError) else getattr(exc, "code", type(exc).__name__)
                    )
                    log.warning("drift_log_send_failed", rows=rows, code=code)
                self._failing = True
                return sent
            if self._failing:
                log.info("drift_log_send_recovered")
            self._failing = False
            LOG_ROWS.labels("sent").inc(rows)
            sent += rows
        return sent

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="drift-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._linger)
            self._wake.clear()
            self.flush()

    def stop(self) -> None:
        """Stop the sender after one last flush."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        self.flush()
