"""Conversions between the trainer's protos and its domain objects."""

from __future__ import annotations

from typing import Any

from rxcast.model.timebase import day_number, day_text
from rxcast.runtime import timestamps
from rxcast.runtime.errors import InvalidArgument
from rxcast.trainer.evaluation import Evaluation, Metrics
from rxcast.trainer.jobs import JobSnapshot
from rxcast.trainer.params import TrainingParams
from rxcast.trainer.pipeline import JobSpec, Stage
from rxcast.trainer.policy import Policy, Trigger
from rxcast.trainer.registry import AliasChange, VersionInfo, alias_name
from rxcast.trainer.runner import Status
from rxcast.trainer.v1 import trainer_pb2

_PARAM_FIELDS = (
    "num_boost_round", "learning_rate", "num_leaves", "min_data_in_leaf",
    "feature_fraction", "objective", "seed", "holdout_days",
)  # fmt: skip

STAGES = {
    Stage.QUEUED: trainer_pb2.JOB_STATE_QUEUED,
    Stage.LOADING: trainer_pb2.JOB_STATE_LOADING,
    Stage.TRAINING: trainer_pb2.JOB_STATE_TRAINING,
    Stage.EVALUATING: trainer_pb2.JOB_STATE_EVALUATING,
    Stage.PUBLISHING: trainer_pb2.JOB_STATE_PUBLISHING,
    Stage.SUCCEEDED: trainer_pb2.JOB_STATE_SUCCEEDED,
    Stage.FAILED: trainer_pb2.JOB_STATE_FAILED,
}


def timestamp(value: float | str) -> timestamps.Timestamp:
    """Epoch seconds or an ISO 8601 instant as a Timestamp."""
    return timestamps.from_text(value) if isinstance(value, str) else timestamps.from_seconds(value)


def requested_params(params: trainer_pb2.TrainingParams) -> dict[str, Any]:
    """The fields a request set explicitly, by name."""
    given: dict[str, Any] = {name: getattr(params, name) for name in _PARAM_FIELDS if params.HasField(name)}
    if params.extra:
        given["extra"] = dict(params.extra)
    return given


def job_spec(request: trainer_pb2.StartTrainingRequest, defaults: TrainingParams) -> tuple[JobSpec, dict[str, Any]]:
    """The job a StartTraining request asks for, and its explicit parameters."""
    if not request.HasField("window"):
        raise InvalidArgument("window: required (start_day and end_day as YYYY-MM-DD)")
    start = day_number(request.window.start_day, "window.start_day")
    end = day_number(request.window.end_day, "window.end_day")
    given = requested_params(request.params)
    params = defaults.with_overrides(given)
    spec = JobSpec(
        start_day=start,
        end_day=end,
        params=params,
        reason=request.reason,
        promote=request.promote,
        alias=alias_name(request.alias),
    )
    return spec, given


def request_proto(spec: JobSpec, given: dict[str, Any]) -> trainer_pb2.StartTrainingRequest:
    params = trainer_pb2.TrainingParams(**{k: v for k, v in given.items() if k != "extra"})
    params.extra.update(given.get("extra", {}))
    return trainer_pb2.StartTrainingRequest(
        window=trainer_pb2.DayWindow(start_day=day_text(spec.start_day), end_day=day_text(spec.end_day)),
        params=params,
        reason=spec.reason,
        promote=spec.promote,
        alias=spec.alias,
    )


def metrics_proto(metrics: Metrics) -> trainer_pb2.Metrics:
    return trainer_pb2.Metrics(mae=metrics.mae, rmse=metrics.rmse, wape=metrics.wape, rows=metrics.rows)


def evaluation_proto(evaluation: Evaluation) -> trainer_pb2.Evaluation:
    proto = trainer_pb2.Evaluation(
        model=metrics_proto(evaluation.model),
        baseline=metrics_proto(evaluation.baseline),
        champion_version=evaluation.champion_version if evaluation.champion is not None else 0,
        holdout=trainer_pb2.DayWindow(**evaluation.holdout),
    )
    if evaluation.champion is not None:
        proto.champion.CopyFrom(metrics_proto(evaluation.champion))
    return proto


