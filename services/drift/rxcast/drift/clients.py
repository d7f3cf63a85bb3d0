"""The drift service's calls to other services: reference profiles and
retraining from the trainer, actuals from the feature service."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import numpy as np

from rxcast.clients import FeatureClient, TrainerClient
from rxcast.drift.alerts import Alert
from rxcast.drift.engine import DriftEngine
from rxcast.drift.incidents import Incident
from rxcast.runtime.errors import FailedPrecondition, Unavailable
from rxcast.runtime.logs import get_logger
from rxcast.trainer.v1 import trainer_pb2

log = get_logger("rxcast.drift.clients")


#: Retraining jobs remembered to share one job among the alerts of one window.
_REMEMBERED_JOBS = 256


class Trainer:
    """Reference profiles and horizons from version manifests, and retraining on alerts."""

    def __init__(self, address: str, retrain_days: int, timeout: float = 10.0):
        self._client = TrainerClient(address, timeout=timeout)
        self.retrain_days = retrain_days
        # (model version, first day, last day) -> job id: the alerts one window
        # raises (data drift, prediction drift, ...) start one job, not one each.
        self._jobs: dict[tuple[int, str, str], str] = {}
        self._lock = threading.Lock()
        # A published version's manifest never changes: its horizon is read once.
        self._horizons: dict[int, int] = {}

    def reference_profile(self, model_version: int) -> dict | None:
        """The version's "reference_profile" from its manifest; None when the
        trainer does not know the version or its manifest has no profile."""
        try:
            manifest = self._client.manifest(model_version)
        except FailedPrecondition as exc:
            log.warning("manifest unreadable", model_version=model_version, reason=exc.message)
            return None
        if manifest is None:
            return None
        self._remember_horizon(model_version, manifest)
        return manifest.get("reference_profile") or None

    def horizon_days(self, model_version: int) -> int:
        """The forecast horizon the version was trained for; 0 when unknown
        (the feature service then uses its own)."""
        if model_version not in self._horizons:
            try:
                manifest = self._client.manifest(model_version)
            except (FailedPrecondition, Unavailable) as exc:
                log.warning("horizon unknown", model_version=model_version, reason=exc.message)
                return 0
            self._remember_horizon(model_version, manifest or {})
        return self._horizons.get(model_version, 0)

    def _remember_horizon(self, model_version: int, manifest: dict) -> None:
        horizon = manifest.get("horizon_days")
        if isinstance(horizon, int) and horizon > 0:
            self._horizons[model_version] = horizon

    def retrain(self, alert: Alert, today: dt.date | None = None) -> str:
        """Start a training job over the last `retrain_days` days, promoting
        the result if it passes the gate; returns the job id. An alert of the
        same version and days as an earlier one shares that alert's job."""
        end = alert_day(alert) if today is None else today
        start = end - dt.timedelta(days=self.retrain_days - 1)
        key = (alert.model_version, start.isoformat(), end.isoformat())
        request = trainer_pb2.StartTrainingRequest(
            window=trainer_pb2.DayWindow(start_day=start.isoformat(), end_day=end.isoformat()),
            reason=f"drift alert {alert.alert_id} ({alert.kind}, model version {alert.model_version}): "
            f"{', '.join(alert.features)}: {alert.reason}"[:2000],
            promote=True,
        )
        # Held over the call: concurrent alerts of one window must not both start a job.
        with self._lock:
            started = self._jobs.get(key)
            if started:
                log.info("retraining already started for these days", alert_id=alert.alert_id, job_id=started)
                return started
            job = self._client.start_training(request)
            self._jobs[key] = job.job_id
            while len(self._jobs) > _REMEMBERED_JOBS:
                del self._jobs[next(iter(self._jobs))]
        log.info(
            "retraining started",
            alert_id=alert.alert_id,
            job_id=job.job_id,
            window=f"{request.window.start_day}..{request.window.end_day}",
        )
        return job.job_id

    def retrain_for_incident(self, incident: Incident) -> str:
        """The retraining trigger of an incident a model can address (the
        engine never passes data-quality ones): trigger id the incident id,
        changed at its first window's start. Starts a training job over the
        `retrain_days` up to the day the data changed; returns its id."""
        changed = dt.datetime.fromtimestamp(incident.changed_ms / 1000, tz=dt.UTC).date()
        start = changed - dt.timedelta(days=self.retrain_days - 1)
        request = trainer_pb2.StartTrainingRequest(
            window=trainer_pb2.DayWindow(start_day=start.isoformat(), end_day=changed.isoformat()),
            reason=f"drift incident {incident.incident_id} ({incident.kind}, model version "
            f"{incident.model_version}, changed {changed}): {', '.join(incident.features)}: {incident.reason}"[:2000],
            promote=True,
        )
        job = self._client.start_training(request)
        log.info("retraining started", incident_id=incident.incident_id, job_id=job.job_id)
        return job.job_id

    def close(self) -> None:
        self._client.close()


def alert_day(alert: Alert) -> dt.date:
    """The business day of the data behind an alert (the day it was raised when unknown)."""
    ms = alert.data_ms or alert.raised_ms
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date()


class ActualsCollector:
    """Asks the feature service for the actuals of logged predictions whose
    horizon has elapsed and feeds them to the engine, every `interval` seconds.
    Each version's rows are asked with the horizon that version forecasts."""

    def __init__(
        self,
        engine: DriftEngine,
        address: str,
        interval: float,
        batch_rows: int = 5000,
        retry_seconds: float = 3600.0,
        timeout: float = 30.0,
        horizon_days: Callable[[int], int] | None = None,
    ):
        self.engine = engine
        self.interval = interval
        self.batch_rows = batch_rows
        self.retry_ms = int(retry_seconds * 1000)
        self._horizon_days = horizon_days or (lambda version: 0)
        self._client = FeatureClient(address, timeout=timeout)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drift-actuals", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.collect_once()
            except Unavailable as exc:
                log.warning("actuals collection failed", reason=exc.message)
            except Exception:
                log.exception("actuals collection failed")

    def collect_once(self) -> int:
        """One round; returns the number of actuals matched."""
        now_ms = self.engine._now_ms()
        pending = self.engine.predictions.unmatched(self.batch_rows, now_ms - self.retry_ms, now_ms)
        if pending.empty:
            return 0
        matched = alerts = 0
        for version, rows in pending.groupby("model_version", sort=True):
            stores = rows["store_id"].to_numpy()
            medications = rows["medication_id"].to_numpy()
            times = rows["event_ms"].to_numpy(dtype=np.int64)
            actuals = self._client.actuals(stores, medications, times, self._horizon_days(int(version)))
            present = ~np.isnan(actuals.values)
            if not present.any():
                continue
            outcome = self.engine.log_actuals(
                stores[present], medications[present], times[present], actuals.values[present]
            )
            matched += outcome.matched
            alerts += len(outcome.alerts)
        log.info("actuals collected", asked=len(pending), matched=matched, alerts=alerts)
        return matched
