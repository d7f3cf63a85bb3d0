"""The model being served, swapped atomically, and the state of model updates.

Readers take `current()` once per request and use that reference for the
whole request, so a swap never mixes two versions in one answer; the swap
itself is a single reference assignment, so readers never wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from rxcast.predictor.serving import ServingModel
from rxcast.runtime.errors import FailedPrecondition
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.predictor.model")

MODEL_VERSION = Gauge("rxcast_predictor_model_version", "The model version being served (0 = none yet).")
MODEL_LOADED_TIME = Gauge("rxcast_predictor_model_loaded_timestamp_seconds", "When the served version was swapped in.")
MODEL_SWAPS = Counter("rxcast_predictor_model_swaps_total", "Model versions swapped in.")
MODEL_UPDATE_FAILURES = Counter(
    "rxcast_predictor_model_update_failures_total",
    "Failed model update attempts (poll, download, checksum, load), by stage.",
    ["stage"],
)


@dataclass(frozen=True)
class UpdateStatus:
    """What the model updater last did."""

    last_poll_time: float | None = None
    last_error: str = ""
    alias: str = ""


class ModelHolder:
    """Holds the serving model; notifies listeners after each swap."""

    def __init__(self, alias: str = "") -> None:
        self._current: ServingModel | None = None
        self._status = UpdateStatus(alias=alias)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[ServingModel], None]] = []
        self._loaded = threading.Condition(self._lock)

    def current(self) -> ServingModel:
        """The model to answer one request with; FAILED_PRECONDITION before the first load."""
        model = self._current
        if model is None:
            raise FailedPrecondition("no model is loaded yet; the predictor is waiting for the trainer's first version")
        return model

    def peek(self) -> ServingModel | None:
        return self._current

    def on_swap(self, listener: Callable[[ServingModel], None]) -> None:
        self._listeners.append(listener)

    def swap(self, model: ServingModel) -> None:
        with self._lock:
            previous = self._current
            self._current = model
            self._status = UpdateStatus(self._status.last_poll_time, "", self._status.alias)
            self._loaded.notify_all()
        MODEL_VERSION.set(model.version)
        MODEL_LOADED_TIME.set(model.loaded_at)
        MODEL_SWAPS.inc()
        log.info("model_swapped", version=model.version, previous=previous.version if previous else 0)
        for listener in self._listeners:
            listener(model)

    def wait_loaded(self, timeout: float) -> ServingModel | None:
        """Block until a model is loaded or `timeout` passes."""
        with self._lock:
            self._loaded.wait_for(lambda: self._current is not None, timeout)
            return self._current

    @property
    def status(self) -> UpdateStatus:
        return self._status

    def record_poll(self) -> None:
        with self._lock:
            self._status = UpdateStatus(time.time(), self._status.last_error, self._status.alias)

    def record_success(self) -> None:
        with self._lock:
            self._status = UpdateStatus(self._status.last_poll_time, "", self._status.alias)

    def record_failure(self, stage: str, message: str) -> None:
        with self._lock:
            self._status = UpdateStatus(self._status.last_poll_time, message, self._status.alias)
        MODEL_UPDATE_FAILURES.labels(stage).inc()
        log.warning(
            "model_update_failed",
            stage=stage,
            error=message,
            serving=self._current.version if self._current else 0,
        )