def job_proto(job: JobSnapshot) -> trainer_pb2.TrainingJob:
    proto = trainer_pb2.TrainingJob(
        job_id=job.job_id,
        state=STAGES[job.stage],
        request=request_proto(job.spec, job.requested_params),
        rows_loaded=job.rows_loaded,
        rounds_done=job.rounds_done,
        rounds_total=job.rounds_total,
        message=job.message,
        version=job.version,
        promoted=job.promoted,
        error=job.error,
        created_time=timestamp(job.created_time),
        updated_time=timestamp(job.updated_time),
    )
    if job.evaluation is not None:
        proto.evaluation.CopyFrom(evaluation_proto(job.evaluation))
    return proto


def version_proto(info: VersionInfo, aliases: list[str], include_manifest: bool) -> trainer_pb2.ModelVersion:
    manifest = info.manifest
    proto = trainer_pb2.ModelVersion(
        version=info.version,
        created_time=timestamp(manifest.created_time),
        sha256=manifest.sha256,
        size_bytes=info.size_bytes,
        training_window=trainer_pb2.DayWindow(**manifest.training_window),
        aliases=aliases,
        reason=manifest.reason,
        feature_names=list(manifest.feature_names),
    )
    if manifest.metrics.get("model"):
        proto.evaluation.CopyFrom(evaluation_proto(Evaluation.from_dict(manifest.metrics)))
    if include_manifest:
        proto.manifest_json = manifest.to_json()
    return proto


def change_proto(change: AliasChange) -> trainer_pb2.AliasChange:
    return trainer_pb2.AliasChange(
        alias=change.alias,
        from_version=change.from_version,
        to_version=change.to_version,
        reason=change.reason,
        kind=change.kind,
        time=timestamp(change.time),
    )


def policy(message: trainer_pb2.TrainingPolicy) -> Policy:
    """The policy a SetTrainingPolicy request names (checked by Policy itself)."""
    return Policy(
        alias=alias_name(message.alias),
        every_data_days=message.every_data_days,
        every_wall_seconds=message.every_wall_seconds,
        window_days=message.window_days,
        holdout_days=message.holdout_days,
        follow_triggers=message.follow_triggers,
        gate_margin=message.gate_margin if message.HasField("gate_margin") else None,
    )


def policy_proto(value: Policy) -> trainer_pb2.TrainingPolicy:
    return trainer_pb2.TrainingPolicy(**{k: v for k, v in value.to_dict().items() if v is not None})


def trigger_proto(trigger: Trigger) -> trainer_pb2.Trigger:
    return trainer_pb2.Trigger(
        trigger_id=trigger.trigger_id,
        kind=trigger.kind,
        changed_at=timestamps.from_ms(trigger.changed_ms),
        reason=trigger.reason,
        targets=[
            trainer_pb2.TriggerTarget(
                alias=t.alias, runnable_day=day_text(t.runnable_day), state=t.state, job_id=t.job_id, outcome=t.outcome
            )
            for t in trigger.targets
        ],
        received_time=timestamp(trigger.received_time),
    )


def status_proto(status: Status) -> trainer_pb2.PolicyStatus:
    state = status.state
    proto = trainer_pb2.PolicyStatus(
        policy=policy_proto(status.policy),
        data_day="" if state.data_day is None else day_text(state.data_day),
        busy=status.busy,
        last_job_id=state.last_job_id,
        why_trained=state.why_trained,
        why_not_promoted=state.why_not_promoted,
        next_run_at=status.next_words,
        next_run_day="" if status.next_day is None else day_text(status.next_day),
        pending_triggers=[trigger_proto(t) for t in status.triggers],
        failed_attempts=state.failed_attempts,
        jobs_started=state.jobs_started,
        fitted_through="" if state.fitted_through is None else day_text(state.fitted_through),
    )
    if status.next_time is not None:
        proto.next_run_time.CopyFrom(timestamp(status.next_time))
    return proto
