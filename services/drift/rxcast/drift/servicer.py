"""DriftService over gRPC: protos in, NumPy to the engine, protos out."""

from __future__ import annotations

import json

import numpy as np

from rxcast.drift import alerts as alert_kinds
from rxcast.drift import incidents as incident_kinds
from rxcast.drift import scoring
from rxcast.drift.alerts import Alert
from rxcast.drift.engine import DriftEngine
from rxcast.drift.incidents import Incident
from rxcast.drift.reports import DriftReport
from rxcast.drift.scoring import FeatureResult
from rxcast.drift.v1 import drift_pb2, drift_pb2_grpc
from rxcast.model.profile import ReferenceProfile
from rxcast.runtime import auth, timestamps, validation
from rxcast.runtime.errors import InvalidArgument
from rxcast.runtime.validation import quote

_VERDICTS = {
    scoring.NO_DRIFT: drift_pb2.VERDICT_NO_DRIFT,
    scoring.DRIFT: drift_pb2.VERDICT_DRIFT,
    scoring.DATA_QUALITY: drift_pb2.VERDICT_DATA_QUALITY,
    scoring.INSUFFICIENT_DATA: drift_pb2.VERDICT_INSUFFICIENT_DATA,
}
_KINDS = {scoring.NUMERIC: drift_pb2.FEATURE_KIND_NUMERIC, scoring.CATEGORICAL: drift_pb2.FEATURE_KIND_CATEGORICAL}
_ALERT_KINDS = {
    alert_kinds.DATA_DRIFT: drift_pb2.ALERT_KIND_DATA_DRIFT,
    alert_kinds.PREDICTION_DRIFT: drift_pb2.ALERT_KIND_PREDICTION_DRIFT,
    alert_kinds.CONCEPT_DRIFT: drift_pb2.ALERT_KIND_CONCEPT_DRIFT,
    alert_kinds.DATA_QUALITY: drift_pb2.ALERT_KIND_DATA_QUALITY,
}

_INCIDENT_KINDS = {
    incident_kinds.DATA_DRIFT: drift_pb2.INCIDENT_KIND_DATA_DRIFT,
    incident_kinds.PREDICTION_DRIFT: drift_pb2.INCIDENT_KIND_PREDICTION_DRIFT,
    incident_kinds.CONCEPT_DRIFT: drift_pb2.INCIDENT_KIND_CONCEPT_DRIFT,
    incident_kinds.DATA_QUALITY: drift_pb2.INCIDENT_KIND_DATA_QUALITY,
    incident_kinds.PERFORMANCE: drift_pb2.INCIDENT_KIND_PERFORMANCE,
}
_STATUSES = {
    incident_kinds.OPEN: drift_pb2.INCIDENT_STATUS_OPEN,
    incident_kinds.RESOLVED: drift_pb2.INCIDENT_STATUS_RESOLVED,
}
_SEVERITIES = {
    incident_kinds.WARNING: drift_pb2.INCIDENT_SEVERITY_WARNING,
    incident_kinds.CRITICAL: drift_pb2.INCIDENT_SEVERITY_CRITICAL,
}


def feature_columns(features) -> dict[str, np.ndarray]:
    """FeatureValues protos as named columns (floats, or strings with "" missing)."""
    columns: dict[str, np.ndarray] = {}
    for index, feature in enumerate(features):
        if not feature.name:
            raise InvalidArgument(f"features[{index}].name: is empty")
        if feature.name in columns:
            raise InvalidArgument(f"features[{index}].name: {quote(feature.name)} appears twice")
        which = feature.WhichOneof("values")
        if which == "numeric":
            columns[feature.name] = np.asarray(feature.numeric.values, dtype=float)
        elif which == "categorical":
            columns[feature.name] = np.asarray(feature.categorical.values, dtype=object)
        else:
            raise InvalidArgument(f"features[{index}] ({feature.name}): set numeric or categorical values")
    return columns


def summary_proto(version: int, reference: ReferenceProfile) -> drift_pb2.ReferenceSummary:
    return drift_pb2.ReferenceSummary(
        model_version=version,
        rows=reference.rows,
        numeric_features=[n for n in reference.features if n in reference.numeric],
        categorical_features=[n for n in reference.features if n in reference.categorical],
        has_predictions=reference.prediction is not None,
    )


