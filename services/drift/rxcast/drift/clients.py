"""The drift service's calls to other services: reference profiles and
retraining triggers to the trainer, actuals from the feature service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np

from rxcast.clients import FeatureClient, TrainerClient
from rxcast.drift.alerts import Alert
from rxcast.drift.engine import DriftEngine
from rxcast.drift.incidents import Incident
from rxcast.drift.polling import Poller
from rxcast.runtime.errors import FailedPrecondition, Unavailable
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.clients")


#: The trainer's trigger kind of each alert kind that is a retraining cause.
_TRIGGER_KINDS = {"data_drift": "data_drift", "prediction_drift": "data_drift", "concept_drift": "concept_drift"}


class Trainer:
    """Reference profiles and horizons from version manifests, and retraining triggers on alerts."""

    def __init__(self, address: str, retrain_days: int, timeout: float = 10.0):
        self._client = TrainerClient(address, timeout=timeout)
        self.retrain_days = retrain_days
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
        """Hand the trainer a retraining trigger for the alert; returns the
        trigger's id. The trainer's policies decide when its job runs (once
        labelled rows from after the change exist) and which aliases it serves.
        The alerts of one version and day share one trigger; data-quality
        alerts are not retraining causes and submit none."""
        kind = _TRIGGER_KINDS.get(alert.kind)
        if kind is None:
            return ""
        day = alert_day(alert) if today is None else today
        trigger_id = f"drift-v{alert.model_version}-{day.isoformat()}"
        reason = (
            f"drift alert {alert.alert_id} ({alert.kind}, model version {alert.model_version}): "
            f"{', '.join(alert.features)}: {alert.reason}"
        )
        changed_ms = alert.data_ms or alert.raised_ms
        answer = self._client.submit_trigger(trigger_id, kind, changed_ms, reason)
        log.info(
            "retraining trigger submitted",
            alert_id=alert.alert_id,
            trigger_id=trigger_id,
            new=answer.accepted,
            runnable={t.alias: t.runnable_day for t in answer.trigger.targets},
        )
        return trigger_id

    def retrain_for_incident(self, incident: Incident) -> str:
        """Hand the trainer the retraining trigger of an incident a model can
        address (the engine never passes data-quality ones): trigger id the
        incident id, changed at its first window's start. The trainer's
        policies decide when its job runs (once labelled rows from after the
        change exist) and which aliases it serves. Returns the trigger id."""
        kind = _INCIDENT_TRIGGER_KINDS.get(incident.kind)
        if kind is None:
            return ""
        reason = (
            f"drift incident {incident.incident_id} ({incident.kind}, model version {incident.model_version}): "
            f"{', '.join(incident.features)}: {incident.reason}"
        )[:2000]
        answer = self._client.submit_trigger(incident.incident_id, kind, incident.changed_ms, reason)
        log.info(
            "retraining trigger submitted",
            incident_id=incident.incident_id,
            new=answer.accepted,
            runnable={t.alias: t.runnable_day for t in answer.trigger.targets},
        )
        return incident.incident_id

    def close(self) -> None:
        self._client.close()


#: Incident kinds a model can address, as the trainer's trigger kinds.
_INCIDENT_TRIGGER_KINDS = {
    "data_drift": "data_drift",
    "prediction_drift": "data_drift",
    "concept_drift": "concept_drift",
    "performance": "performance",
}


def alert_day(alert: Alert) -> dt.date:
    """The business day of the data behind an alert (the day it was raised when unknown)."""
    ms = alert.data_ms or alert.raised_ms
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date()


class ActualsCollector(Poller):
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
        super().__init__("actuals", interval)
        self.engine = engine
        self.batch_rows = batch_rows
        self.retry_ms = int(retry_seconds * 1000)
        self._horizon_days = horizon_days or (lambda version: 0)
        self._client = FeatureClient(address, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def poll_once(self) -> int:
        return self.collect_once()

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
