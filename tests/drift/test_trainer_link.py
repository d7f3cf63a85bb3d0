"""The drift process and the trainer: reference profiles fetched from a
version's manifest when logs arrive for an unknown version, and a training
retraining trigger submitted for each new alert with --retrain-on-alert.

The trainer here is a minimal TrainerService on loopback answering the two
RPCs the drift service calls, as the trainer's contract defines them.
"""

from __future__ import annotations

import json
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest

from rxcast.clients import DriftClient
from rxcast.drift.clients import ActualsCollector, Trainer
from rxcast.drift.engine import DriftEngine, EngineSettings
from rxcast.drift.v1 import drift_pb2
from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.model.profile import build_reference_profile
from rxcast.runtime import tls
from rxcast.suite.launcher import ServiceProcess
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc


class StandinTrainer(trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(self, manifests: dict[int, str]):
        self.manifests = manifests
        self.jobs: list[trainer_pb2.SubmitTriggerRequest] = []
        self.lock = threading.Lock()

    def GetModelVersion(self, request, context):
        if request.version not in self.manifests:
            context.abort(grpc.StatusCode.NOT_FOUND, f"version {request.version} not found")
        manifest = self.manifests[request.version] if request.include_manifest else ""
        return trainer_pb2.GetModelVersionResponse(
            version=trainer_pb2.ModelVersion(version=request.version, manifest_json=manifest)
        )

    def SubmitTrigger(self, request, context):
        with self.lock:
            known = any(t.trigger_id == request.trigger_id for t in self.jobs)
            if not known:
                self.jobs.append(request)
            return trainer_pb2.SubmitTriggerResponse(accepted=not known, already_known=known)


@pytest.fixture(scope="module")
def trainer():
    rng = np.random.default_rng(51)
    profile = build_reference_profile({"x": rng.normal(size=3000)}, [], rng.normal(size=3000))
    servicer = StandinTrainer(
        {
            3: json.dumps({"format": "rxcast.model/1", "reference_profile": profile.to_dict()}),
            4: json.dumps({"format": "rxcast.model/1"}),
        }
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trainer_pb2_grpc.add_TrainerServiceServicer_to_server(servicer, server)
    port = tls.add_port(server, "127.0.0.1:0", tls.client_trust())
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture(scope="module")
def stub(trainer, tmp_path_factory):
    root = tmp_path_factory.mktemp("drift-trainer")
    process = (
        ServiceProcess(
            "drift",
            root,
            [
                "--data-dir",
                str(root / "data"),
                "--window-rows",
                "500",
                "--trainer-address",
                trainer[1],
                "--retrain-on-alert",
                "true",
                "--retrain-days",
                "30",
            ],
        )
        .start()
        .wait_ready()
    )
    client = DriftClient(process.address, timeout=30.0)
    yield client.stub
    client.close()
    process.stop()


def _logs(version: int, values: np.ndarray, day: int) -> drift_pb2.LogPredictionsRequest:
    n = values.size
    return drift_pb2.LogPredictionsRequest(
        model_version=version,
        keys=drift_pb2.EntityKeys(store_ids=[f"s{i}" for i in range(n)], medication_ids=["m"] * n),
        event_times_unix_ms=[day * 86_400_000 + i for i in range(n)],
        features=[drift_pb2.FeatureValues(name="x", numeric=drift_pb2.DoubleList(values=values.tolist()))],
        predictions=values.tolist(),
    )


def test_an_unknown_version_takes_its_reference_from_the_trainer(stub):
    with pytest.raises(grpc.RpcError) as error:
        stub.GetReference(drift_pb2.GetReferenceRequest(model_version=5))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    rng = np.random.default_rng(52)
    response = stub.LogPredictions(iter([_logs(3, rng.normal(size=100), 20_000)]))
    assert response.accepted_rows == 100
    assert stub.GetReference(drift_pb2.GetReferenceRequest(model_version=3)).reference.rows == 3000
    # A manifest without a profile leaves the version unknown: its logs are rejected.
    assert stub.LogPredictions(iter([_logs(4, rng.normal(size=10), 20_000)])).rejected_rows == 10


def test_a_new_alert_starts_a_training_job_with_its_reason(stub, trainer):
    servicer, _ = trainer
    rng = np.random.default_rng(53)
    stub.LogPredictions(iter([_logs(3, rng.normal(size=500) + 3.0, 20_001)]))
    alerts = stub.ListAlerts(drift_pb2.ListAlertsRequest(model_version=3)).alerts
    assert {a.kind for a in alerts} == {drift_pb2.ALERT_KIND_DATA_DRIFT, drift_pb2.ALERT_KIND_PREDICTION_DRIFT}
    # The window's two alerts share one trigger: one retraining per drift event.
    assert [a.retrain_job_id for a in alerts] == ["drift-v3-2024-10-05"] * 2 and len(servicer.jobs) == 1
    trigger = servicer.jobs[0]
    assert trigger.kind == "data_drift" and trigger.reason.startswith("drift alert ")
    assert trigger.changed_at.ToMilliseconds() // 86_400_000 == 20_001 and not trigger.aliases


class Actuals(feature_pb2_grpc.FeatureServiceServicer):
    """Answers every row with demand 1.0 and records each call's horizon."""

    def __init__(self):
        self.horizons: list[tuple[int, int]] = []

    def GetActuals(self, request, context):
        rows = len(request.rows.event_times_unix_ms)
        self.horizons.append((request.horizon_days, rows))
        present = feature_pb2.FEATURE_STATUS_PRESENT
        return feature_pb2.GetActualsResponse(
            values=[1.0] * rows, statuses=[present] * rows, horizon_days=request.horizon_days or 7
        )


def test_actuals_are_asked_with_each_served_versions_own_horizon(trainer):
    servicer, address = trainer
    servicer.manifests[6] = json.dumps({"format": "rxcast.model/1", "horizon_days": 3})
    link = Trainer(address, retrain_days=30)
    assert (link.horizon_days(6), link.horizon_days(4), link.horizon_days(99)) == (3, 0, 0)

    features = Actuals()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    feature_pb2_grpc.add_FeatureServiceServicer_to_server(features, server)
    port = tls.add_port(server, "127.0.0.1:0", tls.client_trust())
    server.start()
    rng = np.random.default_rng(54)
    engine = DriftEngine(EngineSettings(window_rows=10_000))
    profile = build_reference_profile({"x": rng.normal(size=500)}, [], rng.normal(size=500)).to_dict()
    for version, rows in ((6, 4), (3, 5)):
        engine.register_reference(version, profile)
        engine.log_predictions(
            version, np.array([f"s{i}" for i in range(rows)]), np.array([f"m{version}"] * rows),
            np.full(rows, 20_000 * 86_400_000, dtype=np.int64), {"x": np.zeros(rows)}, np.zeros(rows),
        )  # fmt: skip
    collector = ActualsCollector(engine, f"127.0.0.1:{port}", interval=60, horizon_days=link.horizon_days)
    try:
        assert collector.collect_once() == 9
    finally:
        collector.stop()
        server.stop(0)
        link.close()
    # Version 6 forecasts 3 days ahead; version 3's manifest names no horizon: the service's own.
    assert sorted(features.horizons) == [(0, 5), (3, 4)]
