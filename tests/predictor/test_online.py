"""Online forecasts through gRPC against a real predictor process."""

from __future__ import annotations

import re

import grpc
import numpy as np
import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from rxcast.predictor import flags as F
from rxcast.predictor.v1 import predictor_pb2 as pb
from tests.predictor.conftest import start_predictor
from tests.predictor.models import FEATURES
from tests.predictor.standins import wait_for


@pytest.fixture(scope="module")
def online(tmp_path_factory, standins, first_model):
    standins.trainer.publish(first_model)
    predictor = start_predictor(
        tmp_path_factory.mktemp("online"),
        "predictor-online",
        [
            "--mode", "online",
            "--feature-address", standins.addresses["feature"],
            "--trainer-address", standins.addresses["trainer"],
            "--drift-address", standins.addresses["drift"],
            "--poll-interval-seconds", "0.5",
            "--feature-timeout-seconds", "0.5",
        ],
    )  # fmt: skip
    assert wait_for(lambda: predictor.process.health("rxcast.predictor.v1.PredictorService") == "SERVING", 30)
    yield predictor
    predictor.close()


def _keys(stores, medications):
    return pb.EntityKeys(store_ids=stores, medication_ids=medications)


def test_predict_answers_model_forecasts_with_version_ages_and_no_flags(online, first_model):
    answer = online.stub.Predict(pb.PredictRequest(keys=_keys(["S0", "S1"], ["M0", "M3"])), timeout=5)
    assert answer.model_version == 1 and answer.horizon_days == 7
    assert list(answer.flags) == [0, 0]
    assert all(3000 < age < 4000 for age in answer.feature_ages_seconds)
    from rxcast.model import ModelBundle

    bundle = ModelBundle.from_bytes(first_model.model_text, first_model.manifest)
    expected = bundle.predict(
        {
            "dispensed_sum_7d": [10.0, 10.0], "dispensed_sum_28d": [40.0, 40.0], "unit_price": [5.0, 5.0],
            "on_promotion": [0.0, 0.0], "medication_category": ["analgesic", "analgesic"],
            "store_region": ["north", "south"],
        }
    )  # fmt: skip
    np.testing.assert_allclose(answer.forecasts, expected)


def test_cold_start_and_missing_features_are_flagged_fallbacks_not_errors(online, standins, first_model):
    standins.feature.put("S0", "NEWMED", medication_category="statin")
    standins.feature.put("S1", "M1", unit_price=None)
    answer = online.stub.Predict(
        pb.PredictRequest(keys=_keys(["S0", "S1", "S9", "S2"], ["NEWMED", "M1", "M0", "UNKNOWN"])), timeout=5
    )
    priors = first_model.manifest.priors
    flags = list(answer.flags)
    assert flags[0] == F.COLD_START_MEDICATION | F.FALLBACK
    assert answer.forecasts[0] == pytest.approx(priors["by_category"]["statin"])
    assert flags[1] == F.MISSING_FEATURES
    assert flags[2] == F.COLD_START_STORE | F.FALLBACK | F.MISSING_FEATURES  # unknown to the feature store too
    assert flags[3] == F.COLD_START_MEDICATION | F.FALLBACK | F.MISSING_FEATURES
    assert answer.forecasts[3] == pytest.approx(priors["by_store"]["S2"])
    assert answer.feature_ages_seconds[2] == -1.0


