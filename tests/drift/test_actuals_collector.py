"""The loop closes without a driver: the drift process asks the real feature
service for the actuals of logged predictions whose horizon has elapsed."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest

from rxcast.clients import DriftClient, FeatureClient
from rxcast.drift.v1 import drift_pb2
from rxcast.model.profile import build_reference_profile
from rxcast.suite.launcher import ServiceProcess
from tests.feature.records import day_end_ms, to_protos, world
from tests.scrape import metrics_text

os.environ.setdefault("FEAST_USAGE", "False")


def _matched(process: ServiceProcess) -> float:
    text = metrics_text(process.metrics_port)
    for line in text.splitlines():
        if line.startswith('rxcast_drift_actuals_total{outcome="matched"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    root = tmp_path_factory.mktemp("collector")
    feature = ServiceProcess("feature", root, ["--data-dir", str(root / "feature")]).start().wait_ready(120)
    drift = None
    try:
        drift = (
            ServiceProcess(
                "drift",
                root,
                ["--data-dir", str(root / "drift"), "--feature-address", feature.address, "--collect-seconds", "0.3"],
            )
            .start()
            .wait_ready()
        )
        yield feature, drift
    finally:
        if drift is not None:
            drift.stop()
        feature.stop()


def test_actuals_of_elapsed_horizons_are_collected_and_matched(processes):
    feature, drift = processes
    records = world(stores=2, medications=2, days=20, seed=3)
    records["units_dispensed"] = [0.0 if math.isnan(v) else v for v in records["units_dispensed"]]  # no gaps
    with FeatureClient(feature.address, timeout=60.0) as features:
        assert not features.ingest(to_protos(records)).errors

    rng = np.random.default_rng(61)
    profile = build_reference_profile({"x": rng.normal(size=500)}, [], rng.normal(size=500))
    client = DriftClient(drift.address, timeout=30.0)
    stub = client.stub
    stub.RegisterReference(
        drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=json.dumps(profile.to_dict()))
    )
    stores, medications = ["s000", "s000", "s001", "s001"], ["m000", "m001", "m000", "m001"]
    # Day 5's forecasts have their 7 days of demand ingested; day 18's do not yet.
    times = [day_end_ms(5)] * 4 + [day_end_ms(18)] * 4
    response = stub.LogPredictions(
        iter(
            [
                drift_pb2.LogPredictionsRequest(
                    model_version=1,
                    keys=drift_pb2.EntityKeys(store_ids=stores * 2, medication_ids=medications * 2),
                    event_times_unix_ms=times,
                    predictions=[5.0] * 8,
                    features=[drift_pb2.FeatureValues(name="x", numeric=drift_pb2.DoubleList(values=[0.0] * 8))],
                )
            ]
        )
    )
    assert response.accepted_rows == 8
    deadline = time.monotonic() + 60
    while _matched(drift) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _matched(drift) == 4
    client.close()
