"""Requests whose bytes are no message of the RPC's type: INVALID_ARGUMENT naming
the type, and a process that still shuts down within its grace afterwards
(grpcio's own answer, INTERNAL, left a client-streaming call half-closed and
server.stop() waiting for it forever)."""

from __future__ import annotations

import time

import grpc
import pytest

from rxcast.drift.v1 import drift_pb2
from rxcast.runtime import channels
from rxcast.suite.launcher import ServiceProcess

GRACE = 3.0
UNDECODABLE = b"\xff\xff\xff"


@pytest.fixture
def drift(tmp_path):
    process = ServiceProcess(
        "drift", tmp_path, ["--data-dir", str(tmp_path / "data"), "--grace-seconds", str(GRACE)]
    ).start()
    yield process.wait_ready()
    process.kill()


def test_undecodable_unary_request_is_invalid_argument(drift):
    with channels.with_options(drift.address, ()) as channel, pytest.raises(grpc.RpcError) as info:
        channel.unary_unary("/rxcast.drift.v1.DriftService/ListReports")(UNDECODABLE, timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "request: 3 bytes that are not a rxcast.drift.v1.ListReportsRequest message"


def test_sigterm_after_an_undecodable_stream_message_exits_within_the_grace(drift):
    good = drift_pb2.LogPredictionsRequest().SerializeToString()
    with channels.with_options(drift.address, ()) as channel:
        log_predictions = channel.stream_unary("/rxcast.drift.v1.DriftService/LogPredictions")
        with pytest.raises(grpc.RpcError) as info:
            log_predictions(iter([UNDECODABLE, good]), timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "LogPredictionsRequest" in info.value.details()
    started = time.monotonic()
    code = drift.stop(timeout=30)
    assert code == 0, drift.log_tail()
    # Without the fix it never ends (SIGKILL at the timeout, code -9); the margin is for a loaded machine.
    assert time.monotonic() - started < GRACE + 8
