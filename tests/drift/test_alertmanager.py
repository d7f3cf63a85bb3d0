"""Incidents reach a real Prometheus Alertmanager (the Debian package's
binary, started on a free loopback port like redis-server): firing while
open, resolved when the cause ends, with the labels an on-call route matches,
through Alertmanager's own routing to a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rxcast.clients.alertmanager import AlertmanagerClient
from rxcast.drift import notify
from rxcast.drift.incidents import DATA_DRIFT, DATA_QUALITY, Firing, IncidentBook, WindowRef
from rxcast.drift.notify import AlertmanagerNotifier
from rxcast.runtime.errors import Unavailable
from tests import binaries


class _Receiver:
    """A webhook receiver on loopback: the notifications Alertmanager routes."""

    def __init__(self):
        self.notifications: list[dict] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.arrived:
                    receiver.notifications.append(body)
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, status: str, incident_id: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for note in self.notifications:
                    for alert in note["alerts"]:
                        if alert["status"] == status and alert["labels"].get("incident_id") == incident_id:
                            return alert
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {status} notification for {incident_id}: {self.notifications}")
                self.arrived.wait(left)


@pytest.fixture(scope="module")
def receiver():
    hook = _Receiver()
    yield hook
    hook.server.shutdown()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory, receiver):
    workdir = tmp_path_factory.mktemp("alertmanager")
    config = workdir / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: hook\n  group_by: [incident_id]\n  group_wait: 0s\n  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        f"receivers:\n  - name: hook\n    webhook_configs:\n      - url: {receiver.url}\n        send_resolved: true\n"
    )
    try:
        server, url = binaries.alertmanager(workdir, config)
    except binaries.BinaryError as exc:
        pytest.fail(str(exc))
    yield url
    binaries.stop(server)


def _window(day: int) -> WindowRef:
    return WindowRef(f"v1-w{day}", day * 86_400_000, (day + 1) * 86_400_000 - 1)


def _open_incident(book: IncidentBook, kind: str, feature: str) -> str:
    firing = Firing({feature: "drift: ks 0.3"})
    assert book.observe(1, kind, firing, _window(1), 1_000) == []
    (incident,) = book.observe(1, kind, firing, _window(2), 2_000)
    return incident.incident_id


def test_incidents_fire_and_resolve_through_alertmanager(alertmanager, receiver):
    book = IncidentBook(None, confirm_windows=2, clean_windows=2)
    notifier = AlertmanagerNotifier(book, alertmanager, resend_seconds=0.5)
    notifier.start()
    try:
        drift_id = _open_incident(book, DATA_DRIFT, "units_on_hand")
        quality_id = _open_incident(book, DATA_QUALITY, "unit_price")
        firing = receiver.wait_for("firing", drift_id)
        assert firing["labels"] == {
            "alertname": "RxcastDriftIncident",
            "service": "rxcast-drift",
            "incident_id": drift_id,
            "kind": "data_drift",
            "severity": "warning",
            "model_version": "1",
            "feature_groups": "units_on_hand",
        }
        assert "units_on_hand" in firing["annotations"]["summary"]
        assert receiver.wait_for("firing", quality_id)["labels"]["severity"] == "critical"
        held = AlertmanagerClient(alertmanager).alerts(incident_id=drift_id)
        assert [a["labels"]["incident_id"] for a in held] == [drift_id]

        for day in (3, 4):  # two clean windows end the drift cause, not the data-quality one
            book.observe(1, DATA_DRIFT, Firing({}), _window(day), 3_000 + day)
        resolved = receiver.wait_for("resolved", drift_id)
        assert resolved["labels"]["incident_id"] == drift_id
        assert AlertmanagerClient(alertmanager).alerts(incident_id=drift_id) == []
        time.sleep(1.5)  # resends of the open one keep it firing, and never resolve it
        assert [
            a["labels"]["incident_id"] for a in AlertmanagerClient(alertmanager).alerts(service="rxcast-drift")
        ] == [quality_id]
        assert not any(
            a["status"] == "resolved" and a["labels"]["incident_id"] == quality_id
            for note in receiver.notifications
            for a in note["alerts"]
        )
    finally:
        notifier.stop()


def test_an_unreachable_alertmanager_keeps_the_incident_for_the_next_round(alertmanager):
    book = IncidentBook(None, confirm_windows=2)
    notifier = AlertmanagerNotifier(book, f"http://127.0.0.1:{binaries.free_port()}", resend_seconds=60, timeout=1)
    incident_id = _open_incident(book, DATA_DRIFT, "prescriptions_1d")
    notifier._undelivered[incident_id] = book.get(incident_id)
    notifier.deliver()
    assert list(notifier._undelivered) == [incident_id]
    with pytest.raises(Unavailable, match="alertmanager POST /api/v2/alerts"):
        notifier.client.post_alerts([notify.postable(book.get(incident_id))])
    notifier.client = AlertmanagerClient(alertmanager)
    notifier.deliver()
    assert notifier._undelivered == {}
    assert [a["labels"]["incident_id"] for a in notifier.client.alerts(incident_id=incident_id)] == [incident_id]
