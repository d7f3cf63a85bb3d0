"""The health page's numbers read from each service's Prometheus samples:
the depth of the queues that matter per service and the last problem it
logged (the runtime keeps the newest warning or error as a metric)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prometheus_client.samples import Sample

#: Gauges that are queues, with the name the page gives them (summed over labels).
QUEUES: dict[str, str] = {
    "rxcast_rpc_in_flight": "calls in flight",
    "rxcast_feature_ingest_records_in_flight": "ingest records in flight",
    "rxcast_trainer_jobs_queued": "jobs queued",
    "rxcast_trainer_jobs_active": "jobs queued or running",
    "rxcast_trainer_triggers_waiting": "triggers waiting",
    "rxcast_drift_open_window_rows": "open window rows",
    "rxcast_drift_windows_awaiting_scoring": "windows awaiting scoring",
    "rxcast_drift_predictions_awaiting_actuals": "predictions awaiting actuals",
    "rxcast_predictor_drift_log_queued_rows": "rows waiting for drift",
}

LAST_ERROR = "rxcast_last_error_info"
LAST_ERROR_TIME = "rxcast_last_error_timestamp_seconds"


def queue_depths(samples: list[Sample]) -> dict[str, float]:
    """Each queue the service exposes, by its page name, in `QUEUES` order;
    queues the service does not have are left out."""
    found: dict[str, float] = {}
    for s in samples:
        if s.name in QUEUES:
            found[s.name] = found.get(s.name, 0.0) + s.value
    return {label: found[name] for name, label in QUEUES.items() if name in found}


def last_error(samples: list[Sample]) -> dict[str, Any] | None:
    """The newest warning or error the service logged, with when; None if none since it started."""
    info = next((s for s in samples if s.name == LAST_ERROR and s.labels.get("message")), None)
    if info is None:
        return None
    when = next((s.value for s in samples if s.name == LAST_ERROR_TIME), 0.0)
    return {
        "level": info.labels.get("level", ""),
        "message": info.labels["message"],
        "time": dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        if when
        else None,
    }
