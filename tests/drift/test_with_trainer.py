"""The drift service with the real trainer and feature service: the reference
of a version the trainer published comes from its manifest, and a drifted
window submits one retraining trigger to the trainer, whose reason is the
alert's and which waits for labelled rows from after the change."""

from __future__ import annotations

import datetime as dt
import json
import os

import numpy as np
import pytest

from rxcast.clients import DriftClient, TrainerClient
from rxcast.drift.v1 import drift_pb2
from rxcast.suite.launcher import ServiceProcess
from rxcast.trainer.v1 import trainer_pb2

os.environ.setdefault("FEAST_USAGE", "False")
DAYS = 80
RETRAIN_DAYS = 30


@pytest.fixture(scope="module")
def world():
    from rxcast.sim import Scenario, simulate

    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS)
    return simulate(Scenario(n_stores=4, n_medications=8, n_days=DAYS, seed=9, start_day=start.isoformat()))


@pytest.fixture(scope="module")
def services(tmp_path_factory, world):
    from rxcast.clients import FeatureClient
    from rxcast.clients.records import normalize

    root = tmp_path_factory.mktemp("drift-with-trainer")
    started = []
    try:
        feature = ServiceProcess("feature", root / "run", ["--data-dir", str(root / "feature")], name="feature")
        started.append(feature.start().wait_ready(180))
        with FeatureClient(feature.address, timeout=600) as client:
            assert not client.ingest_frame(normalize(world.records)).errors
        trainer = ServiceProcess("trainer", root / "run", [
            "--feature-address", feature.address, "--registry-dir", str(root / "registry"),
            "--job-dir", str(root / "jobs"), "--min-train-rows", "200", "--min-holdout-rows", "40",
            "--num-threads", "1", "--default-num-boost-round", "20", "--default-num-leaves", "15",
            "--default-holdout-days", "10", "--policies",
            json.dumps([{"alias": "champion", "window_days": RETRAIN_DAYS, "follow_triggers": True}]),
        ], name="trainer")  # fmt: skip
        started.append(trainer.start().wait_ready(60))
        drift = ServiceProcess("drift", root / "run", [
            "--data-dir", str(root / "drift"), "--trainer-address", trainer.address,
            "--retrain-on-alert", "true", "--retrain-days", str(RETRAIN_DAYS), "--window-rows", "300",
            "--access-log", "false",
        ], name="drift")  # fmt: skip
        started.append(drift.start().wait_ready(60))
        with (
            TrainerClient(trainer.address, timeout=300) as trainer_client,
            DriftClient(drift.address, timeout=60) as drift_client,
        ):
            yield trainer_client.stub, drift_client.stub
    finally:
        for process in reversed(started):
            process.stop()


def _train(trainer, world) -> trainer_pb2.TrainingJob:
    days = world.records["business_day"]
    window = trainer_pb2.DayWindow(start_day=days.min().strftime("%Y-%m-%d"), end_day=days.max().strftime("%Y-%m-%d"))
    job = trainer.StartTraining(trainer_pb2.StartTrainingRequest(window=window, reason="initial")).job
    final = list(trainer.WatchTrainingJob(trainer_pb2.WatchTrainingJobRequest(job_id=job.job_id)))[-1].job
    assert final.state == trainer_pb2.JOB_STATE_SUCCEEDED, final.error
    return final


def _drifted_logs(version: int, profile: dict, rows: int, day: dt.date) -> drift_pb2.LogPredictionsRequest:
    """Rows of one day whose every numeric feature and forecast lies far beyond its reference's maximum."""
    rng = np.random.default_rng(71)
    columns = []
    for name, numeric in profile["numeric"].items():
        values = 10.0 * abs(numeric["max"] or 0.0) + 100.0 + rng.random(rows) * 10.0
        columns.append(drift_pb2.FeatureValues(name=name, numeric=drift_pb2.DoubleList(values=values.tolist())))
    for name, categorical in profile["categorical"].items():
        seen = sorted(categorical["counts"])
        columns.append(
            drift_pb2.FeatureValues(name=name, categorical=drift_pb2.StringList(values=rng.choice(seen, rows).tolist()))
        )
    midnight = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1000)
    return drift_pb2.LogPredictionsRequest(
        model_version=version,
        keys=drift_pb2.EntityKeys(
            store_ids=[f"S{i % 4}" for i in range(rows)], medication_ids=[f"M{i}" for i in range(rows)]
        ),
        event_times_unix_ms=[midnight + i for i in range(rows)],
        features=columns,
        predictions=(10.0 * profile["prediction"]["max"] + 100.0 + rng.random(rows) * 10.0).tolist(),
        source="online",
    )


def test_a_drift_alert_submits_one_retraining_trigger_to_the_real_trainer(services, world):
    trainer, drift = services
    version = _train(trainer, world).version
    manifest = json.loads(
        trainer.GetModelVersion(
            trainer_pb2.GetModelVersionRequest(version=version, include_manifest=True)
        ).version.manifest_json
    )
    profile = manifest["reference_profile"]

    day = world.records["business_day"].max().date()
    # Unknown to the drift service until now: it takes the reference from the manifest.
    response = drift.LogPredictions(iter([_drifted_logs(version, profile, 300, day)]))
    assert (response.accepted_rows, response.rejected_rows) == (300, 0)
    reference = drift.GetReference(drift_pb2.GetReferenceRequest(model_version=version)).reference
    assert sorted(reference.numeric_features) == sorted(profile["numeric"])

    alerts = drift.ListAlerts(drift_pb2.ListAlertsRequest(model_version=version)).alerts
    kinds = {a.kind for a in alerts}
    assert drift_pb2.ALERT_KIND_DATA_DRIFT in kinds and drift_pb2.ALERT_KIND_PREDICTION_DRIFT in kinds
    trigger_ids = {a.retrain_job_id for a in alerts}
    assert len(trigger_ids) == 1 and "" not in trigger_ids, "one retraining trigger for the window's alerts"

    # The trainer's policy holds the trigger until labelled rows from after the
    # change exist: a horizon (7) and the holdout (10) past the business day
    # the drifted rows stand on (stamped at the start of `day`: the day before).
    first = min(alerts, key=lambda a: a.alert_id)
    (status,) = trainer.ListTrainingPolicies(trainer_pb2.ListTrainingPoliciesRequest()).policies
    (trigger,) = status.pending_triggers
    assert trigger.trigger_id == trigger_ids.pop() and trigger.kind == "data_drift"
    assert trigger.reason.startswith(f"drift alert {first.alert_id} (") and first.reason[:200] in trigger.reason
    assert [(t.alias, t.runnable_day, t.state) for t in trigger.targets] == [
        ("champion", (day - dt.timedelta(days=1) + dt.timedelta(days=7 + 10 - 1)).isoformat(), "waiting")
    ]
