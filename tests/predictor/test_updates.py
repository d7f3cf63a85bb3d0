"""Model updates on a real predictor process: readiness before the first
model, a swap under load without a failed or mixed answer, and a corrupt
download that leaves the served version in place and is reported."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from inference import grpc_predict_v2_pb2 as oip

from rxcast.model import ModelBundle
from rxcast.predictor.v1 import predictor_pb2 as pb
from tests.predictor.conftest import start_predictor
from tests.predictor.load import PredictLoad
from tests.predictor.models import CATEGORY_OF, MEDICATIONS, REGION_OF, STORES, train
from tests.predictor.standins import wait_for
from tests.scrape import metrics_text

POLL_SECONDS = 0.5
PREDICTOR = "rxcast.predictor.v1.PredictorService"
KEYS = pb.EntityKeys(
    store_ids=[s for s in STORES for _ in MEDICATIONS], medication_ids=[m for _ in STORES for m in MEDICATIONS]
)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory, standins):
    running = start_predictor(
        tmp_path_factory.mktemp("updates"),
        "predictor-updates",
        [
            "--mode", "online",
            "--feature-address", standins.addresses["feature"],
            "--trainer-address", standins.addresses["trainer"],
            "--poll-interval-seconds", str(POLL_SECONDS),
            "--max-workers", "16",
        ],
    )  # fmt: skip
    yield running
    running.close()


def _expected(model) -> np.ndarray:
    bundle = ModelBundle.from_bytes(model.model_text, model.manifest)
    rows = len(KEYS.store_ids)
    return bundle.predict(
        {
            "dispensed_sum_7d": np.full(rows, 10.0),
            "dispensed_sum_28d": np.full(rows, 40.0),
            "unit_price": np.full(rows, 5.0),
            "on_promotion": np.zeros(rows),
            "medication_category": [CATEGORY_OF[m] for m in KEYS.medication_ids],
            "store_region": [REGION_OF[s] for s in KEYS.store_ids],
        }
    )


def _status(predictor) -> pb.GetModelStatusResponse:
    return predictor.stub.GetModelStatus(pb.GetModelStatusRequest(), timeout=5)


def test_not_ready_until_the_first_model_is_loaded(predictor, standins, first_model):
    assert predictor.process.health(PREDICTOR) == "NOT_SERVING"
    assert predictor.process.health("") == "SERVING"  # the process is alive
    assert not predictor.inference.ServerReady(oip.ServerReadyRequest(), timeout=5).ready
    with pytest.raises(grpc.RpcError) as caught:
        predictor.stub.Predict(pb.PredictRequest(keys=KEYS), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "no model" in caught.value.details()
    assert _status(predictor).model_version == 0

    standins.trainer.publish(first_model)
    assert wait_for(lambda: predictor.process.health(PREDICTOR) == "SERVING", 15)
    assert predictor.inference.ServerReady(oip.ServerReadyRequest(), timeout=5).ready
    assert _status(predictor).model_version == 1


def test_swap_under_load_fails_nothing_and_never_mixes_versions(predictor, standins, first_model):
    second = train(2, scale=3.0, seed=1)
    expected = {1: _expected(first_model), 2: _expected(second)}
    assert not np.allclose(expected[1], expected[2])
    with PredictLoad(predictor.process.address, KEYS) as load:
        assert wait_for(lambda: len(load.answers) >= 50, 30)
        published = time.monotonic()
        standins.trainer.publish(second)
        assert wait_for(lambda: 2 in load.versions(), 20), "version 2 never served"
        served_after = len(load.answers)
        assert wait_for(lambda: len(load.answers) >= served_after + 50, 30)

    assert load.failures == []
    assert load.versions() == {1, 2}
    for _, version, forecasts in load.answers:
        np.testing.assert_allclose(forecasts, expected[version], rtol=1e-9)
    first_v2 = load.first_answer_of(2)
    # In use within a poll interval (plus download and load, generously bounded).
    assert first_v2 - published < POLL_SECONDS + 10.0
    status = _status(predictor)
    assert status.model_version == 2 and status.sha256 == second.sha256 and status.last_error == ""


def test_corrupt_download_keeps_the_old_model_and_reports_it(predictor, standins):
    third = train(3, scale=5.0, seed=2)
    standins.trainer.corrupt.add(3)
    standins.trainer.publish(third)
    status = wait_for(lambda: (s := _status(predictor)).last_error and s, 15)
    assert status, "the failed update was not reported"
    assert "checksum mismatch" in status.last_error and "model 3" in status.last_error
    assert status.model_version == 2
    answer = predictor.stub.Predict(pb.PredictRequest(keys=KEYS), timeout=5)
    assert answer.model_version == 2
    assert predictor.process.health(PREDICTOR) == "SERVING"
    metrics = _metrics(predictor)
    assert 'rxcast_predictor_model_update_failures_total{stage="verify"}' in metrics

    # Once the trainer serves intact bytes, the version loads on a later poll.
    standins.trainer.corrupt.discard(3)
    assert wait_for(lambda: _status(predictor).model_version == 3, 20)
    assert _status(predictor).last_error == ""


def test_trainer_unreachable_keeps_serving_and_reports(predictor, standins):
    standins.trainer.down = True
    try:
        status = wait_for(lambda: (s := _status(predictor)).last_error and s, 10)
        assert status and "GetLatestVersion" in status.last_error and "UNAVAILABLE" in status.last_error
        assert predictor.stub.Predict(pb.PredictRequest(keys=KEYS), timeout=5).model_version == 3
    finally:
        standins.trainer.down = False
    assert wait_for(lambda: _status(predictor).last_error == "", 10)


def _metrics(predictor) -> str:
    return metrics_text(predictor.process.metrics_port)
