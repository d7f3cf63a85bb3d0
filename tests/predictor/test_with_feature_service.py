"""The predictor against the real feature service (Feast-backed process):
online forecasts from its online store and batch runs from its point-in-time
daily grid, for entities ingested through IngestRecords."""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest

from rxcast.clients import FeatureClient
from rxcast.feature.v1 import feature_pb2
from rxcast.model import ModelBundle
from rxcast.predictor import flags as F
from rxcast.predictor.v1 import predictor_pb2 as pb
from rxcast.suite.launcher import ServiceProcess
from tests.predictor.conftest import start_predictor
from tests.predictor.models import CATEGORY_OF, FEATURES, REGION_OF

os.environ.setdefault("FEAST_USAGE", "False")
STORES = ("S0", "S1", "S2")
MEDICATIONS = ("M0", "M1", "M2", "M3")
DAYS = 30


def _records() -> list[feature_pb2.InventoryRecord]:
    rng = np.random.default_rng(3)
    today = dt.datetime.now(dt.UTC).date()
    records = []
    for store in STORES:
        for medication in MEDICATIONS:
            for offset in range(DAYS, 0, -1):
                first = offset == DAYS
                records.append(
                    feature_pb2.InventoryRecord(
                        store_id=store,
                        medication_id=medication,
                        business_day=(today - dt.timedelta(days=offset)).isoformat(),
                        units_dispensed=float(rng.poisson(4)),
                        units_received=0.0,
                        units_on_hand=50.0,
                        prescriptions_written=float(rng.poisson(3)),
                        unit_price=4.5,
                        on_promotion=bool(offset % 9 == 0),
                        medication_category=CATEGORY_OF[medication] if first else "",
                        store_region=REGION_OF[store] if first else "",
                    )
                )
    return records


@pytest.fixture(scope="module")
def feature_service(tmp_path_factory):
    root = tmp_path_factory.mktemp("feature-real")
    process = ServiceProcess("feature", root / "run", ["--data-dir", str(root / "data")], name="feature")
    process.start().wait_ready(180)
    with FeatureClient(process.address, timeout=120) as client:
        outcome = client.ingest(_records())
    assert not outcome.errors and outcome.accepted == len(STORES) * len(MEDICATIONS) * DAYS
    yield process
    process.stop()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, first_model):
    return first_model.write(tmp_path_factory.mktemp("model") / "model-1")


@pytest.fixture(scope="module")
def online(tmp_path_factory, feature_service, model_dir):
    predictor = start_predictor(
        tmp_path_factory.mktemp("online-real"),
        "predictor-online-real",
        ["--mode", "online", "--feature-address", feature_service.address, "--model-dir", str(model_dir),
         "--feature-timeout-seconds", "5"],
    )  # fmt: skip
    yield predictor
    predictor.close()


def _online_columns(feature_service, stores, medications) -> dict[str, np.ndarray]:
    with FeatureClient(feature_service.address, timeout=10) as client:
        return dict(client.online(stores, medications, list(FEATURES)).values)


def test_online_forecasts_are_the_model_on_the_feature_services_values(online, feature_service, first_model):
    stores, medications = ["S0", "S1", "S2", "S1"], ["M0", "M1", "M3", "M2"]
    answer = online.stub.Predict(
        pb.PredictRequest(keys=pb.EntityKeys(store_ids=stores, medication_ids=medications)), timeout=10
    )
    assert list(answer.flags) == [0, 0, 0, 0] and answer.model_version == 1
    # Records are stamped at the end of their business day; the newest ended at most a day ago.
    assert all(0 <= age <= 86_400 + 60 for age in answer.feature_ages_seconds)
    bundle = ModelBundle.from_bytes(first_model.model_text, first_model.manifest)
    columns = _online_columns(feature_service, stores, medications)
    assert set(columns) == set(FEATURES)
    np.testing.assert_allclose(answer.forecasts, bundle.predict(columns))


def test_entities_unknown_to_training_and_to_the_store_fall_back(online, first_model):
    answer = online.stub.Predict(
        pb.PredictRequest(keys=pb.EntityKeys(store_ids=["S0", "S7"], medication_ids=["NEWMED", "M0"])), timeout=10
    )
    assert answer.flags[0] == F.COLD_START_MEDICATION | F.FALLBACK | F.MISSING_FEATURES
    assert answer.flags[1] == F.COLD_START_STORE | F.FALLBACK | F.MISSING_FEATURES
    priors = first_model.manifest.priors
    assert answer.forecasts[0] == pytest.approx(priors["by_store"]["S0"])
    # Only the store's region (recorded on its first day) was found for the new medication.
    assert 29 * 86_400 <= answer.feature_ages_seconds[0] <= 31 * 86_400


def test_batch_run_scores_every_entity_from_point_in_time_features(tmp_path, feature_service, model_dir, online):
    predictor = start_predictor(
        tmp_path,
        "predictor-batch-real",
        ["--mode", "batch", "--feature-address", feature_service.address, "--model-dir", str(model_dir),
         "--data-dir", str(tmp_path / "store"), "--batch-interval-seconds", "0"],
    )  # fmt: skip
    try:
        final = [u.run for u in predictor.stub.RunBatch(pb.RunBatchRequest(reason="test"), timeout=120)][-1]
        assert final.state == pb.BATCH_RUN_STATE_SUCCEEDED, final.error
        assert final.rows_total == len(STORES) * len(MEDICATIONS)
        stores, medications = ["S0", "S2", "S9"], ["M1", "M3", "M0"]
        stored = predictor.stub.GetBatchPredictions(
            pb.GetBatchPredictionsRequest(keys=pb.EntityKeys(store_ids=stores, medication_ids=medications)), timeout=10
        )
        assert list(stored.found) == [True, True, False]
        assert 0 <= stored.age_seconds < 120
        # As of now, the point-in-time features are the online ones: the same forecasts.
        live = online.stub.Predict(
            pb.PredictRequest(keys=pb.EntityKeys(store_ids=stores[:2], medication_ids=medications[:2])), timeout=10
        )
        np.testing.assert_allclose(list(stored.forecasts)[:2], live.forecasts, rtol=1e-9)
        assert list(stored.flags)[:2] == [0, 0]
    finally:
        predictor.close()
