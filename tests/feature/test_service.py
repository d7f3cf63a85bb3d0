"""The feature service through gRPC, from a real client, against a real process."""

from __future__ import annotations

import math
import time

import grpc
import numpy as np
import pytest
from google.protobuf import timestamp_pb2

from rxcast.clients.columns import decode_columns, decode_packed
from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.runtime.channels import connect
from tests.feature.records import day_end_ms, day_text, oracle, take, to_protos, trailing, world

PRESENT, NULL_VALUE, NOT_FOUND, OUTSIDE_TTL = (
    pb.FEATURE_STATUS_PRESENT,
    pb.FEATURE_STATUS_NULL_VALUE,
    pb.FEATURE_STATUS_NOT_FOUND,
    pb.FEATURE_STATUS_OUTSIDE_TTL,
)


def ingest(stub, columns, batch: int = 2000) -> pb.IngestRecordsResponse:
    records = to_protos(columns)
    total = pb.IngestRecordsResponse()
    for start in range(0, len(records), batch):
        answer = stub.IngestRecords(pb.IngestRecordsRequest(records=records[start : start + batch]))
        total.accepted_count += answer.accepted_count
        total.replaced_count += answer.replaced_count
        total.errors.extend(answer.errors)
    return total


def values_of(column: pb.FeatureColumn) -> list:
    kind = column.WhichOneof("values")
    return list(getattr(column, kind).values)


def by_name(columns) -> dict[str, pb.FeatureColumn]:
    return {c.name: c for c in columns}


def online(stub, stores, medications, **kwargs) -> dict[str, pb.FeatureColumn]:
    request = pb.GetOnlineFeaturesRequest(keys=pb.EntityKeys(store_ids=stores, medication_ids=medications), **kwargs)
    return by_name(stub.GetOnlineFeatures(request).columns)


def historical(stub, stores, medications, instants, **kwargs) -> tuple[list, dict[str, list]]:
    rows = pb.EntityRows(keys=pb.EntityKeys(store_ids=stores, medication_ids=medications), event_times_unix_ms=instants)
    chunks = list(stub.GetHistoricalFeatures(pb.GetHistoricalFeaturesRequest(rows=rows, **kwargs)))
    merged: dict[str, dict[str, list]] = {}
    for chunk in chunks:
        for column in chunk.columns:
            entry = merged.setdefault(column.name, {"values": [], "statuses": [], "times": []})
            entry["values"] += values_of(column)
            entry["statuses"] += list(column.statuses)
            entry["times"] += list(column.event_times_unix_ms)
    return chunks, merged


@pytest.fixture(scope="module")
def seeded(stub):
    """A 3 stores × 4 medications × 40 days world, ingested once."""
    columns = world(3, 4, 40, prefix="a")
    answer = ingest(stub, columns)
    assert answer.accepted_count == len(columns["store_id"]) and not answer.errors
    return columns


def test_online_features_match_the_records(stub, seeded):
    frame = oracle(seeded)
    stores, medications = ["as000", "as002", "as001"], ["am000", "am003", "am001"]
    columns = online(stub, stores, medications)
    assert "dispensed_sum_7d" in columns and "medication_category" in columns
    for i, (s, m) in enumerate(zip(stores, medications)):
        assert columns["dispensed_sum_7d"].double_values.values[i] == trailing(frame, s, m, 39, 7)
        assert columns["dispensed_sum_28d"].double_values.values[i] == trailing(frame, s, m, 39, 28)
        assert columns["units_on_hand"].double_values.values[i] == frame.loc[(s, m, 39), "units_on_hand"]
        assert columns["store_region"].string_values.values[i] == frame.loc[(s, m, 39), "store_region"]
        assert columns["medication_category"].string_values.values[i] == frame.loc[(s, m, 39), "medication_category"]
        assert columns["dispensed_sum_7d"].event_times_unix_ms[i] == day_end_ms(39)
        assert columns["dispensed_sum_7d"].statuses[i] == PRESENT