def feature_proto(result: FeatureResult) -> drift_pb2.FeatureDrift:
    return drift_pb2.FeatureDrift(
        feature=result.feature,
        kind=_KINDS.get(result.kind, drift_pb2.FEATURE_KIND_UNSPECIFIED),
        verdict=_VERDICTS[result.verdict],
        reason=result.reason,
        current_count=result.current_count,
        signals=[
            drift_pb2.Signal(
                name=s.name,
                value=s.value,
                threshold=s.threshold,
                p_value=s.p_value,
                adjusted_p_value=s.adjusted_p_value,
                fired=s.fired,
            )
            for s in result.signals
        ],
    )


def report_proto(report: DriftReport) -> drift_pb2.DriftReport:
    proto = drift_pb2.DriftReport(
        report_id=report.report_id,
        model_version=report.model_version,
        window_id=report.window_id,
        reference_rows=report.reference_rows,
        current_rows=report.current_rows,
        features=[feature_proto(f) for f in report.features],
        verdict=_VERDICTS[report.verdict],
        created_time=timestamps.from_ms(report.created_ms),
    )
    if report.window_id:
        proto.window_start_time.CopyFrom(timestamps.from_ms(report.window_start_ms))
        proto.window_end_time.CopyFrom(timestamps.from_ms(report.window_end_ms))
    if report.prediction is not None:
        proto.prediction.CopyFrom(feature_proto(report.prediction))
    if report.estimated_mae is not None:
        proto.estimated_mae = report.estimated_mae
        proto.estimated_mae_upper = report.estimated_mae_upper
    return proto


def alert_proto(alert: Alert) -> drift_pb2.Alert:
    proto = drift_pb2.Alert(
        alert_id=alert.alert_id,
        kind=_ALERT_KINDS[alert.kind],
        model_version=alert.model_version,
        features=alert.features,
        reason=alert.reason,
        episode_id=alert.episode_id,
        raised_time=timestamps.from_ms(alert.raised_ms),
        report_id=alert.report_id,
        detector=alert.detector,
        retrain_job_id=alert.retrain_job_id,
    )
    if alert.data_ms:
        proto.data_time.CopyFrom(timestamps.from_ms(alert.data_ms))
    return proto


def incident_proto(incident: Incident) -> drift_pb2.Incident:
    proto = drift_pb2.Incident(
        incident_id=incident.incident_id,
        kind=_INCIDENT_KINDS[incident.kind],
        model_version=incident.model_version,
        feature_groups=incident.groups,
        features=incident.features,
        status=_STATUSES[incident.status],
        severity=_SEVERITIES[incident.severity],
        reason=incident.reason,
        opened_time=timestamps.from_ms(incident.opened_ms),
        updated_time=timestamps.from_ms(incident.updated_ms),
        changed_time=timestamps.from_ms(incident.changed_ms),
        opened_data_time=timestamps.from_ms(incident.opened_data_ms),
        resolution=incident.resolution,
        acknowledged_by=incident.acknowledged_by,
        acknowledge_note=incident.acknowledge_note,
        windows=[
            drift_pb2.IncidentWindow(
                window_id=w.window_id, start_time=timestamps.from_ms(w.start_ms), end_time=timestamps.from_ms(w.end_ms)
            )
            for w in incident.windows
        ],
        evidence_json=json.dumps(incident.evidence, sort_keys=True),
        revision=incident.revision,
        retrain_job_id=incident.retrain_job_id,
    )
    if incident.resolved_ms:
        proto.resolved_time.CopyFrom(timestamps.from_ms(incident.resolved_ms))
    if incident.acknowledged_ms:
        proto.acknowledged_time.CopyFrom(timestamps.from_ms(incident.acknowledged_ms))
    return proto


def _keys(keys) -> tuple[np.ndarray, np.ndarray]:
    stores = validation.identifiers(keys.store_ids, "keys.store_ids")
    medications = validation.identifiers(keys.medication_ids, "keys.medication_ids")
    return np.asarray(stores, dtype=object), np.asarray(medications, dtype=object)


#: The role each RPC needs (rxcast.runtime.auth). A reference is the trainer's to
#: register (its `publish` role): no one else, admin included, can plant one.
ROLES = auth.RoleTable(
    drift_pb2.DESCRIPTOR.services_by_name["DriftService"].full_name,
    {
        "LogPredictions": auth.INGEST,
        "LogActuals": auth.INGEST,
        "RegisterReference": auth.PUBLISH,
        "GetReference": auth.READ,
        "ScoreWindow": auth.READ,
        "ScoreData": auth.READ,
        "ListReports": auth.READ,
        "ListAlerts": auth.READ,
        "WatchAlerts": auth.READ,
        "ListIncidents": auth.READ,
        "GetIncident": auth.READ,
        "AcknowledgeIncident": auth.OPERATE,
        "WatchIncidents": auth.READ,
    },
)


