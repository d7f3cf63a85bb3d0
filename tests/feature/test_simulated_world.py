"""The feature service on the simulator's world: volume through the real
ingest path, and the simulator as the oracle of the forecast target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rxcast.clients import FeatureClient
from rxcast.clients.records import normalize
from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.sim import default_scenario, simulate
from tests.feature.conftest import start_feature

DAYS = 45  # 30 stores x 100 medications x 45 days: ~135k records


@pytest.fixture(scope="module")
def world():
    return simulate(default_scenario())


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, world):
    root = tmp_path_factory.mktemp("simulated")
    process = start_feature(root / "run", root / "data")
    client = FeatureClient(process.address, timeout=300)
    records = world.records[world.records["business_day"] <= world.days[DAYS - 1]]
    frame = normalize(records)
    outcome = client.ingest_frame(frame, batch_records=50_000)
    assert (outcome.accepted, outcome.replaced, outcome.errors) == (len(frame), 0, [])
    yield client.stub, frame, client
    client.close()
    process.stop()


def _day_end_ms(days: pd.Series) -> np.ndarray:
    return ((pd.to_datetime(days) + pd.Timedelta(days=1)).to_numpy(dtype="datetime64[ms]")).astype(np.int64)


def test_actuals_equal_the_simulators_observed_target(loaded, world):
    stub, frame, _ = loaded
    rows = frame.sample(3000, random_state=1)[["store_id", "medication_id", "business_day"]]
    request = pb.GetActualsRequest(
        rows=pb.EntityRows(
            keys=pb.EntityKeys(store_ids=rows["store_id"].tolist(), medication_ids=rows["medication_id"].tolist()),
            event_times_unix_ms=_day_end_ms(rows["business_day"]).tolist(),
        ),
        horizon_days=7,
    )
    answer = stub.GetActuals(request)
    expected = world.actuals(rows, horizon=7, observed=True).to_numpy()
    # Only the first DAYS days were ingested: the horizon of later rows has not elapsed yet.
    elapsed = (pd.to_datetime(rows["business_day"]) + pd.Timedelta(days=7) <= world.days[DAYS - 1]).to_numpy()
    expected = np.where(elapsed, expected, np.nan)
    statuses = np.array(answer.statuses)
    assert ((statuses == pb.FEATURE_STATUS_PRESENT) == ~np.isnan(expected)).all()
    present = statuses == pb.FEATURE_STATUS_PRESENT
    assert present.sum() > 1000
    assert np.array(answer.values)[present] == pytest.approx(expected[present])


def test_daily_grid_features_equal_a_rolling_computation_over_the_records(loaded):
    stub, frame, _ = loaded
    request = pb.GetHistoricalFeaturesRequest(
        daily_grid=pb.DailyGrid(start_day="2025-02-10", end_day="2025-02-14"),
        features=["dispensed_sum_7d", "dispensed_sum_28d", "stockout_days_7d", "medication_category"],
        chunk_rows=4000,
    )
    chunks = list(stub.GetHistoricalFeatures(request))
    assert chunks[0].total_rows == 5 * 3000 and sum(len(c.rows.event_times_unix_ms) for c in chunks) == 15_000
    got = pd.DataFrame(
        {
            "store_id": [s for c in chunks for s in c.rows.keys.store_ids],
            "medication_id": [m for c in chunks for m in c.rows.keys.medication_ids],
            "event_ms": [t for c in chunks for t in c.rows.event_times_unix_ms],
            **{
                name: [v for c in chunks for v in getattr(c.columns[j], c.columns[j].WhichOneof("values")).values]
                for j, name in enumerate(request.features)
            },
        }
    )
    records = frame.copy()
    records["day"] = pd.to_datetime(records["business_day"])
    records = records.sort_values(["store_id", "medication_id", "day"])
    grouped = records.groupby(["store_id", "medication_id"])
    records["sum_7d"] = grouped["units_dispensed"].transform(lambda s: s.rolling(7, min_periods=1).sum())
    records["sum_28d"] = grouped["units_dispensed"].transform(lambda s: s.rolling(28, min_periods=1).sum())
    records["stockouts_7d"] = grouped["stock_out"].transform(lambda s: s.astype(int).rolling(7, min_periods=1).sum())
    records["event_ms"] = _day_end_ms(records["business_day"])
    merged = got.merge(records, on=["store_id", "medication_id", "event_ms"], how="left", validate="one_to_one")
    assert merged["day"].notna().all()  # every grid row is a (store, medication, day) with a record
    # A window with no reported value is missing: served as a placeholder 0 (status NULL_VALUE).
    assert merged["dispensed_sum_7d"].to_numpy() == pytest.approx(merged["sum_7d"].fillna(0.0).to_numpy())
    assert merged["dispensed_sum_28d"].to_numpy() == pytest.approx(merged["sum_28d"].fillna(0.0).to_numpy())
    assert (merged["stockout_days_7d"].to_numpy() == merged["stockouts_7d"].to_numpy()).all()
    assert (merged["medication_category_x"] == merged["medication_category_y"]).all()


def test_seeding_a_scenario_loads_its_history_only(world):
    from rxcast.feature.seed import scenario_records

    records = scenario_records("default")
    history_end = world.days[default_scenario().history_days - 1]
    assert records["business_day"].max() == history_end
    assert len(records) == (world.records["business_day"] <= history_end).sum()


def test_the_client_splits_actuals_into_calls_the_service_accepts(loaded, world):
    _, frame, client = loaded
    rows = frame.sample(20_000, random_state=2, replace=True)[["store_id", "medication_id", "business_day"]]
    stores, medications = rows["store_id"].to_numpy(), rows["medication_id"].to_numpy()
    instants = _day_end_ms(rows["business_day"])
    # The service's horizon (0) is unknown until its first answer: 20,000 rows go in
    # calls of at most 2,000,000 / 366 rows, then of the known horizon's share.
    default = client.actuals(stores, medications, instants)
    assert default.horizon_days == 7
    one_call = client.actuals(stores, medications, instants, 7)
    np.testing.assert_array_equal(default.values, one_call.values)
    assert (~np.isnan(default.values)).sum() > 1000
