"""A real drift process killed with SIGKILL loses nothing it acknowledged:
logged predictions still match their actuals after a restart on the same data
directory (pushed by LogActuals, or collected from a feature service), open
windows keep their rows, and a state file that cannot be read is set aside
while the service starts and serves."""

from __future__ import annotations

import json
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest

from rxcast.clients import DriftClient
from rxcast.drift.v1 import drift_pb2
from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.model.profile import build_reference_profile
from rxcast.runtime import tls
from rxcast.suite.launcher import ServiceProcess
from tests.scrape import metrics_text

DAY_MS = 86_400_000
ROWS = 200
WINDOW = 150  # 200 rows of one day: one window closes (a checkpoint), 50 rows stay open


@pytest.fixture(scope="module")
def profile_json() -> str:
    rng = np.random.default_rng(71)
    profile = build_reference_profile(
        {"x": rng.normal(size=2000)}, [], rng.normal(10.0, 1.0, 2000), rng.normal(size=2000)
    )
    return json.dumps(profile.to_dict())


def _start(root, data_dir, *extra: str) -> ServiceProcess:
    return (
        ServiceProcess(
            "drift", root, ["--data-dir", str(data_dir), "--window-rows", str(WINDOW), "--access-log", "false", *extra]
        )
        .start()
        .wait_ready()
    )


def _stores(first: int, n: int) -> list[str]:
    return [f"s{i}" for i in range(first, first + n)]


def _log(stub, first: int, n: int, day: int = 20_000) -> drift_pb2.LogPredictionsResponse:
    """Calls of 50 rows each on one stream, as a predictor sends them."""
    rng = np.random.default_rng(first)
    requests = [
        drift_pb2.LogPredictionsRequest(
            model_version=1,
            keys=drift_pb2.EntityKeys(store_ids=_stores(start, 50), medication_ids=["m"] * 50),
            event_times_unix_ms=[day * DAY_MS + 1] * 50,
            features=[
                drift_pb2.FeatureValues(name="x", numeric=drift_pb2.DoubleList(values=rng.normal(size=50).tolist()))
            ],
            predictions=rng.normal(10.0, 1.0, 50).tolist(),
            source="online",
        )
        for start in range(first, first + n, 50)
    ]
    return stub.LogPredictions(iter(requests))


def _actuals(first: int, n: int, day: int = 20_000) -> drift_pb2.LogActualsRequest:
    return drift_pb2.LogActualsRequest(
        keys=drift_pb2.EntityKeys(store_ids=_stores(first, n), medication_ids=["m"] * n),
        event_times_unix_ms=[day * DAY_MS + 1] * n,
        actuals=[10.0] * n,
    )


def _stub(process: ServiceProcess):
    """The shared client's channel and stub, for tests that send raw messages."""
    client = DriftClient(process.address, timeout=30.0)
    return client.channel, client.stub


def test_predictions_logged_before_a_sigkill_match_their_actuals_after_it(tmp_path, profile_json):
    data = tmp_path / "data"
    process = _start(tmp_path, data)
    try:
        channel, stub = _stub(process)
        stub.RegisterReference(drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=profile_json))
        assert _log(stub, 0, ROWS).accepted_rows == ROWS
        # A few actuals before the kill: their matches are acknowledged too.
        assert stub.LogActuals(iter([_actuals(0, 20)])).matched_rows == 20
        reports = [r.report_id for r in stub.ListReports(drift_pb2.ListReportsRequest()).reports]
        open_before = stub.ScoreWindow(drift_pb2.ScoreWindowRequest(model_version=1)).report
        assert (open_before.window_id, open_before.current_rows) == ("v1-w2", ROWS - WINDOW)
        channel.close()
    finally:
        process.kill()  # SIGKILL: no graceful stop, no final checkpoint

    restarted = _start(tmp_path, data)
    try:
        channel, stub = _stub(restarted)
        reopened = stub.ScoreWindow(drift_pb2.ScoreWindowRequest(model_version=1)).report
        assert (reopened.window_id, reopened.current_rows) == (open_before.window_id, open_before.current_rows)
        assert [r.report_id for r in stub.ListReports(drift_pb2.ListReportsRequest()).reports] == reports
        answer = stub.LogActuals(iter([_actuals(0, ROWS)]))
        assert (answer.matched_rows, answer.unmatched_rows) == (ROWS, 0)
        # Rows logged after the restart join the same open window, which closes as it would have.
        assert _log(stub, ROWS, 100).accepted_rows == 100
        windows = [r.window_id for r in stub.ListReports(drift_pb2.ListReportsRequest()).reports]
        assert windows == ["v1-w2", "v1-w1"]
        channel.close()
    finally:
        assert restarted.stop() == 0


