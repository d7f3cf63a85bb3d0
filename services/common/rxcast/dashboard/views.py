"""Protobuf answers of the services turned into the plain, JSON-ready rows the
pages draw. Pure functions: no calls, no state."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from rxcast.drift.v1 import drift_pb2
from rxcast.model.timebase import as_of_day, day_text
from rxcast.predictor.v1 import predictor_pb2
from rxcast.trainer.v1 import trainer_pb2

#: Forecast flag bits (the contract's PredictionFlag) as the pages name them.
FLAG_NAMES = {
    value: name.removeprefix("PREDICTION_FLAG_").lower().replace("_", " ")
    for name, value in predictor_pb2.PredictionFlag.items()
    if value
}


def stamp(value: Timestamp) -> str | None:
    """An ISO-8601 instant, or None for an unset Timestamp."""
    if not value.seconds and not value.nanos:
        return None
    return value.ToDatetime().isoformat(timespec="seconds") + "Z"


def flag_names(flags: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if flags & bit]


def _metrics(m: trainer_pb2.Metrics) -> dict[str, float] | None:
    return {"mae": m.mae, "rmse": m.rmse, "wape": m.wape, "rows": m.rows} if m.rows else None


def evaluation(e: trainer_pb2.Evaluation) -> dict[str, Any]:
    return {
        "model": _metrics(e.model),
        "baseline": _metrics(e.baseline),
        "champion": _metrics(e.champion),
        "champion_version": e.champion_version,
        "holdout": [e.holdout.start_day, e.holdout.end_day],
    }


def model_version(v: trainer_pb2.ModelVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "created": stamp(v.created_time),
        "window": [v.training_window.start_day, v.training_window.end_day],
        "aliases": list(v.aliases),
        "reason": v.reason,
        "evaluation": evaluation(v.evaluation),
    }


def alias_change(c: trainer_pb2.AliasChange) -> dict[str, Any]:
    return {
        "alias": c.alias,
        "from": c.from_version,
        "to": c.to_version,
        "kind": c.kind,
        "reason": c.reason,
        "time": stamp(c.time),
    }


def training_job(j: trainer_pb2.TrainingJob) -> dict[str, Any]:
    return {
        "job_id": j.job_id,
        "state": trainer_pb2.JobState.Name(j.state).removeprefix("JOB_STATE_").lower(),
        "rounds_done": j.rounds_done,
        "rounds_total": j.rounds_total,
        "rows_loaded": j.rows_loaded,
        "message": j.message,
        "version": j.version,
        "promoted": j.promoted,
        "error": j.error,
        "reason": j.request.reason,
        "created": stamp(j.created_time),
        "updated": stamp(j.updated_time),
        "evaluation": evaluation(j.evaluation),
    }


def batch_run(r: predictor_pb2.BatchRun) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "state": predictor_pb2.BatchRunState.Name(r.state).removeprefix("BATCH_RUN_STATE_").lower(),
        "as_of": stamp(r.as_of_time),
        "model_version": r.model_version,
        "rows_done": r.rows_done,
        "rows_total": r.rows_total,
        "started": stamp(r.started_time),
        "finished": stamp(r.finished_time),
        "error": r.error,
        "reason": r.reason,
    }


def model_status(s: predictor_pb2.GetModelStatusResponse) -> dict[str, Any]:
    return {
        "mode": s.mode,
        "alias": s.alias,
        "model_version": s.model_version,
        "loaded": stamp(s.loaded_time),
        "last_poll": stamp(s.last_poll_time),
        "last_error": s.last_error,
    }


def _signal(s: drift_pb2.Signal) -> dict[str, Any]:
    row = {"name": s.name, "value": s.value, "threshold": s.threshold, "fired": s.fired}
    if s.HasField("adjusted_p_value"):
        row["adjusted_p_value"] = s.adjusted_p_value
    return row


def feature_drift(f: drift_pb2.FeatureDrift) -> dict[str, Any]:
    return {
        "feature": f.feature,
        "verdict": drift_pb2.Verdict.Name(f.verdict).removeprefix("VERDICT_").lower(),
        "reason": f.reason,
        "current_count": f.current_count,
        "signals": [_signal(s) for s in f.signals],
    }


def drift_report(r: drift_pb2.DriftReport) -> dict[str, Any]:
    return {
        "report_id": r.report_id,
        "model_version": r.model_version,
        "window": [stamp(r.window_start_time), stamp(r.window_end_time)],
        "reference_rows": r.reference_rows,
        "current_rows": r.current_rows,
        "verdict": drift_pb2.Verdict.Name(r.verdict).removeprefix("VERDICT_").lower(),
        "features": [feature_drift(f) for f in r.features if f.verdict != drift_pb2.VERDICT_NO_DRIFT],
        "prediction": feature_drift(r.prediction) if r.HasField("prediction") else None,
        "estimated_mae": r.estimated_mae if r.HasField("estimated_mae") else None,
        "estimated_mae_upper": r.estimated_mae_upper if r.HasField("estimated_mae_upper") else None,
    }


def estimated_errors(reports: Iterable[drift_pb2.DriftReport]) -> list[dict[str, Any]]:
    """The MAE the drift service estimated from each scored window's inputs,
    with its band's upper bound, on the business day the window ends on (the
    day the measured error of the same forecasts is judged on), oldest first;
    windows without an estimate are left out."""
    chosen = sorted(
        (r for r in reports if r.window_id and r.HasField("estimated_mae")),
        key=lambda r: (r.window_end_time.ToMilliseconds(), r.model_version),
    )
    return [
        {
            "day": day_text(int(as_of_day(r.window_end_time.ToMilliseconds()))),
            "window_id": r.window_id,
            "model_version": r.model_version,
            "rows": r.current_rows,
            "estimated_mae": r.estimated_mae,
            "upper": r.estimated_mae_upper if r.HasField("estimated_mae_upper") else None,
        }
        for r in chosen
    ]


def _name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


def incident(i: drift_pb2.Incident) -> dict[str, Any]:
    try:
        evidence = json.loads(i.evidence_json) if i.evidence_json else {}
    except json.JSONDecodeError:
        evidence = {}
    return {
        "incident_id": i.incident_id,
        "kind": _name(drift_pb2.IncidentKind, i.kind, "INCIDENT_KIND_"),
        "status": _name(drift_pb2.IncidentStatus, i.status, "INCIDENT_STATUS_"),
        "severity": _name(drift_pb2.IncidentSeverity, i.severity, "INCIDENT_SEVERITY_"),
        "model_version": i.model_version,
        "feature_groups": list(i.feature_groups),
        "features": list(i.features),
        "reason": i.reason,
        "opened": stamp(i.opened_time),
        "opened_data_time": stamp(i.opened_data_time),
        "changed_data_time": stamp(i.changed_time),
        "updated": stamp(i.updated_time),
        "resolved": stamp(i.resolved_time),
        "resolution": i.resolution,
        "acknowledged_by": i.acknowledged_by,
        "acknowledged": stamp(i.acknowledged_time),
        "acknowledge_note": i.acknowledge_note,
        "windows": [[w.window_id, stamp(w.start_time), stamp(w.end_time)] for w in i.windows],
        "evidence": evidence,
        "retrain_job_id": i.retrain_job_id,
    }


def alert(a: drift_pb2.Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id,
        "kind": drift_pb2.AlertKind.Name(a.kind).removeprefix("ALERT_KIND_").lower(),
        "model_version": a.model_version,
        "features": list(a.features),
        "reason": a.reason,
        "episode_id": a.episode_id,
        "raised": stamp(a.raised_time),
        "data_time": stamp(a.data_time),
        "report_id": a.report_id,
        "detector": a.detector,
        "retrain_job_id": a.retrain_job_id,
    }


def policy_status(p: trainer_pb2.PolicyStatus, job: trainer_pb2.TrainingJob | None) -> dict[str, Any]:
    cadence = []
    if p.policy.every_data_days:
        cadence.append(f"every {p.policy.every_data_days} data day(s)")
    if p.policy.every_wall_seconds:
        cadence.append(f"every {p.policy.every_wall_seconds} s")
    return {
        "alias": p.policy.alias,
        "cadence": ", ".join(cadence) or "on triggers only",
        "data_day": p.data_day,
        "busy": p.busy,
        "fitted_through": p.fitted_through,
        "jobs_started": p.jobs_started,
        "why_trained": p.why_trained,
        "why_not_promoted": p.why_not_promoted,
        "next_run_at": p.next_run_at,
        "pending_triggers": len(p.pending_triggers),
        "last_job": training_job(job) if job is not None else None,
    }
