"""The predictor with the real trainer and feature service: a version trained
and promoted by the trainer is picked up by polling, verified, loaded and
served; forecasts come from it, cold-start entities fall back."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os

import grpc
import pytest

from rxcast.predictor import flags as F
from rxcast.predictor.v1 import predictor_pb2 as pb
from rxcast.suite.launcher import ServiceProcess
from tests.predictor.conftest import start_predictor
from tests.predictor.standins import wait_for

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("rxcast.trainer.servicer") is None, reason="the trainer service is not on this branch"
)
os.environ.setdefault("FEAST_USAGE", "False")
DAYS = 100
HAS_DRIFT = importlib.util.find_spec("rxcast.drift.servicer") is not None


@pytest.fixture(scope="module")
def world():
    from rxcast.sim import Scenario, simulate

    start = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=DAYS)
    return simulate(Scenario(n_stores=4, n_medications=8, n_days=DAYS, seed=5, start_day=start.isoformat()))


@pytest.fixture(scope="module")
def services(tmp_path_factory, world):
    from rxcast.feature.seed import normalize, seed
    from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
    from rxcast.runtime.channels import connect

    root = tmp_path_factory.mktemp("with-trainer")
    feature = ServiceProcess("feature", root / "run", ["--data-dir", str(root / "feature")], name="feature")
    feature.start().wait_ready(180)
    started = [feature]
    try:
        with connect(feature.address, [feature_pb2.DESCRIPTOR.services_by_name["FeatureService"]], 600) as channel:
            _, _, errors = seed(feature_pb2_grpc.FeatureServiceStub(channel), normalize(world.records), progress=False)
        assert not errors
        trainer = ServiceProcess(
            "trainer",
            root / "run",
            [
                "--feature-address", feature.address,
                "--registry-dir", str(root / "registry"), "--job-dir", str(root / "jobs"),
                "--min-train-rows", "200", "--min-holdout-rows", "40", "--num-threads", "1",
                "--default-num-boost-round", "30", "--default-num-leaves", "15", "--default-holdout-days", "10",
            ],
            name="trainer",
        )  # fmt: skip
        trainer.start().wait_ready(60)
        started.append(trainer)
        drift = None
        if HAS_DRIFT:
            drift = ServiceProcess(
                "drift", root / "run", ["--data-dir", str(root / "drift"), "--trainer-address", trainer.address], name="drift"
            )
            drift.start().wait_ready(60)
            started.append(drift)
        predictor = start_predictor(
            root / "run",
            "predictor",
            ["--mode", "online", "--feature-address", feature.address, "--trainer-address", trainer.address,
             "--poll-interval-seconds", "0.5", "--feature-timeout-seconds", "5",
             *(["--drift-address", drift.address] if drift else [])],
        )  # fmt: skip
        yield feature, trainer, predictor, drift
        predictor.close()
    finally:
        for process in reversed(started):
            process.stop()


def test_a_promoted_version_is_picked_up_and_serves_forecasts(services, world):
    from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc

    _, trainer, predictor, _ = services
    with pytest.raises(grpc.RpcError) as caught:
        predictor.stub.Predict(pb.PredictRequest(keys=pb.EntityKeys(store_ids=["x"], medication_ids=["y"])), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    days = world.records["business_day"]
    window = trainer_pb2.DayWindow(
        start_day=days.min().strftime("%Y-%m-%d"), end_day=days.max().strftime("%Y-%m-%d")
    )
    with grpc.insecure_channel(trainer.address) as channel:
        stub = trainer_pb2_grpc.TrainerServiceStub(channel)
        job = stub.StartTraining(trainer_pb2.StartTrainingRequest(window=window, reason="test"), timeout=30).job
        final = list(stub.WatchTrainingJob(trainer_pb2.WatchTrainingJobRequest(job_id=job.job_id), timeout=300))[-1].job
        assert final.state == trainer_pb2.JOB_STATE_SUCCEEDED, final.error
        # A tiny world need not beat the gate; the alias move is what the predictor follows.
        stub.SetAlias(trainer_pb2.SetAliasRequest(version=final.version, force=True, reason="test"), timeout=30)

    status = wait_for(
        lambda: (s := predictor.stub.GetModelStatus(pb.GetModelStatusRequest(), timeout=5)).model_version == final.version
        and s,
        30,
    )
    assert status, "the promoted version was not picked up"
    assert status.last_error == "" and status.sha256

    stores = sorted(set(world.records["store_id"]))
    medications = sorted(set(world.records["medication_id"]))
    keys = pb.EntityKeys(store_ids=[stores[0], stores[1], stores[0]], medication_ids=[medications[0], medications[1], "NEWMED"])
    answer = predictor.stub.Predict(pb.PredictRequest(keys=keys), timeout=10)
    assert answer.model_version == final.version and answer.horizon_days == 7
    assert not answer.flags[0] & F.FALLBACK and not answer.flags[1] & F.FALLBACK
    assert all(f >= 0 for f in answer.forecasts)
    assert answer.flags[2] & F.COLD_START_MEDICATION and answer.flags[2] & F.FALLBACK


@pytest.mark.skipif(not HAS_DRIFT, reason="the drift service is not on this branch")
def test_forecasts_are_logged_to_the_drift_service(services, world):
    import urllib.request

    _, _, predictor, drift = services
    version = predictor.stub.GetModelStatus(pb.GetModelStatusRequest(), timeout=5).model_version
    assert version > 0, "runs after the version is picked up"

    def accepted() -> float:
        url = f"http://127.0.0.1:{drift.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith('rxcast_drift_rows_total{outcome="accepted"}'):
                    return float(line.split()[-1])
        return 0.0

    before = accepted()
    stores = sorted(set(world.records["store_id"]))
    medications = sorted(set(world.records["medication_id"]))
    keys = pb.EntityKeys(store_ids=[s for s in stores for _ in medications], medication_ids=medications * len(stores))
    predictor.stub.Predict(pb.PredictRequest(keys=keys), timeout=10)
    # The drift service takes the rows with the version's reference profile, fetched from the trainer.
    assert wait_for(lambda: accepted() - before >= len(keys.store_ids), 20)
