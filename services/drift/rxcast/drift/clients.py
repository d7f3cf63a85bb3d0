"""The drift service's calls to other services: reference profiles and
retraining from the trainer, actuals from the feature service."""

from __future__ import annotations

import datetime as dt
import json
import threading

import grpc
import numpy as np

from rxcast.drift.alerts import Alert
from rxcast.drift.engine import DriftEngine
from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.runtime.channels import as_domain_error, connect
from rxcast.runtime.errors import Unavailable
from rxcast.runtime.logs import get_logger
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc

log = get_logger("rxcast.drift.clients")

TRAINER = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"]
FEATURE = feature_pb2.DESCRIPTOR.services_by_name["FeatureService"]


#: Retraining jobs remembered to share one job among the alerts of one window.
_REMEMBERED_JOBS = 256


class Trainer:
    """Reference profiles from version manifests, and retraining on alerts."""

    def __init__(self, address: str, retrain_days: int, timeout: float = 10.0):
        self._channel = connect(address, [TRAINER], default_timeout=timeout)
        self._stub = trainer_pb2_grpc.TrainerServiceStub(self._channel)
        self.retrain_days = retrain_days
        # (model version, first day, last day) -> job id: the alerts one window
        # raises (data drift, prediction drift, ...) start one job, not one each.
        self._jobs: dict[tuple[int, str, str], str] = {}
        self._lock = threading.Lock()

    def reference_profile(self, model_version: int) -> dict | None:
        """The version's "reference_profile" from its manifest; None when the
        trainer does not know the version or its manifest has no profile."""
        try:
            response = self._stub.GetModelVersion(
                trainer_pb2.GetModelVersionRequest(version=model_version, include_manifest=True))
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise as_domain_error(exc, f"trainer GetModelVersion({model_version})") from None
        try:
            manifest = json.loads(response.version.manifest_json or "{}")
        except json.JSONDecodeError:
            log.warning("manifest is not JSON", model_version=model_version)
            return None
        profile = manifest.get("reference_profile")
        return profile or None

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
            try:
                response = self._stub.StartTraining(request)
            except grpc.RpcError as exc:
                raise as_domain_error(exc, "trainer StartTraining") from None
            self._jobs[key] = response.job.job_id
            while len(self._jobs) > _REMEMBERED_JOBS:
                del self._jobs[next(iter(self._jobs))]
        log.info("retraining started", alert_id=alert.alert_id, job_id=response.job.job_id,
                 window=f"{request.window.start_day}..{request.window.end_day}")
        return response.job.job_id

    def close(self) -> None:
        self._channel.close()


def alert_day(alert: Alert) -> dt.date:
    """The business day of the data behind an alert (the day it was raised when unknown)."""
    ms = alert.data_ms or alert.raised_ms
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date()


class ActualsCollector:
    """Asks the feature service for the actuals of logged predictions whose
    horizon has elapsed and feeds them to the engine, every `interval` seconds."""

    def __init__(self, engine: DriftEngine, address: str, interval: float, batch_rows: int = 5000,
                 retry_seconds: float = 3600.0, timeout: float = 30.0):
        self.engine = engine
        self.interval = interval
        self.batch_rows = batch_rows
        self.retry_ms = int(retry_seconds * 1000)
        self._channel = connect(address, [FEATURE], default_timeout=timeout)
        self._stub = feature_pb2_grpc.FeatureServiceStub(self._channel)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drift-actuals", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)
        self._channel.close()

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
        stores = pending["store_id"].to_numpy()
        medications = pending["medication_id"].to_numpy()
        times = pending["event_ms"].to_numpy(dtype=np.int64)
        try:
            response = self._stub.GetActuals(feature_pb2.GetActualsRequest(rows=feature_pb2.EntityRows(
                keys=feature_pb2.EntityKeys(store_ids=stores.tolist(), medication_ids=medications.tolist()),
                event_times_unix_ms=times.tolist())))
        except grpc.RpcError as exc:
            raise as_domain_error(exc, "feature GetActuals") from None
        present = np.asarray(response.statuses) == feature_pb2.FEATURE_STATUS_PRESENT
        if not present.any():
            return 0
        outcome = self.engine.log_actuals(stores[present], medications[present], times[present],
                                          np.asarray(response.values, dtype=float)[present])
        log.info("actuals collected", asked=int(len(pending)), matched=outcome.matched,
                 alerts=len(outcome.alerts))
        return outcome.matched
