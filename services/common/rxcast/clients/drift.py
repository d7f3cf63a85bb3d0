"""The drift service's client: prediction logs, reports and alerts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import grpc

from rxcast.clients.base import ServiceClient
from rxcast.drift.v1 import drift_pb2 as pb
from rxcast.drift.v1 import drift_pb2_grpc
from rxcast.runtime.tls import Trust

DEFAULT_ADDRESS = "127.0.0.1:50055"


class DriftClient(ServiceClient):
    SERVICE = pb.DESCRIPTOR.services_by_name["DriftService"]
    STUB = drift_pb2_grpc.DriftServiceStub
    NAME = "drift service"

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout: float = 10.0,
        max_message_mb: int = 64,
        trust: Trust | None = None,
    ):
        super().__init__(address, timeout=timeout, max_message_mb=max_message_mb, trust=trust)

    def log_predictions(self, requests: Iterable[pb.LogPredictionsRequest]) -> pb.LogPredictionsResponse:
        """Send prediction rows on one LogPredictions client stream."""
        try:
            return self.stub.LogPredictions(iter(requests))
        except grpc.RpcError as exc:
            raise self.failed(exc, "LogPredictions") from None

    def list_alerts(self, model_version: int = 0, limit: int = 0) -> list[pb.Alert]:
        try:
            return list(self.stub.ListAlerts(pb.ListAlertsRequest(model_version=model_version, limit=limit)).alerts)
        except grpc.RpcError as exc:
            raise self.failed(exc, "ListAlerts") from None

    def list_reports(self, model_version: int = 0, limit: int = 0) -> list[pb.DriftReport]:
        try:
            return list(self.stub.ListReports(pb.ListReportsRequest(model_version=model_version, limit=limit)).reports)
        except grpc.RpcError as exc:
            raise self.failed(exc, "ListReports") from None

    def watch_alerts(self, after_alert_id: int = -1, timeout: float = 24 * 3600.0) -> Iterator[pb.Alert]:
        """Alerts after `after_alert_id` (-1: from now on), as they are raised."""
        request = pb.WatchAlertsRequest(after_alert_id=after_alert_id)
        for answer in self.stub.WatchAlerts(request, timeout=timeout):
            yield answer.alert

    def list_incidents(self, model_version: int = 0, open_only: bool = False, limit: int = 0) -> list[pb.Incident]:
        request = pb.ListIncidentsRequest(model_version=model_version, open_only=open_only, limit=limit)
        try:
            return list(self.stub.ListIncidents(request).incidents)
        except grpc.RpcError as exc:
            raise self.failed(exc, "ListIncidents") from None

    def get_incident(self, incident_id: str) -> pb.Incident:
        try:
            return self.stub.GetIncident(pb.GetIncidentRequest(incident_id=incident_id)).incident
        except grpc.RpcError as exc:
            raise self.failed(exc, "GetIncident") from None

    def acknowledge_incident(self, incident_id: str, by: str, note: str = "") -> pb.Incident:
        request = pb.AcknowledgeIncidentRequest(incident_id=incident_id, acknowledged_by=by, note=note)
        try:
            return self.stub.AcknowledgeIncident(request).incident
        except grpc.RpcError as exc:
            raise self.failed(exc, "AcknowledgeIncident") from None

    def watch_incidents(self, after_revision: int = -1, timeout: float = 24 * 3600.0) -> Iterator[pb.Incident]:
        """Incidents changed after `after_revision` (-1: from now on), as they change."""
        request = pb.WatchIncidentsRequest(after_revision=after_revision)
        for answer in self.stub.WatchIncidents(request, timeout=timeout):
            yield answer.incident
