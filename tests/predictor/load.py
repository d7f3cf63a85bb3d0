"""Load on a predictor while its model changes: client threads alternating
unary Predict and a PredictStream, recording every answer and every failure."""

from __future__ import annotations

import threading
import time
from typing import Self

import grpc
import numpy as np

from rxcast.predictor.v1 import predictor_pb2 as pb
from rxcast.predictor.v1 import predictor_pb2_grpc
from rxcast.runtime.channels import connect


class PredictLoad:
    """`threads` clients asking for the same keys until stopped (or `max_calls` each)."""

    def __init__(self, address: str, keys: pb.EntityKeys, threads: int = 4, max_calls: int = 20_000):
        self.address = address
        self.keys = keys
        self.max_calls = max_calls
        #: (monotonic time, model version, forecasts) per answer, in arrival order.
        self.answers: list[tuple[float, int, np.ndarray]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._drive, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def versions(self) -> set[int]:
        return {version for _, version, _ in list(self.answers)}

    def first_answer_of(self, version: int) -> float | None:
        return min((t for t, v, _ in list(self.answers) if v == version), default=None)

    def _drive(self) -> None:
        request = pb.PredictRequest(keys=self.keys)
        with connect(self.address, default_timeout=130.0) as channel:
            stub = predictor_pb2_grpc.PredictorServiceStub(channel)
            stream_requests = (
                pb.PredictStreamRequest(request_id=str(i), request=request) for i in range(self.max_calls)
            )
            stream = stub.PredictStream(stream_requests, timeout=120)
            calls = 0
            while not self._stop.is_set() and calls < self.max_calls:
                calls += 1
                try:
                    answer = stub.Predict(request, timeout=5) if calls % 2 else next(stream).response
                    self.answers.append((time.monotonic(), answer.model_version, np.asarray(answer.forecasts)))
                except grpc.RpcError as exc:
                    self.failures.append(f"{exc.code().name}: {exc.details()}")
                except StopIteration:
                    self.failures.append("the PredictStream ended early")
                    return
            stream.cancel()
