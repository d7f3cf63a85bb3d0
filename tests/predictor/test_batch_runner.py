"""The batch runner in-process: scheduled runs, and the same scoring on a Dask cluster."""

from __future__ import annotations

import numpy as np
import pytest

from rxcast.model import ModelBundle
from rxcast.predictor.batch.runner import BatchRunner, BatchSettings, FeatureServicePopulation
from rxcast.predictor.batch.scoring import DaskScorer
from rxcast.predictor.batch.store import BatchStore
from rxcast.predictor.features import FeatureSource
from rxcast.predictor.frame import EntityBatch, FeatureFrame, split_frame
from rxcast.predictor.holder import ModelHolder
from rxcast.predictor.serving import ServingModel
from tests.predictor.models import training_rows
from tests.predictor.standins import wait_for


@pytest.fixture(scope="module")
def serving(first_model):
    return ServingModel.build(ModelBundle.from_bytes(first_model.model_text, first_model.manifest))


def _population(rows: int) -> FeatureFrame:
    columns = training_rows(rows, seed=5)
    columns["medication_category"] = np.asarray(columns["medication_category"], dtype=str)
    columns["store_region"] = np.asarray(columns["store_region"], dtype=str)
    keys = EntityBatch(np.array([f"S{i % 4}" for i in range(rows)]), np.array([f"M{i % 6}" for i in range(rows)]))
    return FeatureFrame(keys, columns, np.full(rows, 1_000, dtype=np.int64))


def test_scheduled_runs_start_once_a_model_is_loaded(tmp_path, standins, serving):
    holder = ModelHolder()
    client = FeatureSource(standins.addresses["feature"])
    runner = BatchRunner(
        holder,
        BatchStore(tmp_path, keep_runs=3),
        FeatureServicePopulation(client),
        DaskScorer(workers=2),
        settings=BatchSettings(partition_rows=10, interval_seconds=0.5),
    )
    runner.start_schedule()
    try:
        assert runner.records() == []
        holder.swap(serving)
        assert wait_for(lambda: len([r for r in runner.records() if r.state == "SUCCEEDED"]) >= 2, 20)
        assert {r.reason for r in runner.records()} == {"schedule"}
    finally:
        runner.stop()
        client.close()


def test_scoring_on_a_dask_cluster_matches_local_threads(serving):
    distributed = pytest.importorskip("distributed")
    frame = _population(5_000)
    partitions = split_frame(frame, 1_000)
    local_rows: list[int] = []
    local = DaskScorer(workers=2).score(serving, partitions, 2_000, on_partition=local_rows.append)
    assert local_rows == [1_000] * 5
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        scorer = DaskScorer(cluster.scheduler_address)
        cluster_rows: list[int] = []
        try:
            remote = scorer.score(serving, partitions, 2_000, on_partition=cluster_rows.append)
        finally:
            scorer.close()
    assert sorted(cluster_rows) == [1_000] * 5
    np.testing.assert_array_equal(
        np.concatenate([p.forecasts for p in remote]), np.concatenate([p.forecasts for p in local])
    )
    np.testing.assert_array_equal(np.concatenate([p.flags for p in remote]), np.concatenate([p.flags for p in local]))
    direct = serving.bundle.predict(frame.columns)
    np.testing.assert_allclose(np.concatenate([p.forecasts for p in local]), direct)


def test_unreachable_dask_scheduler_is_unavailable(serving):
    from rxcast.runtime.errors import Unavailable

    scorer = DaskScorer("tcp://127.0.0.1:1", connect_timeout=1.0)
    with pytest.raises(Unavailable, match="dask scheduler"):
        scorer.score(serving, [_population(10)], 0)
