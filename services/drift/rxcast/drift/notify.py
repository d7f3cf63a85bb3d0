"""Incidents to Prometheus Alertmanager, where on-call routes, groups,
silences and pages: every change of an incident is posted (firing while
open, resolved with its resolution time), and open incidents are posted
again every `resend_seconds`, as Prometheus does, so Alertmanager does not
resolve them on its own after its resolve_timeout.

Labels an on-call route can match: `alertname` (RxcastDriftIncident),
`service` (rxcast-drift), `incident_id`, `kind`, `severity`, `model_version`,
`feature_groups`. A post that fails is retried at the next round: the
notifier keeps the newest state of every incident not yet delivered.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter

from rxcast.clients.alertmanager import AlertmanagerClient, PostableAlert
from rxcast.drift.incidents import Incident, IncidentBook
from rxcast.runtime.errors import Unavailable
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.notify")

ALERTNAME = "RxcastDriftIncident"
POSTS = Counter("rxcast_drift_alertmanager_posts_total", "Incident posts to Alertmanager, by outcome.", ["outcome"])


def postable(incident: Incident) -> PostableAlert:
    """An incident as an Alertmanager alert: resolved when it is."""
    return PostableAlert(
        labels={
            "alertname": ALERTNAME,
            "service": "rxcast-drift",
            "incident_id": incident.incident_id,
            "kind": incident.kind,
            "severity": incident.severity,
            "model_version": str(incident.model_version),
            "feature_groups": ",".join(incident.groups),
        },
        annotations={
            "summary": f"{incident.kind.replace('_', ' ')} on model version {incident.model_version}: "
            f"{', '.join(incident.features[:8])}",
            "description": incident.reason[:4000],
            "acknowledged_by": incident.acknowledged_by,
            "resolution": incident.resolution,
        },
        starts_ms=incident.opened_ms,
        ends_ms=incident.resolved_ms if not incident.is_open else 0,
    )


class AlertmanagerNotifier:
    """Posts the book's incident changes from a thread of its own."""

    def __init__(self, book: IncidentBook, url: str, resend_seconds: float = 60.0, timeout: float = 5.0):
        self.book = book
        self.client = AlertmanagerClient(url, timeout=timeout)
        self.resend_seconds = resend_seconds
        self._stop = threading.Event()
        self._undelivered: dict[str, Incident] = {}
        self._watcher = threading.Thread(target=self._watch, name="drift-alertmanager-watch", daemon=True)
        self._sender = threading.Thread(target=self._send_loop, name="drift-alertmanager-send", daemon=True)
        self._lock = threading.Lock()
        self._changed = threading.Event()

    def start(self) -> None:
        self._watcher.start()
        self._sender.start()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        for thread in (self._watcher, self._sender):
            if thread.is_alive():
                thread.join(timeout=self.client.timeout + 5)
        self.deliver()  # a last try for what changed at the end

    def _watch(self) -> None:
        # From revision 0: after a restart every incident is posted again, so
        # Alertmanager's view catches up with the book whatever was lost.
        for incident in self.book.watch(0, lambda: not self._stop.is_set()):
            with self._lock:
                self._undelivered[incident.incident_id] = incident
            self._changed.set()

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            resend = not self._changed.wait(self.resend_seconds)
            self._changed.clear()
            if resend:
                with self._lock:
                    for incident in self.book.list(open_only=True, limit=10_000):
                        self._undelivered.setdefault(incident.incident_id, incident)
            self.deliver()

    def deliver(self) -> None:
        """Post what is undelivered; kept for the next round when Alertmanager cannot be reached."""
        with self._lock:
            pending = list(self._undelivered.values())
        if not pending:
            return
        try:
            self.client.post_alerts([postable(i) for i in pending])
        except Unavailable as exc:
            POSTS.labels("failed").inc()
            log.warning("incidents not posted to alertmanager; retried", incidents=len(pending), reason=exc.message)
            return
        POSTS.labels("posted").inc()
        with self._lock:
            for incident in pending:
                if self._undelivered.get(incident.incident_id) is incident:
                    del self._undelivered[incident.incident_id]
