"""The predictor's client: online forecasts, batch lookups and runs, model status."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc
import numpy as np

from rxcast.clients.base import ServiceClient
from rxcast.predictor.v1 import predictor_pb2 as pb
from rxcast.predictor.v1 import predictor_pb2_grpc
from rxcast.runtime import timestamps
from rxcast.runtime.tls import Trust

DEFAULT_ADDRESS = "127.0.0.1:50053"


def _keys(store_ids: Sequence[str] | np.ndarray, medication_ids: Sequence[str] | np.ndarray) -> pb.EntityKeys:
    return pb.EntityKeys(
        store_ids=list(np.asarray(store_ids).tolist()), medication_ids=list(np.asarray(medication_ids).tolist())
    )


class PredictorClient(ServiceClient):
    SERVICE = pb.DESCRIPTOR.services_by_name["PredictorService"]
    STUB = predictor_pb2_grpc.PredictorServiceStub
    NAME = "predictor"

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout: float = 30.0,
        max_message_mb: int = 64,
        trust: Trust | None = None,
    ):
        super().__init__(address, timeout=timeout, max_message_mb=max_message_mb, trust=trust)

    def predict(
        self, store_ids, medication_ids, as_of_ms: int | None = None, *, dry_run: bool = False
    ) -> pb.PredictResponse:
        """Forecasts for each entity, with the freshest features (as of `as_of_ms`
        when given); a `dry_run` is not logged for drift monitoring."""
        request = pb.PredictRequest(keys=_keys(store_ids, medication_ids), dry_run=dry_run)
        if as_of_ms is not None:
            request.as_of_time.CopyFrom(timestamps.from_ms(as_of_ms))
        try:
            return self.stub.Predict(request)
        except grpc.RpcError as exc:
            raise self.failed(exc, "Predict") from None

    def batch_predictions(self, store_ids, medication_ids, run_id: str = "") -> pb.GetBatchPredictionsResponse:
        """Precomputed forecasts of the newest batch run (or `run_id`)."""
        request = pb.GetBatchPredictionsRequest(keys=_keys(store_ids, medication_ids), run_id=run_id)
        try:
            return self.stub.GetBatchPredictions(request)
        except grpc.RpcError as exc:
            raise self.failed(exc, "GetBatchPredictions") from None

    def run_batch(
        self, as_of_ms: int | None = None, reason: str = "", timeout: float = 3600.0
    ) -> Iterator[pb.BatchRun]:
        """Start a batch run and follow its progress until it ends."""
        request = pb.RunBatchRequest(reason=reason)
        if as_of_ms is not None:
            request.as_of_time.CopyFrom(timestamps.from_ms(as_of_ms))
        try:
            for answer in self.stub.RunBatch(request, timeout=timeout):
                yield answer.run
        except grpc.RpcError as exc:
            raise self.failed(exc, "RunBatch") from None

    def list_batch_runs(self, limit: int = 0) -> list[pb.BatchRun]:
        """The newest batch runs first (`limit` 0: the service's default)."""
        try:
            return list(self.stub.ListBatchRuns(pb.ListBatchRunsRequest(limit=limit)).runs)
        except grpc.RpcError as exc:
            raise self.failed(exc, "ListBatchRuns") from None

    def model_status(self) -> pb.GetModelStatusResponse:
        try:
            return self.stub.GetModelStatus(pb.GetModelStatusRequest())
        except grpc.RpcError as exc:
            raise self.failed(exc, "GetModelStatus") from None
