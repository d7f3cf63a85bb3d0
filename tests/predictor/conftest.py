"""Fixtures of the predictor's tests: stand-in dependencies and predictor processes."""

from __future__ import annotations

import pytest
from inference import grpc_predict_v2_pb2_grpc

from rxcast.clients import PredictorClient
from rxcast.runtime.channels import connect
from rxcast.suite.launcher import ServiceProcess
from tests.predictor.models import MEDICATIONS, STORES, train
from tests.predictor.standins import StandIns


@pytest.fixture(scope="module")
def standins():
    running = StandIns().start()
    for store in STORES:
        for medication in MEDICATIONS:
            running.feature.put(store, medication)
    yield running
    running.stop()


class Predictor:
    """A predictor process and stubs to call it."""

    def __init__(self, process: ServiceProcess):
        self.process = process
        self.client = PredictorClient(process.address)
        self.channel = self.client.channel
        self.stub = self.client.stub
        # The Open Inference Protocol's stub on a channel of its own, without a typed client's retries.
        self._oip_channel = connect(process.address, default_timeout=30.0)
        self.inference = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(self._oip_channel)

    def close(self) -> None:
        self.client.close()
        self._oip_channel.close()
        self.process.stop()


def start_predictor(run_dir, name: str, args: list[str]) -> Predictor:
    process = ServiceProcess("predictor", run_dir, ["--access-log", "false", *args], name=name)
    process.start().wait_ready(60)
    return Predictor(process)


@pytest.fixture(scope="module")
def first_model():
    return train(1, scale=1.0)