def test_requested_features_come_back_in_request_order(stub, seeded):
    names = ["store_region", "dispensed_sum_7d", "inventory_daily:day_of_week", "stock_out"]
    answer = stub.GetOnlineFeatures(
        pb.GetOnlineFeaturesRequest(keys=pb.EntityKeys(store_ids=["as000"], medication_ids=["am000"]), features=names)
    )
    assert [c.name for c in answer.columns] == ["store_region", "dispensed_sum_7d", "day_of_week", "stock_out"]
    assert [c.WhichOneof("values") for c in answer.columns] == [
        "string_values",
        "double_values",
        "int64_values",
        "bool_values",
    ]
    assert answer.columns[2].int64_values.values[0] == (day_end_ms(39) // 86_400_000 - 1 + 3) % 7


def test_unknown_entities_are_not_found_not_errors(stub, seeded):
    columns = online(stub, ["as000", "nowhere", "as000"], ["am000", "am000", "unknown"])
    for name, column in columns.items():
        assert column.statuses[0] in (PRESENT, NULL_VALUE)
        if name not in ("store_region", "medication_category"):
            assert column.statuses[1] == column.statuses[2] == NOT_FOUND
            assert column.event_times_unix_ms[1] == column.event_times_unix_ms[2] == 0
    # Attributes are keyed by store or medication alone: a known one is found.
    assert columns["medication_category"].statuses[1:] == [PRESENT, NOT_FOUND]
    assert columns["store_region"].statuses[1:] == [NOT_FOUND, PRESENT]


def test_a_packed_answer_holds_what_the_columns_hold(stub, seeded):
    # Known, unknown and half-known entities, an expired one, every value type.
    ingest(stub, world(1, 1, 11, prefix="packed"))
    stores = ["as000", "nowhere", "as001", "packeds000"]
    medications = ["am000", "am000", "unknown", "packedm000"]
    names = ["store_region", "dispensed_sum_7d", "inventory_daily:day_of_week", "stock_out", "medication_category"]
    keys = pb.EntityKeys(store_ids=stores, medication_ids=medications)
    columns = stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(keys=keys, features=names))
    packed = stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(keys=keys, features=names, packed=True))
    assert not packed.columns and packed.packed.rows == len(stores)
    assert list(packed.packed.string_names) == ["store_region", "medication_category"]
    wanted = ["store_region", "dispensed_sum_7d", "day_of_week", "stock_out", "medication_category"]
    from_columns = decode_columns(columns.columns, len(stores), wanted, strict=True)
    from_packed = decode_packed(packed.packed, len(stores), wanted, strict=True)
    statuses = {c.name: list(c.statuses) for c in columns.columns}
    assert statuses["dispensed_sum_7d"] == [PRESENT, NOT_FOUND, NOT_FOUND, OUTSIDE_TTL]
    for name in wanted:
        np.testing.assert_array_equal(from_packed.values[name], from_columns.values[name])
        np.testing.assert_array_equal(from_packed.present[name], from_columns.present[name])
        np.testing.assert_array_equal(from_packed.event_ms[name], from_columns.event_ms[name])