class ActualsStandIn(feature_pb2_grpc.FeatureServiceServicer):
    """GetActuals of the feature contract: NOT_FOUND until `release`, then 10 units for every row."""

    def __init__(self):
        self.released = threading.Event()
        self.asked = 0

    def GetActuals(self, request, context):
        n = len(request.rows.keys.store_ids)
        self.asked += n
        present = self.released.is_set()
        status = feature_pb2.FEATURE_STATUS_PRESENT if present else feature_pb2.FEATURE_STATUS_NOT_FOUND
        return feature_pb2.GetActualsResponse(
            values=[10.0 if present else 0.0] * n, statuses=[status] * n, horizon_days=7
        )


@pytest.fixture
def feature_stand_in():
    servicer = ActualsStandIn()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    feature_pb2_grpc.add_FeatureServiceServicer_to_server(servicer, server)
    port = tls.add_port(server, "127.0.0.1:0", tls.client_trust())
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(None)


def _metric(process: ServiceProcess, line_prefix: str) -> float:
    text = metrics_text(process.metrics_port)
    for line in text.splitlines():
        if line.startswith(line_prefix):
            return float(line.split()[-1])
    return 0.0


def test_the_collector_of_a_restarted_process_finds_the_predictions_logged_before_the_kill(
    tmp_path, profile_json, feature_stand_in
):
    servicer, address = feature_stand_in
    data = tmp_path / "data"
    collect = ["--feature-address", address, "--collect-seconds", "0.2", "--actuals-retry-seconds", "0"]
    process = _start(tmp_path, data, *collect)
    try:
        channel, stub = _stub(process)
        stub.RegisterReference(drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=profile_json))
        assert _log(stub, 0, ROWS).accepted_rows == ROWS
        deadline = time.monotonic() + 30
        while servicer.asked < ROWS and time.monotonic() < deadline:  # asked, not there yet
            time.sleep(0.1)
        assert servicer.asked >= ROWS
        channel.close()
    finally:
        process.kill()

    servicer.released.set()  # the horizon has elapsed: the feature service has the actuals now
    restarted = _start(tmp_path, data, *collect)
    try:
        matched = 'rxcast_drift_actuals_total{outcome="matched"}'
        deadline = time.monotonic() + 60
        while _metric(restarted, matched) < ROWS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _metric(restarted, matched) == ROWS
    finally:
        assert restarted.stop() == 0


def test_a_corrupt_state_file_is_set_aside_and_the_service_starts_and_serves(tmp_path, profile_json):
    data = tmp_path / "data"
    process = _start(tmp_path, data)
    try:
        channel, stub = _stub(process)
        stub.RegisterReference(drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=profile_json))
        assert _log(stub, 0, ROWS).accepted_rows == ROWS
        channel.close()
    finally:
        process.kill()
    state = data / "state"
    (state / "engine.json").write_bytes(b'{"format": "rxcast.drift.engine/1", "segm\x00')
    (data / "episodes.json").write_text("[not, json")

    restarted = _start(tmp_path, data)
    try:
        assert restarted.health() == "SERVING"
        assert len(list(state.glob("engine.json.corrupt-*"))) == 1
        assert len(list(data.glob("episodes.json.corrupt-*"))) == 1
        assert "state file quarantined" in restarted.log_path.read_text()
        channel, stub = _stub(restarted)
        # What was whole is kept: the reference and every logged prediction (from the journal).
        assert stub.GetReference(drift_pb2.GetReferenceRequest(model_version=1)).reference.rows == 2000
        assert stub.LogActuals(iter([_actuals(0, ROWS)])).matched_rows == ROWS
        assert _log(stub, ROWS, 200).accepted_rows == 200
        # The lost open window's id is not reused: the next one after the reported v1-w1.
        windows = [r.window_id for r in stub.ListReports(drift_pb2.ListReportsRequest()).reports]
        assert windows == ["v1-w2", "v1-w1"]
        channel.close()
    finally:
        assert restarted.stop() == 0
