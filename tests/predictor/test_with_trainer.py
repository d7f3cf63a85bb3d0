"""The predictor with the real trainer, feature and drift services: versions
trained by the trainer are served once the alias points at them, swapped
under load without a failed or mixed answer, used by batch runs started after
the alias moved; entities the simulator's drift events add after training
fall back to priors; a feature service gone away answers UNAVAILABLE."""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import grpc
import numpy as np
import pytest

from rxcast.clients import TrainerClient
from rxcast.predictor import flags as F
from rxcast.predictor.v1 import predictor_pb2 as pb
from rxcast.suite.launcher import ServiceProcess
from tests.predictor.conftest import start_predictor
from tests.predictor.load import PredictLoad
from tests.predictor.standins import wait_for
from tests.scrape import metrics_text

os.environ.setdefault("FEAST_USAGE", "False")
DAYS = 100
EVENT_DAY = 85  # new medications and a new region's store appear after the training window
POLL_SECONDS = 0.5
FEATURE_TIMEOUT_SECONDS = 2.0


@pytest.fixture(scope="module")
def world():
    from rxcast.sim import DriftEvent, Scenario, simulate

    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS)
    scenario = Scenario(n_stores=4, n_medications=8, n_days=DAYS, seed=5, start_day=start.isoformat()).with_events(
        DriftEvent("new_medication", EVENT_DAY, {"n": 2}),
        DriftEvent("new_region", EVENT_DAY, {"n_stores": 1}),
    )
    return simulate(scenario)


def _added(world, kind: str, ids: str) -> list[str]:
    return [i for event in world.events if event.kind == kind for i in event.params[ids]]


def _known(world, column: str, added: list[str]) -> list[str]:
    return sorted(set(world.records[column].astype(str)) - set(added))


@pytest.fixture(scope="module")
def services(tmp_path_factory, world):
    from rxcast.clients import FeatureClient
    from rxcast.clients.records import normalize

    root = tmp_path_factory.mktemp("with-trainer")
    feature = ServiceProcess("feature", root / "run", ["--data-dir", str(root / "feature")], name="feature")
    feature.start().wait_ready(180)
    started = [feature]
    predictors = []
    try:
        with FeatureClient(feature.address, timeout=600) as client:
            assert not client.ingest_frame(normalize(world.records)).errors
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
        drift = ServiceProcess(
            "drift",
            root / "run",
            ["--data-dir", str(root / "drift"), "--trainer-address", trainer.address],
            name="drift",
        )
        drift.start().wait_ready(60)
        started.append(drift)
        online = start_predictor(
            root / "run",
            "predictor",
            ["--mode", "online", "--feature-address", feature.address, "--trainer-address", trainer.address,
             "--poll-interval-seconds", str(POLL_SECONDS), "--feature-timeout-seconds", str(FEATURE_TIMEOUT_SECONDS),
             "--max-workers", "16", "--drift-address", drift.address],
        )  # fmt: skip
        predictors.append(online)
        # Polls only hourly: a run must still pick up where the alias points when it starts.
        batch = start_predictor(
            root / "run",
            "predictor-batch",
            ["--mode", "batch", "--feature-address", feature.address, "--trainer-address", trainer.address,
             "--poll-interval-seconds", "3600", "--batch-interval-seconds", "0", "--data-dir", str(root / "batch")],
        )  # fmt: skip
        predictors.append(batch)
        yield {"feature": feature, "trainer": trainer, "drift": drift, "online": online, "batch": batch}
    finally:
        for predictor in predictors:
            predictor.close()
        for process in reversed(started):
            process.stop()


@pytest.fixture(scope="module")
def trainer_stub(services):
    with TrainerClient(services["trainer"].address) as client:
        yield client.stub


@pytest.fixture(scope="module")
def versions(trainer_stub, world):
    """Two versions trained on the days before the drift events, not promoted."""
    from rxcast.trainer.v1 import trainer_pb2

    start = world.records["business_day"].min()
    window = trainer_pb2.DayWindow(
        start_day=start.strftime("%Y-%m-%d"), end_day=(start + dt.timedelta(days=EVENT_DAY - 1)).strftime("%Y-%m-%d")
    )
    trained = []
    for rounds in (30, 60):
        request = trainer_pb2.StartTrainingRequest(
            window=window, params=trainer_pb2.TrainingParams(num_boost_round=rounds), reason="test"
        )
        job = trainer_stub.StartTraining(request, timeout=30).job
        final = list(trainer_stub.WatchTrainingJob(trainer_pb2.WatchTrainingJobRequest(job_id=job.job_id), timeout=300))
        assert final[-1].job.state == trainer_pb2.JOB_STATE_SUCCEEDED, final[-1].job.error
        trained.append(final[-1].job.version)
    return trained


