"""GetDailyTotals on a real feature service: each (day, group)'s sum and count of
a record field equal pandas' over the ingested records; bad requests are refused."""

from __future__ import annotations

import grpc
import pandas as pd
import pytest

from rxcast.clients import FeatureClient
from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.runtime.errors import FailedPrecondition
from tests.feature.records import to_protos, world


@pytest.fixture(scope="module")
def ingested(feature_process):
    records = world(stores=3, medications=5, days=12, seed=11, prefix="totals-")
    with FeatureClient(feature_process.address, timeout=60.0) as client:
        assert not client.ingest(to_protos(records)).errors
    return pd.DataFrame(records)


def test_totals_per_day_store_and_category_equal_the_records(feature_process, ingested):
    days = sorted(ingested.business_day.unique())[2:9:3]
    expected = (
        ingested[ingested.business_day.isin(days) & ingested.units_dispensed.notna()]
        .groupby(["business_day", "store_id", "medication_category"])
        .units_dispensed.agg(["sum", "count"])
        .reset_index()
    )
    with FeatureClient(feature_process.address) as client:
        answer = client.daily_totals("units_dispensed", ["store_id", "medication_category"], days)
    frame = answer.frame
    assert list(frame.columns) == ["business_day", "store_id", "medication_category", "sum", "count"]
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert answer.latest_business_day == max(ingested.business_day)


def test_a_region_total_sums_its_stores_and_no_days_answers_the_latest_only(feature_process, ingested):
    day = ingested.business_day.iloc[0]
    mine = ingested[ingested.business_day == day]
    with FeatureClient(feature_process.address) as client:
        by_region = client.daily_totals("prescriptions_written", ["store_region"], [day]).frame
        latest = client.daily_totals("units_dispensed", [], [])
    expected = mine.groupby("store_region").prescriptions_written.agg(["sum", "count"])
    assert by_region.set_index("store_region")[["sum", "count"]].to_dict() == expected.to_dict()
    assert latest.frame.empty and latest.latest_business_day == max(ingested.business_day)


@pytest.mark.parametrize(
    ("field", "group_by", "days", "message"),
    [
        ("store_region", [], ["2025-01-01"], "field: must be one of"),
        ("units_dispensed", ["medication_id"], ["2025-01-01"], "group_by: 'medication_id' is not one of"),
        ("units_dispensed", ["store_id", "store_id"], ["2025-01-01"], "each key at most once"),
        ("units_dispensed", [], ["2025-02-30"], "must be dates as YYYY-MM-DD, got .2025-02-30"),
        ("units_dispensed", [], ["2025-01-01"] * 1001, "at most 1000 days per call"),
    ],
)
def test_bad_requests_are_refused_with_the_field_at_fault(feature_process, field, group_by, days, message):
    with (
        FeatureClient(feature_process.address) as client,
        pytest.raises(FailedPrecondition, match=f"INVALID_ARGUMENT: .*{message}"),
    ):
        client.daily_totals(field, group_by, days)


def test_the_rpc_is_read_only_and_answers_raw_callers(stub, ingested):
    day = ingested.business_day.iloc[3]
    answer = stub.GetDailyTotals(
        pb.GetDailyTotalsRequest(field="units_dispensed", group_by=["medication_category"], business_days=[day])
    )
    assert [t.business_day for t in answer.totals] == [day] * len(answer.totals)
    assert all(len(t.groups) == 1 and t.count > 0 for t in answer.totals)
    categories = [t.groups[0] for t in answer.totals]
    assert categories == sorted(set(ingested.medication_category))
    with pytest.raises(grpc.RpcError) as failed:
        stub.GetDailyTotals(pb.GetDailyTotalsRequest(field="nope"))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