@pytest.mark.parametrize(
    "keys, message",
    [
        (_keys(["S0"], ["M0", "M1"]), "differ in length"),
        (_keys([], []), "at least one entity"),
        (_keys(["S0", ""], ["M0", "M1"]), r"keys.store_ids\[1\]"),
        (_keys(["S0"] * 10001, ["M0"] * 10001), "limit of 10000"),
    ],
)
def test_malformed_request_is_invalid_argument_naming_the_problem(online, keys, message):
    with pytest.raises(grpc.RpcError) as caught:
        online.stub.Predict(pb.PredictRequest(keys=keys), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert re.search(message, caught.value.details()), caught.value.details()


def test_an_out_of_range_as_of_time_is_invalid_argument_naming_it(online):
    for stamp in (Timestamp(seconds=2**40), Timestamp(nanos=-5)):
        with pytest.raises(grpc.RpcError) as caught:
            online.stub.Predict(pb.PredictRequest(keys=_keys(["S0"], ["M0"]), as_of_time=stamp), timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details().startswith("as_of_time: "), caught.value.details()


def test_predict_stream_answers_each_request_in_order(online):
    requests = [
        pb.PredictStreamRequest(
            request_id=f"r{i}", request=pb.PredictRequest(keys=_keys(["S0"] * (i + 1), ["M0"] * (i + 1)))
        )
        for i in range(20)
    ]
    answers = list(online.stub.PredictStream(iter(requests), timeout=10))
    assert [a.request_id for a in answers] == [f"r{i}" for i in range(20)]
    assert [len(a.response.forecasts) for a in answers] == list(range(1, 21))
    assert all(a.response.model_version == 1 for a in answers)


def test_predict_stream_names_the_malformed_request(online):
    requests = [
        pb.PredictStreamRequest(request_id="good", request=pb.PredictRequest(keys=_keys(["S0"], ["M0"]))),
        pb.PredictStreamRequest(request_id="bad", request=pb.PredictRequest(keys=_keys(["S0"], []))),
    ]
    stream = online.stub.PredictStream(iter(requests), timeout=10)
    assert next(stream).request_id == "good"
    with pytest.raises(grpc.RpcError) as caught:
        next(stream)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'bad'" in caught.value.details()


def test_feature_service_down_is_unavailable_and_a_stall_does_not_hang(online, standins):
    standins.feature.down = True
    try:
        with pytest.raises(grpc.RpcError) as caught:
            online.stub.Predict(pb.PredictRequest(keys=_keys(["S0"], ["M0"])), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "feature" in caught.value.details()
    finally:
        standins.feature.down = False
    standins.feature.delay = 2.0
    try:
        with pytest.raises(grpc.RpcError) as caught:
            online.stub.Predict(pb.PredictRequest(keys=_keys(["S0"], ["M0"])), timeout=5)
        # The predictor's own feature deadline (0.5 s) ends the wait, well before the caller's 5 s.
        assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        assert "feature service" in caught.value.details()
    finally:
        standins.feature.delay = 0.0


def test_batch_rpcs_answer_failed_precondition_in_online_mode(online):
    with pytest.raises(grpc.RpcError) as caught:
        online.stub.GetBatchPredictions(pb.GetBatchPredictionsRequest(keys=_keys(["S0"], ["M0"])), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "batch mode" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        list(online.stub.RunBatch(pb.RunBatchRequest(), timeout=5))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_model_status_reports_the_served_version(online, first_model):
    status = online.stub.GetModelStatus(pb.GetModelStatusRequest(), timeout=5)
    assert status.mode == "online" and status.model_version == 1 and status.sha256 == first_model.sha256
    assert status.alias == "champion" and list(status.feature_names) == list(FEATURES)
    assert status.last_error == "" and status.last_poll_time.seconds > 0


def test_predictions_reach_the_drift_log(online, standins):
    before = standins.drift.rows()
    online.stub.Predict(pb.PredictRequest(keys=_keys(["S3", "S3"], ["M4", "M5"])), timeout=5)
    assert standins.drift.wait_rows(before + 2, timeout=10)
    logged = standins.drift.requests[-1]
    assert logged.model_version == 1 and logged.source == "online"
    names = [f.name for f in logged.features]
    assert names == list(FEATURES)
    category = next(f for f in logged.features if f.name == "medication_category")
    assert category.WhichOneof("values") == "categorical"


def test_as_of_time_sets_feature_ages_and_the_logged_event_time(online, standins):
    event_ms = 1_767_225_600_000  # 2026-01-01 00:00 UTC
    standins.feature.put("S5", "M7", event_ms=event_ms)
    as_of = timestamp_pb2.Timestamp()
    as_of.FromMilliseconds(event_ms + 2 * 86_400_000)
    answer = online.stub.Predict(pb.PredictRequest(keys=_keys(["S5"], ["M7"]), as_of_time=as_of), timeout=5)
    assert list(answer.feature_ages_seconds) == [2 * 86_400.0]

    def logged_times():
        return [
            time_ms
            for request in standins.drift.requests
            for store, time_ms in zip(request.keys.store_ids, request.event_times_unix_ms)
            if store == "S5"
        ]

    with standins.drift.received:
        assert standins.drift.received.wait_for(logged_times, timeout=10)
        assert logged_times() == [event_ms + 2 * 86_400_000]


def test_configured_fallback_answers_flagged_priors_when_features_are_unreachable(tmp_path, first_model):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    predictor = start_predictor(
        tmp_path,
        "predictor-fallback",
        ["--mode", "online", "--feature-address", dead, "--model-dir", str(first_model.write(tmp_path / "model-1")),
         "--fallback-when-features-unavailable", "true"],
    )  # fmt: skip
    try:
        answer = predictor.stub.Predict(pb.PredictRequest(keys=_keys(["S1", "S9"], ["M0", "M0"])), timeout=10)
    finally:
        predictor.close()
    priors = first_model.manifest.priors
    base = F.FEATURES_UNAVAILABLE | F.FALLBACK
    assert list(answer.flags) == [base, base | F.COLD_START_STORE]
    np.testing.assert_allclose(answer.forecasts, [priors["by_store"]["S1"], priors["global"]])
    assert list(answer.feature_ages_seconds) == [-1.0, -1.0] and answer.model_version == 1