def _move_alias(trainer_stub, version: int) -> None:
    from rxcast.trainer.v1 import trainer_pb2

    # A tiny world need not beat the gate; the alias move is what the predictors follow.
    trainer_stub.SetAlias(trainer_pb2.SetAliasRequest(version=version, force=True, reason="test"), timeout=30)


def _status(predictor) -> pb.GetModelStatusResponse:
    return predictor.stub.GetModelStatus(pb.GetModelStatusRequest(), timeout=5)


def _grid(stores, medications) -> pb.EntityKeys:
    return pb.EntityKeys(
        store_ids=[s for s in stores for _ in medications], medication_ids=list(medications) * len(stores)
    )


def test_a_promoted_version_is_picked_up_and_serves_forecasts(services, trainer_stub, versions, world):
    online = services["online"]
    with pytest.raises(grpc.RpcError) as caught:
        online.stub.Predict(pb.PredictRequest(keys=pb.EntityKeys(store_ids=["x"], medication_ids=["y"])), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    first = versions[0]
    _move_alias(trainer_stub, first)
    status = wait_for(lambda: (s := _status(online)).model_version == first and s, 30)
    assert status, "the promoted version was not picked up"
    assert status.last_error == "" and status.sha256

    stores = _known(world, "store_id", _added(world, "new_region", "store_ids"))
    medications = _known(world, "medication_id", _added(world, "new_medication", "medication_ids"))
    keys = pb.EntityKeys(store_ids=[stores[0], stores[1]], medication_ids=[medications[0], medications[1]])
    answer = online.stub.Predict(pb.PredictRequest(keys=keys), timeout=10)
    assert answer.model_version == first and answer.horizon_days == 7
    assert list(answer.flags) == [0, 0]
    assert all(f >= 0 for f in answer.forecasts) and all(0 <= age < 3 * 86400 for age in answer.feature_ages_seconds)


def test_entities_added_by_drift_events_after_training_get_flagged_priors(services, trainer_stub, versions, world):
    from rxcast.trainer.v1 import trainer_pb2

    new_medications = _added(world, "new_medication", "medication_ids")
    new_stores = _added(world, "new_region", "store_ids")
    assert new_medications and new_stores
    stores = _known(world, "store_id", new_stores)
    medications = _known(world, "medication_id", new_medications)
    keys = pb.EntityKeys(
        store_ids=[stores[0], stores[1], new_stores[0], new_stores[0]],
        medication_ids=[new_medications[0], new_medications[1], medications[0], new_medications[0]],
    )
    answer = services["online"].stub.Predict(pb.PredictRequest(keys=keys), timeout=10)
    cold = F.COLD_START_MEDICATION | F.COLD_START_STORE | F.FALLBACK
    assert [f & cold for f in answer.flags] == [
        F.COLD_START_MEDICATION | F.FALLBACK,
        F.COLD_START_MEDICATION | F.FALLBACK,
        F.COLD_START_STORE | F.FALLBACK,
        F.COLD_START_MEDICATION | F.COLD_START_STORE | F.FALLBACK,
    ]
    # The new store's region is a level the model never saw: flagged as a missing input too.
    assert answer.flags[2] & F.MISSING_FEATURES

    # The documented fallback: the prior of the medication's category, as the trainer recorded it.
    header = next(
        iter(trainer_stub.DownloadModel(trainer_pb2.DownloadModelRequest(version=answer.model_version), timeout=30))
    )
    priors = json.loads(header.header.manifest_json)["priors"]
    category = world.medications.set_index("medication_id")["medication_category"].astype(str)
    expected = [priors["by_category"][category[m]] for m in keys.medication_ids]
    np.testing.assert_allclose(answer.forecasts, expected, rtol=1e-9)


def test_forecasts_are_logged_to_the_drift_service(services, versions, world):
    online, drift = services["online"], services["drift"]
    assert _status(online).model_version == versions[0], "runs after the version is picked up"

    def accepted() -> float:
        for line in metrics_text(drift.metrics_port).splitlines():
            if line.startswith('rxcast_drift_rows_total{outcome="accepted"}'):
                return float(line.split()[-1])
        return 0.0

    before = accepted()
    keys = _grid(
        sorted(set(world.records["store_id"].astype(str))), sorted(set(world.records["medication_id"].astype(str)))
    )
    online.stub.Predict(pb.PredictRequest(keys=keys), timeout=10)
    # The drift service takes the rows with the version's reference profile, fetched from the trainer.
    assert wait_for(lambda: accepted() - before >= len(keys.store_ids), 20)


def test_an_alias_move_under_load_fails_nothing_and_never_mixes_versions(services, trainer_stub, versions, world):
    online = services["online"]
    first, second = versions
    assert _status(online).model_version == first
    keys = _grid(
        _known(world, "store_id", _added(world, "new_region", "store_ids")),
        _known(world, "medication_id", _added(world, "new_medication", "medication_ids")),
    )
    # Feature values stay put during the test, so each version has one answer for these keys.
    expected = {first: np.asarray(online.stub.Predict(pb.PredictRequest(keys=keys), timeout=10).forecasts)}

    with PredictLoad(online.process.address, keys) as load:
        assert wait_for(lambda: len(load.answers) >= 50, 30)
        moved = time.monotonic()
        _move_alias(trainer_stub, second)
        assert wait_for(lambda: second in load.versions(), 20), "the new version was never served"
        served_after = len(load.answers)
        assert wait_for(lambda: len(load.answers) >= served_after + 50, 30)

    answer = online.stub.Predict(pb.PredictRequest(keys=keys), timeout=10)
    assert answer.model_version == second
    expected[second] = np.asarray(answer.forecasts)
    assert not np.allclose(expected[first], expected[second])
    assert load.failures == []
    assert load.versions() == {first, second}
    for _, version, forecasts in load.answers:
        np.testing.assert_allclose(forecasts, expected[version], rtol=1e-9)
    # In use within the poll interval, plus the download, check and load of a small model
    # (bounded generously: the machine running the tests is shared).
    assert load.first_answer_of(second) - moved < POLL_SECONDS + 5.0
    status = _status(online)
    assert status.model_version == second and status.last_error == ""


def _run_batch(predictor) -> pb.BatchRun:
    updates = list(predictor.stub.RunBatch(pb.RunBatchRequest(reason="test"), timeout=120))
    return updates[-1].run


def test_a_batch_run_started_after_the_alias_moved_uses_the_new_version(services, trainer_stub, versions, world):
    batch = services["batch"]
    first, second = versions
    # The batch predictor's only poll so far was at start-up, before any alias; each run asks first.
    run = _run_batch(batch)
    assert run.state == pb.BATCH_RUN_STATE_SUCCEEDED, run.error
    assert run.model_version == second
    _move_alias(trainer_stub, first)  # a rollback, as an operator would do it
    run = _run_batch(batch)
    assert run.state == pb.BATCH_RUN_STATE_SUCCEEDED, run.error
    assert run.model_version == first
    assert _status(batch).model_version == first

    new_medication = _added(world, "new_medication", "medication_ids")[0]
    store = _known(world, "store_id", _added(world, "new_region", "store_ids"))[0]
    keys = pb.EntityKeys(store_ids=[store], medication_ids=[new_medication])
    served = batch.stub.GetBatchPredictions(pb.GetBatchPredictionsRequest(keys=keys), timeout=10)
    assert served.run_id == run.run_id and served.model_version == first
    assert list(served.flags) == [F.COLD_START_MEDICATION | F.FALLBACK]


def test_feature_service_gone_is_unavailable_without_a_hang_and_batch_runs_fail_cleanly(services, world):
    online, batch = services["online"], services["batch"]
    last_run = _run_batch_runs(batch)[0]
    services["feature"].stop()
    keys = pb.EntityKeys(
        store_ids=[str(world.records["store_id"].iloc[0])], medication_ids=[str(world.records["medication_id"].iloc[0])]
    )
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        online.stub.Predict(pb.PredictRequest(keys=keys), timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and "feature" in caught.value.details().lower()
    assert time.monotonic() - started < FEATURE_TIMEOUT_SECONDS + 5.0

    run = _run_batch(batch)
    assert run.state == pb.BATCH_RUN_STATE_FAILED and run.error
    # The previous run stays served.
    assert _run_batch_runs(batch)[1].run_id == last_run.run_id
    served = batch.stub.GetBatchPredictions(pb.GetBatchPredictionsRequest(keys=keys), timeout=10)
    assert served.run_id == last_run.run_id


def _run_batch_runs(predictor) -> list[pb.BatchRun]:
    return list(predictor.stub.ListBatchRuns(pb.ListBatchRunsRequest(), timeout=10).runs)
