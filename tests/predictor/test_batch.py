"""Batch mode through gRPC on a real predictor process: runs with progress,
lookups with age, failed runs that leave the served run in place, bounded
history; and the store's atomicity, the schedule and scoring on a Dask cluster in-process."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
from google.protobuf import timestamp_pb2

from rxcast.model import ModelBundle
from rxcast.predictor import flags as F
from rxcast.predictor.batch.runs import FAILED, SUCCEEDED, RunRecord
from rxcast.predictor.batch.store import BatchStore
from rxcast.predictor.v1 import predictor_pb2 as pb
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from tests.predictor.conftest import start_predictor
from tests.predictor.models import CATEGORY_OF, MEDICATIONS, REGION_OF, STORES
from tests.predictor.standins import wait_for

KEEP = 2


@pytest.fixture(scope="module")
def batch(tmp_path_factory, standins, first_model):
    standins.trainer.publish(first_model)
    root = tmp_path_factory.mktemp("batch")
    running = start_predictor(
        root,
        "predictor-batch",
        [
            "--mode", "batch",
            "--feature-address", standins.addresses["feature"],
            "--trainer-address", standins.addresses["trainer"],
            "--drift-address", standins.addresses["drift"],
            "--data-dir", str(root / "store"),
            "--batch-keep-runs", str(KEEP),
            "--batch-interval-seconds", "0",
            "--batch-partition-rows", "7",
        ],
    )  # fmt: skip
    assert wait_for(lambda: running.process.health("rxcast.predictor.v1.PredictorService") == "SERVING", 30)
    yield running
    running.close()


def _run(batch, **fields) -> list[pb.BatchRun]:
    return [answer.run for answer in batch.stub.RunBatch(pb.RunBatchRequest(**fields), timeout=60)]


def _keys(stores, medications):
    return pb.EntityKeys(store_ids=stores, medication_ids=medications)


def test_lookup_before_any_run_is_failed_precondition(batch):
    with pytest.raises(grpc.RpcError) as caught:
        batch.stub.GetBatchPredictions(pb.GetBatchPredictionsRequest(keys=_keys(["S0"], ["M0"])), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "RunBatch" in caught.value.details()


def test_run_reports_progress_and_serves_every_entity_by_lookup(batch, standins, first_model):
    entities = len(standins.feature.entities)
    as_of = timestamp_pb2.Timestamp()
    as_of.FromSeconds(int(time.time()) - 3600)
    updates = _run(batch, as_of_time=as_of, reason="test")
    assert updates[0].state in (pb.BATCH_RUN_STATE_RUNNING, pb.BATCH_RUN_STATE_SUCCEEDED)
    final = updates[-1]
    assert final.state == pb.BATCH_RUN_STATE_SUCCEEDED, final.error
    assert final.rows_total == entities and final.rows_done == entities
    assert final.model_version == 1 and final.reason == "test" and final.as_of_time == as_of
    assert final.finished_time.seconds >= final.started_time.seconds
    done = [u.rows_done for u in updates]
    assert done == sorted(done)

    stores, medications = ["S1", "S2", "S9"], ["M2", "M5", "M0"]
    answer = batch.stub.GetBatchPredictions(pb.GetBatchPredictionsRequest(keys=_keys(stores, medications)), timeout=5)
    assert list(answer.found) == [True, True, False]
    assert answer.forecasts[2] == 0.0 and answer.run_id == final.run_id and answer.model_version == 1
    assert answer.horizon_days == 7 and answer.as_of_time == as_of
    assert 3600 <= answer.age_seconds < 3700
    bundle = ModelBundle.from_bytes(first_model.model_text, first_model.manifest)
    expected = bundle.predict(
        {
            "dispensed_sum_7d": [10.0, 10.0], "dispensed_sum_28d": [40.0, 40.0], "unit_price": [5.0, 5.0],
            "on_promotion": [0.0, 0.0], "medication_category": [CATEGORY_OF["M2"], CATEGORY_OF["M5"]],
            "store_region": [REGION_OF["S1"], REGION_OF["S2"]],
        }
    )  # fmt: skip
    np.testing.assert_allclose(list(answer.forecasts)[:2], expected)
    assert list(answer.flags)[:2] == [0, 0]


def test_batch_predictions_reach_the_drift_log(batch, standins):
    assert wait_for(lambda: any(r.source == "batch" for r in standins.drift.requests), 15)
    logged = [r for r in standins.drift.requests if r.source == "batch"]
    assert sum(len(r.predictions) for r in logged) >= len(STORES) * len(MEDICATIONS)


def test_failed_run_keeps_serving_the_previous_run(batch, standins):
    served = batch.stub.GetBatchPredictions(pb.GetBatchPredictionsRequest(keys=_keys(["S0"], ["M0"])), timeout=5)
    standins.feature.down = True
    try:
        final = _run(batch, reason="doomed")[-1]
    finally:
        standins.feature.down = False
    assert final.state == pb.BATCH_RUN_STATE_FAILED and "UNAVAILABLE" in final.error
    again = batch.stub.GetBatchPredictions(pb.GetBatchPredictionsRequest(keys=_keys(["S0"], ["M0"])), timeout=5)
    assert again.run_id == served.run_id and again.forecasts == served.forecasts
    with pytest.raises(grpc.RpcError) as caught:
        batch.stub.GetBatchPredictions(
            pb.GetBatchPredictionsRequest(keys=_keys(["S0"], ["M0"]), run_id=final.run_id), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "failed" in caught.value.details()


def test_history_is_bounded_and_older_runs_are_served_until_pruned(batch, standins):
    standins.feature.put("S0", "NEWMED", medication_category="statin")
    first = _run(batch, reason="one")[-1]
    second = _run(batch, reason="two")[-1]
    older = batch.stub.GetBatchPredictions(
        pb.GetBatchPredictionsRequest(keys=_keys(["S0"], ["NEWMED"]), run_id=first.run_id), timeout=5
    )
    assert older.run_id == first.run_id and older.found[0]
    assert older.flags[0] == F.COLD_START_MEDICATION | F.FALLBACK
    runs = batch.stub.ListBatchRuns(pb.ListBatchRunsRequest(), timeout=5).runs
    assert [r.run_id for r in runs] == [second.run_id, first.run_id]
    assert [r.run_id for r in batch.stub.ListBatchRuns(pb.ListBatchRunsRequest(limit=1), timeout=5).runs] == [
        second.run_id
    ]
    third = _run(batch, reason="three")[-1]
    runs = batch.stub.ListBatchRuns(pb.ListBatchRunsRequest(), timeout=5).runs
    assert [r.run_id for r in runs] == [third.run_id, second.run_id]
    with pytest.raises(grpc.RpcError) as caught:
        batch.stub.GetBatchPredictions(
            pb.GetBatchPredictionsRequest(keys=_keys(["S0"], ["M0"]), run_id=first.run_id), timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_online_rpcs_answer_failed_precondition_in_batch_mode(batch):
    with pytest.raises(grpc.RpcError) as caught:
        batch.stub.Predict(pb.PredictRequest(keys=_keys(["S0"], ["M0"])), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "online mode" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        batch.stub.ListBatchRuns(pb.ListBatchRunsRequest(limit=-1), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit" in caught.value.details()


# -- the store, in-process ---------------------------------------------------------------


def _record(run_id: str, state: str = SUCCEEDED, started: float = 0.0) -> RunRecord:
    return RunRecord(run_id, state, 1_000, 1, 7, "test", started or time.time(), 2, 2, time.time())


def test_store_commit_is_all_or_nothing_and_survives_restart(tmp_path):
    store = BatchStore(tmp_path, keep_runs=3)
    store.commit(_record("r1", started=1.0), ["S0", "S1"], ["M0", "M1"], [1.0, 2.0], [0, 8])
    with pytest.raises(Exception):  # noqa: B017 - whatever the failure, nothing may be left behind
        # A write that fails half-way (mismatched columns) must leave nothing behind.
        store.commit(_record("r2", started=2.0), ["S0", "S1"], ["M0"], [5.0, 6.0], [0, 0])
    assert store.latest().record.run_id == "r1"
    assert not (tmp_path / "runs" / "r2").exists() and not any((tmp_path / "staging").iterdir())
    (tmp_path / "staging" / "r3").mkdir()  # as a crash mid-write would leave it

    reopened = BatchStore(tmp_path, keep_runs=3)
    assert not any((tmp_path / "staging").iterdir())
    forecasts, found, flags = reopened.get().lookup(np.array(["S1", "S0", "S2"]), np.array(["M1", "M0", "M0"]))
    assert (
        forecasts.tolist() == [2.0, 1.0, 0.0] and found.tolist() == [True, True, False] and flags.tolist() == [8, 0, 0]
    )
    with pytest.raises(NotFound):
        reopened.get("r2")
    with pytest.raises(InvalidArgument, match="run_id"):
        reopened.get("../runs/r1")


def test_store_keeps_a_bounded_history_of_succeeded_and_failed_runs(tmp_path):
    store = BatchStore(tmp_path, keep_runs=2)
    store.commit(_record("a", started=1.0), ["S0"], ["M0"], [1.0], [0])
    store.record_failure(_record("b", FAILED, started=2.0).with_updates(error="boom"))
    store.commit(_record("c", started=3.0), ["S0"], ["M0"], [3.0], [0])
    assert [r.run_id for r in store.records()] == ["c", "b"]
    assert not (tmp_path / "runs" / "a").exists()
    with pytest.raises(FailedPrecondition, match="failed"):
        store.get("b")
