"""The PredictorService servicer: protos in, plain arrays to the domain code, protos out.

(The Open Inference Protocol's servicer is rxcast.predictor.open_inference_grpc.)
"""

from __future__ import annotations

import time

from rxcast.predictor.batch.runner import BatchRunner
from rxcast.predictor.batch.runs import FAILED, RUNNING, SUCCEEDED, RunRecord
from rxcast.predictor.batch.store import BatchStore
from rxcast.predictor.frame import EntityBatch
from rxcast.predictor.holder import ModelHolder
from rxcast.predictor.online import OnlinePredictor
from rxcast.predictor.policy import Forecasts
from rxcast.predictor.v1 import predictor_pb2 as pb
from rxcast.predictor.v1 import predictor_pb2_grpc as pb_grpc
from rxcast.runtime import auth, timestamps, validation
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument

_STATES = {
    RUNNING: pb.BATCH_RUN_STATE_RUNNING,
    SUCCEEDED: pb.BATCH_RUN_STATE_SUCCEEDED,
    FAILED: pb.BATCH_RUN_STATE_FAILED,
}


def _timestamp(seconds: float | None) -> timestamps.Timestamp | None:
    return None if seconds is None else timestamps.from_seconds(seconds)


def _as_of_ms(request: pb.PredictRequest) -> int | None:
    return timestamps.optional_ms(request, "as_of_time")


def predict_response(result: Forecasts) -> pb.PredictResponse:
    return pb.PredictResponse(
        forecasts=result.values.tolist(),
        flags=result.flags.tolist(),
        feature_ages_seconds=result.feature_ages_seconds.tolist(),
        model_version=result.model_version,
        horizon_days=result.horizon_days,
    )


def batch_run(record: RunRecord) -> pb.BatchRun:
    return pb.BatchRun(
        run_id=record.run_id,
        state=_STATES[record.state],
        as_of_time=timestamps.from_ms(record.as_of_ms),
        model_version=record.model_version,
        rows_total=record.rows_total,
        rows_done=record.rows_done,
        started_time=_timestamp(record.started),
        finished_time=_timestamp(record.finished),
        error=record.error,
        reason=record.reason,
    )


#: The role each RPC needs (rxcast.runtime.auth).
ROLES = auth.RoleTable(
    pb.DESCRIPTOR.services_by_name["PredictorService"].full_name,
    {
        "Predict": auth.READ,
        "PredictStream": auth.READ,
        "GetBatchPredictions": auth.READ,
        "RunBatch": auth.OPERATE,
        "ListBatchRuns": auth.READ,
        "GetModelStatus": auth.READ,
    },
)


class PredictorServicer(pb_grpc.PredictorServiceServicer):
    """One servicer for both modes; the other mode's RPCs answer FAILED_PRECONDITION."""

    def __init__(
        self,
        mode: str,
        holder: ModelHolder,
        online: OnlinePredictor | None = None,
        runner: BatchRunner | None = None,
        store: BatchStore | None = None,
        max_keys: int = 10_000,
    ):
        self._mode = mode
        self._max_keys = max_keys
        self._holder = holder
        self._online = online
        self._runner = runner
        self._store = store

    def _require(self, mode: str, rpc: str) -> None:
        if self._mode != mode:
            raise FailedPrecondition(
                f"{rpc} is served by predictors in {mode} mode; this one runs in {self._mode} mode"
            )

    def Predict(self, request, context):
        self._require("online", "Predict")
        result = self._online.predict(
            request.keys.store_ids, request.keys.medication_ids, _as_of_ms(request), log=not request.dry_run
        )
        return predict_response(result)

    def PredictStream(self, request_iterator, context):
        self._require("online", "PredictStream")
        for item in request_iterator:
            try:
                result = self._online.predict(
                    item.request.keys.store_ids,
                    item.request.keys.medication_ids,
                    _as_of_ms(item.request),
                    log=not item.request.dry_run,
                )
            except InvalidArgument as exc:
                raise InvalidArgument(f"request {validation.quote(item.request_id)}: {exc.message}") from None
            yield pb.PredictStreamResponse(request_id=item.request_id, response=predict_response(result))

    def GetBatchPredictions(self, request, context):
        self._require("batch", "GetBatchPredictions")
        keys = EntityBatch.validated(request.keys.store_ids, request.keys.medication_ids, max_rows=self._max_keys)
        run = self._store.get(request.run_id)
        forecasts, found, flags = run.lookup(keys.store_ids, keys.medication_ids)
        record = run.record
        return pb.GetBatchPredictionsResponse(
            forecasts=forecasts.tolist(),
            found=found.tolist(),
            flags=flags.tolist(),
            run_id=record.run_id,
            model_version=record.model_version,
            as_of_time=timestamps.from_ms(record.as_of_ms),
            age_seconds=time.time() - record.as_of_ms / 1000.0,
            horizon_days=record.horizon_days,
        )

    def RunBatch(self, request, context):
        self._require("batch", "RunBatch")
        as_of_ms = timestamps.optional_ms(request, "as_of_time")
        if as_of_ms is not None and as_of_ms > time.time() * 1000 + 60_000:
            raise InvalidArgument("as_of_time: must not be in the future")
        handle = self._runner.start_run(as_of_ms, validation.clip_text(request.reason) or "manual")
        for record in handle.updates():
            if not context.is_active():
                return  # the run goes on without its caller
            yield pb.RunBatchResponse(run=batch_run(record))

    def ListBatchRuns(self, request, context):
        self._require("batch", "ListBatchRuns")
        if request.limit < 0:
            raise InvalidArgument(f"limit: must be >= 0, got {request.limit}")
        return pb.ListBatchRunsResponse(runs=[batch_run(r) for r in self._runner.records(request.limit)])

    def GetModelStatus(self, request, context):
        model = self._holder.peek()
        status = self._holder.status
        response = pb.GetModelStatusResponse(mode=self._mode, last_error=status.last_error, alias=status.alias)
        if status.last_poll_time is not None:
            response.last_poll_time.CopyFrom(_timestamp(status.last_poll_time))
        if model is not None:
            response.model_version = model.version
            response.sha256 = model.manifest.sha256
            response.loaded_time.CopyFrom(_timestamp(model.loaded_at))
            response.feature_names.extend(model.feature_names)
        return response
