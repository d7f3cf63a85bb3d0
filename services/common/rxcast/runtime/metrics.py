"""Prometheus metrics shared by every service (served by rxcast.runtime.metrics_http).

Services add their own metrics with prometheus_client in their modules; these
are the per-RPC ones the server interceptor records. Process metrics (CPU
seconds, memory) come with prometheus_client's default collectors.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram, Info

STATE_FILES_QUARANTINED = Counter(
    "rxcast_state_files_quarantined_total", "State files found unreadable and renamed aside (durable.quarantine)."
)
RPC_STARTED = Counter("rxcast_rpc_started_total", "RPCs started, by method.", ["service", "method"])
RPC_HANDLED = Counter(
    "rxcast_rpc_handled_total", "RPCs finished, by method and status code.", ["service", "method", "code"]
)
RPC_SECONDS = Histogram(
    "rxcast_rpc_duration_seconds",
    "Time from an RPC's start to its end, by method.",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RPC_IN_FLIGHT = Gauge("rxcast_rpc_in_flight", "RPCs being served now.", ["service"])
LAST_ERROR = Info("rxcast_last_error", "The newest warning or error the service logged: its level and message.")
LAST_ERROR_TIME = Gauge("rxcast_last_error_timestamp_seconds", "When the service last logged a warning or an error.")

#: Log levels the last error records.
_PROBLEMS = frozenset({"warning", "error", "critical", "exception"})
#: Event fields that say why, in the order they are looked for.
_WHY = ("reason", "error", "exc_info")


def record_last_error(_logger, _name, event: dict) -> dict:
    """A structlog processor keeping the newest warning or error as a metric,
    so a dashboard reads each service's last problem from its /metrics."""
    level = str(event.get("level", ""))
    if level in _PROBLEMS:
        why = next((event[k] for k in _WHY if event.get(k) not in (None, "", False, True)), "")
        message = f"{event.get('event', '')}: {why}" if why else str(event.get("event", ""))
        LAST_ERROR.info({"level": level, "message": message[:300]})
        LAST_ERROR_TIME.set(time.time())
    return event
