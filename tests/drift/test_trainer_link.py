"""The drift process and the trainer: reference profiles fetched from a
version's manifest when logs arrive for an unknown version, and a training
job started for each new alert with --retrain-on-alert.

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

from rxcast.model.profile import build_reference_profile
from rxcast.drift.v1 import drift_pb2, drift_pb2_grpc
from rxcast.runtime.channels import connect
from rxcast.suite.launcher import ServiceProcess
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc

DRIFT = drift_pb2.DESCRIPTOR.services_by_name["DriftService"]


class Trainer(trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(self, manifests: dict[int, str]):
        self.manifests = manifests
        self.jobs: list[trainer_pb2.StartTrainingRequest] = []
        self.lock = threading.Lock()

    def GetModelVersion(self, request, context):
        if request.version not in self.manifests:
            context.abort(grpc.StatusCode.NOT_FOUND, f"version {request.version} not found")
        manifest = self.manifests[request.version] if request.include_manifest else ""
        return trainer_pb2.GetModelVersionResponse(
            version=trainer_pb2.ModelVersion(version=request.version, manifest_json=manifest))

    def StartTraining(self, request, context):
        with self.lock:
            self.jobs.append(request)
            return trainer_pb2.StartTrainingResponse(job=trainer_pb2.TrainingJob(job_id=f"job-{len(self.jobs)}"))


@pytest.fixture(scope="module")
def trainer():
    rng = np.random.default_rng(51)
    profile = build_reference_profile({"x": rng.normal(size=3000)}, [], rng.normal(size=3000))
    servicer = Trainer({3: json.dumps({"format": "rxcast.model/1", "reference_profile": profile.to_dict()}),
                        4: json.dumps({"format": "rxcast.model/1"})})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trainer_pb2_grpc.add_TrainerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture(scope="module")
def stub(trainer, tmp_path_factory):
    root = tmp_path_factory.mktemp("drift-trainer")
    process = ServiceProcess("drift", root, [
        "--data-dir", str(root / "data"), "--window-rows", "500", "--trainer-address", trainer[1],
        "--retrain-on-alert", "true", "--retrain-days", "30",
    ]).start().wait_ready()
    channel = connect(process.address, [DRIFT], default_timeout=30.0)
    yield drift_pb2_grpc.DriftServiceStub(channel)
    channel.close()
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
    # The window's two alerts share one job: one retraining per drift event.
    assert [a.retrain_job_id for a in alerts] == ["job-1", "job-1"] and len(servicer.jobs) == 1
    job = servicer.jobs[0]
    assert job.promote and job.reason.startswith("drift alert ")
    assert (job.window.start_day, job.window.end_day) == ("2024-09-06", "2024-10-05")
