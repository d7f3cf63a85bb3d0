"""Training on a Dask cluster of worker processes (a LocalCluster on loopback):
one model trained across the workers, encoded and published like a local fit,
about as accurate as one."""

from __future__ import annotations

import numpy as np
import pytest

from rxcast.model import FeatureEncoder, ModelBundle
from rxcast.trainer.dataset import LoadRequest, split_by_time
from rxcast.trainer.distributed import DaskFitter
from rxcast.trainer.evaluation import error_statistics
from rxcast.trainer.fit import TrainingCancelled, fit_model
from rxcast.trainer.params import TrainingParams
from tests.trainer.synthetic import FEATURES, WorldSource, make_world

PARAMS = TrainingParams(num_boost_round=40, num_leaves=15, min_data_in_leaf=20)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(scope="module")
def split():
    world = make_world(stores=6, medications=10, days=100)
    data = WorldSource(world).load(LoadRequest(world.first_day, world.last_day), lambda done, total: None)
    return split_by_time(data, 10, 100, 10)


def mae(fitted, holdout) -> float:
    matrix = FeatureEncoder(fitted.manifest).encode(holdout.columns).matrix
    return error_statistics(holdout.labels, fitted.predict(matrix, 1))["mae"]


def test_a_cluster_of_worker_processes_trains_one_model(cluster, split):
    fitter = DaskFitter(cluster.scheduler_address)
    rounds = []
    try:
        fitted = fitter.fit(split.train, PARAMS, 1, on_round=lambda done, total: rounds.append((done, total)))
    finally:
        fitter.close()
    assert rounds == [(40, 40)]
    assert fitted.manifest.feature_names == FEATURES
    assert fitted.booster.feature_name() == list(FEATURES)
    dumped = fitted.booster.dump_model()
    categorical = {FEATURES.index(n) for n in ("medication_category", "store_region")}
    assert categorical <= {
        int(node["split_feature"])
        for tree in dumped["tree_info"]
        for node in _nodes(tree["tree_structure"])
        if node.get("decision_type") == "=="
    }
    # It publishes and serves like a local fit, and is about as accurate.
    bundle = ModelBundle.from_bytes(
        fitted.model_text, fitted.manifest.with_updates(version=1, sha256=_sha(fitted.model_text))
    )
    assert np.isfinite(bundle.predict(split.holdout.columns)).all()
    local = fit_model(split.train, PARAMS, 1)
    assert mae(fitted, split.holdout) < 1.15 * mae(local, split.holdout)
    assert fitted.training_data_sha256 == local.training_data_sha256


def test_a_cancelled_job_does_not_reach_the_cluster(cluster, split):
    fitter = DaskFitter(cluster.scheduler_address)
    with pytest.raises(TrainingCancelled):
        fitter.fit(split.train, PARAMS, 1, should_stop=lambda: True)
    assert fitter._client is None


def _nodes(node):
    yield node
    for child in ("left_child", "right_child"):
        if child in node:
            yield from _nodes(node[child])


def _sha(data: bytes) -> str:
    from rxcast.model.bundle import sha256_bytes

    return sha256_bytes(data)


def test_the_trainer_service_trains_on_the_cluster_when_given_its_scheduler(cluster, feature, tmp_path):
    from rxcast.clients.trainer import TrainerClient
    from rxcast.trainer.v1 import trainer_pb2 as pb
    from tests.trainer.conftest import start_trainer
    from tests.trainer.test_service import QUICK, WINDOW

    process = start_trainer(tmp_path, feature, "--dask-scheduler", cluster.scheduler_address)
    client = TrainerClient(process.address, timeout=60)
    try:
        job = client.stub.StartTraining(pb.StartTrainingRequest(window=WINDOW, params=QUICK, reason="on dask")).job
        final = list(client.watch(job.job_id, timeout=300))[-1]
        assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
        assert final.rounds_done == final.rounds_total == 30 and final.version >= 1
        assert final.evaluation.model.wape < final.evaluation.baseline.wape
        assert "dask_fit_started" in process.log_tail(200)
    finally:
        client.close()
        process.stop()