class DriftServicer(drift_pb2_grpc.DriftServiceServicer):
    def __init__(self, engine: DriftEngine):
        self.engine = engine

    def LogPredictions(self, request_iterator, context):
        accepted = rejected = 0
        for request in request_iterator:
            if request.model_version <= 0:
                raise InvalidArgument(f"model_version: must be > 0, got {request.model_version}")
            predictions = np.asarray(request.predictions, dtype=float)
            try:
                features = feature_columns(request.features)
            except InvalidArgument as exc:
                self.engine.reject(request.model_version, predictions.size, request.source, exc.message)
                rejected += predictions.size
                continue
            stores, medications = _keys(request.keys)
            outcome = self.engine.log_predictions(
                request.model_version,
                stores,
                medications,
                np.asarray(request.event_times_unix_ms, dtype=np.int64),
                features,
                predictions,
                request.source,
                sync=False,
            )
            accepted += outcome.accepted
            rejected += outcome.rejected
        self.engine.sync()  # the response acknowledges every row of the stream: on disk first
        return drift_pb2.LogPredictionsResponse(accepted_rows=accepted, rejected_rows=rejected)

    def LogActuals(self, request_iterator, context):
        matched = unmatched = 0
        for request in request_iterator:
            stores, medications = _keys(request.keys)
            outcome = self.engine.log_actuals(
                stores,
                medications,
                np.asarray(request.event_times_unix_ms, dtype=np.int64),
                np.asarray(request.actuals, dtype=float),
                sync=False,
            )
            matched += outcome.matched
            unmatched += outcome.unmatched
        self.engine.sync()
        return drift_pb2.LogActualsResponse(matched_rows=matched, unmatched_rows=unmatched)

    def RegisterReference(self, request, context):
        try:
            profile = json.loads(request.profile_json) if request.profile_json else None
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"profile_json: not valid JSON: {exc}") from None
        if profile is None:
            raise InvalidArgument("profile_json: is empty")
        reference = self.engine.register_reference(request.model_version, profile)
        return drift_pb2.RegisterReferenceResponse(reference=summary_proto(request.model_version, reference))

    def GetReference(self, request, context):
        reference = self.engine.reference(request.model_version)
        return drift_pb2.GetReferenceResponse(reference=summary_proto(request.model_version, reference))

    def ScoreWindow(self, request, context):
        return drift_pb2.ScoreWindowResponse(
            report=report_proto(self.engine.score_window(request.model_version, request.window_id))
        )

    def ScoreData(self, request, context):
        predictions = np.asarray(request.predictions, dtype=float)
        report = self.engine.score_data(
            request.model_version, feature_columns(request.features), predictions if predictions.size else None
        )
        return drift_pb2.ScoreDataResponse(report=report_proto(report))

    def ListReports(self, request, context):
        reports = self.engine.list_reports(request.model_version, request.limit)
        return drift_pb2.ListReportsResponse(reports=[report_proto(r) for r in reports])

    def ListAlerts(self, request, context):
        alerts = self.engine.list_alerts(request.model_version, request.limit)
        return drift_pb2.ListAlertsResponse(alerts=[alert_proto(a) for a in alerts])

    def WatchAlerts(self, request, context):
        for alert in self.engine.watch_alerts(request.after_alert_id, context.is_active):
            yield drift_pb2.WatchAlertsResponse(alert=alert_proto(alert))

    def ListIncidents(self, request, context):
        incidents = self.engine.list_incidents(request.model_version, request.open_only, request.limit)
        return drift_pb2.ListIncidentsResponse(incidents=[incident_proto(i) for i in incidents])

    def GetIncident(self, request, context):
        return drift_pb2.GetIncidentResponse(incident=incident_proto(self.engine.get_incident(request.incident_id)))

    def AcknowledgeIncident(self, request, context):
        incident = self.engine.acknowledge_incident(request.incident_id, request.acknowledged_by, request.note)
        return drift_pb2.AcknowledgeIncidentResponse(incident=incident_proto(incident))

    def WatchIncidents(self, request, context):
        for incident in self.engine.watch_incidents(request.after_revision, context.is_active):
            yield drift_pb2.WatchIncidentsResponse(incident=incident_proto(incident))