def test_bad_requests_name_the_field(stub, seeded):
    def code_of(request):
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetOnlineFeatures(request)
        return caught.value.code(), caught.value.details()

    code, details = code_of(pb.GetOnlineFeaturesRequest(keys=pb.EntityKeys(store_ids=["a"], medication_ids=[])))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "keys" in details
    code, details = code_of(pb.GetOnlineFeaturesRequest(features=["no_such_feature"]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "no_such_feature" in details
    code, details = code_of(pb.GetOnlineFeaturesRequest(feature_service="no_such_service"))
    assert code == grpc.StatusCode.NOT_FOUND and "no_such_service" in details


def test_invalid_records_come_back_per_record_and_valid_ones_are_stored(stub):
    good = world(1, 2, 2, first_day=38, prefix="bad")
    records = to_protos(good)
    records[0].units_dispensed = 6
    records[1].units_dispensed = -3
    records[2].units_on_hand = math.nan
    records[3].business_day = "2025-02-30"
    broken = [
        pb.InventoryRecord(store_id="", medication_id="badm000", business_day=day_text(5), store_region="north"),
        pb.InventoryRecord(store_id="newstore", medication_id="badm000", business_day=day_text(5)),
        pb.InventoryRecord(store_id="bads000", medication_id="badm000", business_day="2999-01-01"),
        pb.InventoryRecord(store_id="bads000", medication_id="badm000", business_day=day_text(6), unit_price=0),
        pb.InventoryRecord(
            store_id="bads000", medication_id="badm000", business_day=day_text(7), units_received=math.inf
        ),
    ]
    answer = stub.IngestRecords(pb.IngestRecordsRequest(records=records + broken))
    errors = {(e.index, e.field): e.message for e in answer.errors}
    assert errors[(1, "units_dispensed")] == "must be >= 0, got -3.0"
    assert "finite" in errors[(2, "units_on_hand")]
    assert "2025-02-30" in errors[(3, "business_day")]
    assert "required" in errors[(4, "store_id")]
    assert "first time" in errors[(5, "store_region")]
    assert "future" in errors[(6, "business_day")]
    assert "> 0" in errors[(7, "unit_price")]
    assert "finite" in errors[(8, "units_received")]
    assert {e.index for e in answer.errors} == set(range(1, 9))
    assert answer.accepted_count == 1  # record 0
    columns = online(stub, ["bads000"], ["badm000"])
    assert columns["dispensed_1d"].double_values.values[0] == 6
    assert columns["dispensed_1d"].statuses[0] == PRESENT


def test_a_retried_batch_does_not_double_count(stub):
    columns = world(1, 1, 10, first_day=30, prefix="retry")
    first = ingest(stub, columns)
    again = ingest(stub, columns)
    assert (first.accepted_count, first.replaced_count) == (10, 0)
    assert (again.accepted_count, again.replaced_count) == (10, 10)
    frame = oracle(columns)
    answer = online(stub, ["retrys000"], ["retrym000"])
    assert answer["dispensed_sum_7d"].double_values.values[0] == trailing(frame, "retrys000", "retrym000", 39, 7)
    assert answer["days_recorded_28d"].int64_values.values[0] == 10
    _, past = historical(stub, ["retrys000"], ["retrym000"], [day_end_ms(39)])
    assert past["dispensed_sum_28d"]["values"][0] == trailing(frame, "retrys000", "retrym000", 39, 28)


def test_late_and_replaced_days_are_recomputed(stub):
    columns = world(1, 1, 30, prefix="late")
    late_day = [i for i, d in enumerate(columns["business_day"]) if d == day_text(12)]
    on_time = [i for i in range(30) if i not in late_day]
    ingest(stub, take(columns, on_time))
    ingest(stub, take(columns, late_day))  # arrives after the days that follow it
    correction = take(columns, [5])
    correction["units_dispensed"] = [1000.0]
    ingest(stub, correction)  # replaces day 5
    truth = dict(columns)
    truth = {k: list(v) for k, v in truth.items()}
    truth["units_dispensed"][5] = 1000.0
    frame = oracle(truth)
    days = [5, 11, 12, 20, 29]
    _, past = historical(stub, ["lates000"] * 5, ["latem000"] * 5, [day_end_ms(d) for d in days])
    for i, day in enumerate(days):
        assert past["dispensed_sum_7d"]["values"][i] == trailing(frame, "lates000", "latem000", day, 7), day
        assert past["dispensed_sum_28d"]["values"][i] == trailing(frame, "lates000", "latem000", day, 28), day
    now = online(stub, ["lates000"], ["latem000"])
    assert now["dispensed_sum_28d"].double_values.values[0] == trailing(frame, "lates000", "latem000", 29, 28)


def test_historical_is_point_in_time_correct(stub, seeded):
    frame = oracle(seeded)
    rng = np.random.default_rng(3)
    n = 300
    stores = [f"as{i:03d}" for i in rng.integers(0, 3, n)]
    medications = [f"am{i:03d}" for i in rng.integers(0, 4, n)]
    # Instants anywhere from before the first record to after the last, including mid-day.
    instants = (day_end_ms(-3) + rng.integers(0, 46 * 86_400_000, n)).tolist()
    chunks, past = historical(stub, stores, medications, instants, chunk_rows=64)
    assert [c.row_offset for c in chunks] == [0, 64, 128, 192, 256]
    assert all(c.total_rows == n for c in chunks)
    assert sum(len(c.rows.event_times_unix_ms) for c in chunks) == n
    returned = [t for c in chunks for t in c.rows.event_times_unix_ms]
    assert returned == instants
    for i in range(n):
        as_of = min(instants[i] // 86_400_000 - 1 - (day_end_ms(0) // 86_400_000 - 1), 39)
        status = past["dispensed_sum_7d"]["statuses"][i]
        event = past["dispensed_sum_7d"]["times"][i]
        if as_of < 0:
            assert status == NOT_FOUND, i
            continue
        assert event <= instants[i], "a value stamped after the row's instant was returned"
        assert event == day_end_ms(as_of)
        assert status == PRESENT
        assert past["dispensed_sum_7d"]["values"][i] == trailing(frame, stores[i], medications[i], as_of, 7)
        assert past["store_region"]["statuses"][i] == PRESENT


def test_daily_grid_lists_every_known_entity_each_day(stub, seeded):
    late = world(1, 1, 5, first_day=36, prefix="grid")  # first seen on day 36
    ingest(stub, late)
    request = pb.GetHistoricalFeaturesRequest(
        daily_grid=pb.DailyGrid(start_day=day_text(34), end_day=day_text(37)),
        features=["dispensed_1d", "store_region"],
        chunk_rows=5,
    )
    chunks = list(stub.GetHistoricalFeatures(request))
    rows = [
        (s, m, t)
        for c in chunks
        for s, m, t in zip(c.rows.keys.store_ids, c.rows.keys.medication_ids, c.rows.event_times_unix_ms)
    ]
    assert all(len(c.rows.event_times_unix_ms) <= 5 for c in chunks)
    grid_rows = [r for r in rows if r[0] == "grids000"]
    assert [t for _, _, t in grid_rows] == [day_end_ms(36), day_end_ms(37)]
    seeded_rows = [r for r in rows if r[0].startswith("as")]
    assert len(seeded_rows) == 12 * 4
    values = [v for c in chunks for v in c.columns[0].double_values.values]
    statuses = [v for c in chunks for v in c.columns[0].statuses]
    frame = oracle(seeded)
    for (s, m, t), value, status in zip(rows, values, statuses):
        if s.startswith("as"):
            day = t // 86_400_000 - 1 - (day_end_ms(0) // 86_400_000 - 1)
            expected = frame.loc[(s, m, day), "units_dispensed"]
            assert (status == NULL_VALUE) if np.isnan(expected) else (value == expected and status == PRESENT)


def test_online_matches_historical_after_each_push(stub):
    """The skew test: features served online right after each ingest equal
    the historical features for the same entities at the same instant."""
    # Days after every other test's, so each push moves the data clock (TTL) forward.
    columns = world(2, 2, 12, first_day=40, prefix="skew", seed=11)
    stores, medications = (
        ["skews000", "skews001", "skews000", "skews001"],
        ["skewm000", "skewm000", "skewm001", "skewm001"],
    )
    for day in range(40, 52):
        todays = [i for i, d in enumerate(columns["business_day"]) if d == day_text(day)]
        ingest(stub, take(columns, todays))
        served = stub.GetOnlineFeatures(
            pb.GetOnlineFeaturesRequest(keys=pb.EntityKeys(store_ids=stores, medication_ids=medications))
        ).columns
        _, past = historical(stub, stores, medications, [day_end_ms(day)] * 4)
        assert [c.name for c in served] == list(past)
        for column in served:
            want = past[column.name]
            assert list(column.statuses) == want["statuses"], (day, column.name)
            got = values_of(column)
            assert got == pytest.approx(want["values"], nan_ok=True), (day, column.name)
            assert list(column.event_times_unix_ms) == want["times"], (day, column.name)


def test_stale_values_are_outside_ttl(stub, seeded):
    # Stops reporting on day 10; the seeded world runs to day 39, and the
    # inventory view's TTL is 14 days (measured on the data's clock).
    ingest(stub, world(1, 1, 11, prefix="stale"))
    columns = online(stub, ["stales000", "as000"], ["stalem000", "am000"])
    assert columns["dispensed_sum_7d"].statuses[0] == OUTSIDE_TTL
    assert columns["dispensed_sum_7d"].double_values.values[0] == 0.0  # a placeholder
    assert columns["dispensed_sum_7d"].event_times_unix_ms[0] == day_end_ms(10)
    assert columns["dispensed_sum_7d"].statuses[1] == PRESENT
    # Attributes never expire.
    assert columns["store_region"].statuses[0] == PRESENT
    _, past = historical(stub, ["stales000"] * 2, ["stalem000"] * 2, [day_end_ms(20), day_end_ms(30)])
    assert past["dispensed_sum_7d"]["statuses"] == [PRESENT, OUTSIDE_TTL]


def test_actuals_sum_the_horizon_after_each_row(stub, seeded):
    frame = oracle(seeded)
    instants = [day_end_ms(10), day_end_ms(10) + 3_600_000, day_end_ms(32), day_end_ms(33), day_end_ms(-1)]
    rows = pb.EntityRows(
        keys=pb.EntityKeys(store_ids=["as001"] * 5, medication_ids=["am002"] * 5), event_times_unix_ms=instants
    )
    answer = stub.GetActuals(pb.GetActualsRequest(rows=rows))
    assert answer.horizon_days == 7
    window = frame.loc[("as001", "am002"), "units_dispensed"]
    expected_10 = window.loc[11:17]
    if expected_10.isna().any():
        assert answer.statuses[0] == NOT_FOUND
    else:
        assert answer.statuses[:2] == [PRESENT, PRESENT]
        assert answer.values[0] == answer.values[1] == float(expected_10.sum())
    assert answer.statuses[3] == NOT_FOUND  # days 34..40: day 40 not ingested yet
    three = stub.GetActuals(pb.GetActualsRequest(rows=rows, horizon_days=3))
    assert three.horizon_days == 3
    expected_4 = window.loc[0:2]
    assert (three.statuses[4] == PRESENT) == (not expected_4.isna().any())
    if three.statuses[4] == PRESENT:
        assert three.values[4] == float(expected_4.sum())
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetActuals(pb.GetActualsRequest(rows=rows, horizon_days=-2))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_schema_lists_features_services_and_entities(stub):
    schema = stub.ListFeatures(pb.ListFeaturesRequest())
    features = {f.name: f for f in schema.features}
    assert schema.default_feature_service == "demand_forecast"
    # The service owns the target: trainers read its horizon here.
    assert schema.horizon_days == 7
    service = {s.name: s for s in schema.feature_services}["demand_forecast"]
    for name in ("dispensed_sum_7d", "dispensed_sum_28d", "prescriptions_sum_7d", "units_on_hand", "unit_price",
                 "on_promotion", "stockout_days_7d", "day_of_week", "medication_category", "store_region"):  # fmt: skip
        assert name in service.features
    assert features["medication_category"].categorical and features["store_region"].categorical
    assert features["medication_category"].value_type == pb.VALUE_TYPE_STRING
    assert not features["dispensed_sum_7d"].categorical
    assert features["dispensed_sum_7d"].value_type == pb.VALUE_TYPE_DOUBLE
    assert features["dispensed_sum_7d"].feature_view == "inventory_daily"
    assert features["dispensed_sum_7d"].ttl.seconds == 14 * 86400
    assert features["dispensed_sum_7d"].description
    assert {(e.name, e.join_key) for e in schema.entities} == {("store", "store_id"), ("medication", "medication_id")}
    assert schema.registry_updated_time.seconds > 0


def test_materialize_copies_offline_values_online(stub, seeded):
    # Day 38 is within the TTL of the data clock (day 51 after the skew test).
    end_of_day_38 = timestamp_pb2.Timestamp(seconds=day_end_ms(38) // 1000)
    answer = stub.Materialize(
        pb.MaterializeRequest(
            start_time=timestamp_pb2.Timestamp(seconds=day_end_ms(0) // 1000),
            end_time=end_of_day_38,
            feature_views=["inventory_daily"],
        )
    )
    assert list(answer.feature_views) == ["inventory_daily"] and answer.rows_written > 0
    # The online store now holds the latest values of the range: day 38's.
    columns = online(stub, ["as000"], ["am000"])
    assert columns["dispensed_sum_7d"].event_times_unix_ms[0] == day_end_ms(38)
    frame = oracle(seeded)
    assert columns["dispensed_sum_7d"].double_values.values[0] == trailing(frame, "as000", "am000", 38, 7)
    # Continuing from there (no start) brings the newest values back.
    answer = stub.Materialize(pb.MaterializeRequest(feature_views=["inventory_daily"]))
    assert answer.start_time.seconds == end_of_day_38.seconds
    columns = online(stub, ["as000"], ["am000"])
    assert columns["dispensed_sum_7d"].event_times_unix_ms[0] == day_end_ms(39)

    with pytest.raises(grpc.RpcError) as caught:
        stub.Materialize(pb.MaterializeRequest(feature_views=["nope"]))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.Materialize(pb.MaterializeRequest(start_time=end_of_day_38, end_time=end_of_day_38))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_batches_are_refused(stub):
    records = [pb.InventoryRecord(store_id="x", medication_id="y", business_day=day_text(0))] * 1001
    with pytest.raises(grpc.RpcError) as caught:
        stub.IngestRecords(pb.IngestRecordsRequest(records=records))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1000" in caught.value.details()


def test_feast_clients_can_call_the_same_port(feature_process, stub, seeded):
    from feast.protos.feast.serving import ServingService_pb2 as serving
    from feast.protos.feast.serving.ServingService_pb2_grpc import ServingServiceStub
    from feast.protos.feast.types.Value_pb2 import RepeatedValue, Value

    with connect(feature_process.address, default_timeout=30.0) as channel:
        feast = ServingServiceStub(channel)
        info = feast.GetFeastServingInfo(serving.GetFeastServingInfoRequest(), timeout=10)
        assert info.version
        request = serving.GetOnlineFeaturesRequest(
            feature_service="demand_forecast",
            entities={
                "store_id": RepeatedValue(val=[Value(string_val="as001"), Value(string_val="nowhere")]),
                "medication_id": RepeatedValue(val=[Value(string_val="am002"), Value(string_val="am002")]),
            },
        )
        answer = feast.GetOnlineFeatures(request, timeout=10)
    names = list(answer.metadata.feature_names.val)
    assert "dispensed_sum_7d" in names and "store_id" in names
    vector = answer.results[names.index("dispensed_sum_7d")]
    ours = online(stub, ["as001", "nowhere"], ["am002", "am002"])["dispensed_sum_7d"]
    assert vector.values[0].double_val == ours.double_values.values[0]
    assert vector.statuses[0] == serving.PRESENT and vector.statuses[1] == serving.NOT_FOUND


def test_definition_changes_are_seen_without_restart(feature_process, stub, seeded):
    from feast import FeatureService

    from rxcast.feature.feast_repo import open_store

    outside = open_store(feature_process.data_dir, apply=False)
    view = outside.get_feature_view("inventory_daily")
    outside.apply([FeatureService(name="baseline_only", features=[view[["dispensed_sum_7d"]]], description="naive")])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        services = {s.name for s in stub.ListFeatures(pb.ListFeaturesRequest()).feature_services}
        if "baseline_only" in services:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the service did not see the new feature service")
    answer = stub.GetOnlineFeatures(
        pb.GetOnlineFeaturesRequest(
            keys=pb.EntityKeys(store_ids=["as000"], medication_ids=["am000"]), feature_service="baseline_only"
        )
    )
    assert [c.name for c in answer.columns] == ["dispensed_sum_7d"]


def test_seed_command_loads_a_file_of_records(feature_process, stub, tmp_path):
    import subprocess
    import sys

    import pandas as pd

    columns = world(2, 3, 6, first_day=34, prefix="seed")
    columns["units_dispensed"][0] = float("nan")  # missing values stay missing
    path = tmp_path / "records.parquet"
    pd.DataFrame(columns).to_parquet(path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rxcast.feature.seed",
            "--target",
            feature_process.address,
            "--records",
            str(path),
            "--batch-records",
            "10",
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "seeded 36 records (0 replaced, 0 rejected)" in done.stdout
    frame = oracle(columns)
    answer = online(stub, ["seeds001"], ["seedm002"])
    assert answer["dispensed_sum_7d"].double_values.values[0] == trailing(frame, "seeds001", "seedm002", 39, 7)

    broken = pd.DataFrame(columns).iloc[:2].assign(units_on_hand=-1.0)
    broken.to_parquet(path)
    done = subprocess.run(
        [sys.executable, "-m", "rxcast.feature.seed", "--target", feature_process.address, "--records", str(path)],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "units_on_hand" in done.stderr


def test_reads_run_beside_ingests(stub, seeded):
    """Online, historical and actuals calls from several threads while batches
    are ingested: every call answers OK and sees whole values."""
    import threading

    failures = []
    stop = threading.Event()
    keys = pb.EntityKeys(store_ids=["as000", "as001", "convs000"], medication_ids=["am000", "am001", "convm000"])
    rows = pb.EntityRows(keys=keys, event_times_unix_ms=[day_end_ms(20)] * 3)

    def read():
        calls = 0
        while not stop.is_set() and calls < 300:
            calls += 1
            try:
                stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(keys=keys))
                list(stub.GetHistoricalFeatures(pb.GetHistoricalFeaturesRequest(rows=rows)))
                stub.GetActuals(pb.GetActualsRequest(rows=rows))
            except grpc.RpcError as exc:
                failures.append(f"{exc.code().name}: {exc.details()}")
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    columns = world(3, 20, 8, first_day=44, prefix="conv")  # new entities appear while reading
    for day in range(44, 52):
        todays = [i for i, d in enumerate(columns["business_day"]) if d == day_text(day)]
        assert ingest(stub, take(columns, todays)).accepted_count == len(todays)
    stop.set()
    for thread in readers:
        thread.join(60)
    assert not failures, failures[:3]
    frame = oracle(columns)
    answer = online(stub, ["convs002"], ["convm019"])
    assert answer["dispensed_sum_7d"].double_values.values[0] == trailing(frame, "convs002", "convm019", 51, 7)
