"""Bounded work per request and corrupt state files, on a real feature process:
one huge or malformed id costs no more than a normal one and is rejected
naming its field; spans and grids are counted before they are built; a
corrupt record log file, online.db or registry.db is set aside on start and
the service serves from what is whole."""

from __future__ import annotations

import time

import grpc
import pytest

from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.suite.fuzz import memory_kib, reset_peak
from tests.feature.conftest import start_feature, stub_for
from tests.feature.records import day_end_ms, take, to_protos, world
from tests.scrape import metrics_text

PRESENT = pb.FEATURE_STATUS_PRESENT


def _code(call, *args):
    with pytest.raises(grpc.RpcError) as info:
        call(*args)
    return info.value.code(), info.value.details()


def test_one_huge_id_costs_no_more_than_a_normal_batch_and_is_rejected(feature_process, stub):
    columns = world(10, 100, 1, prefix="h")  # 1,000 records, the process's batch limit
    records = to_protos(columns)
    records[7].store_id = "x" * 60_000
    pid = feature_process.process.pid
    reset_peak(pid)
    before = memory_kib(pid)
    answer = stub.IngestRecords(pb.IngestRecordsRequest(records=records))
    grown_mib = (memory_kib(pid, "VmHWM:") - before) / 1024
    assert answer.accepted_count == 999
    (error,) = answer.errors
    assert (error.index, error.field) == (7, "store_id")
    assert "at most 128 characters" in error.message and len(error.message) < 200
    # NumPy would give all 1,000 ids the width of the longest (240 MB per copy).
    assert grown_mib < 150, f"the batch cost {grown_mib:.0f} MiB"


def test_control_characters_and_huge_attributes_are_rejected_per_field(stub):
    columns = take(world(1, 4, 1, prefix="c"), [0, 1, 2, 3])
    columns["store_region"] = ["north", "north", "r" * 200_000, "north"]
    columns["medication_id"] = ["cm000", "cm\x00001", "cm002", "\u202ecm003"]
    columns["store_id"] = ["cs000"] * 4
    answer = stub.IngestRecords(pb.IngestRecordsRequest(records=to_protos(columns)))
    assert sorted((e.index, e.field) for e in answer.errors) == [
        (1, "medication_id"),
        (2, "store_region"),
        (3, "medication_id"),
    ]
    assert answer.accepted_count == 1


def test_a_daily_grid_of_millennia_is_refused_before_it_is_built(stub):
    stub.IngestRecords(pb.IngestRecordsRequest(records=to_protos(world(1, 1, 2, prefix="g"))))
    grid = pb.DailyGrid(start_day="0001-01-01", end_day="9999-12-31")
    started = time.monotonic()
    code, details = _code(lambda: list(stub.GetHistoricalFeatures(pb.GetHistoricalFeaturesRequest(daily_grid=grid))))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert time.monotonic() - started < 5


def test_actuals_are_bounded_in_entity_days(stub):
    rows = pb.EntityRows(
        keys=pb.EntityKeys(store_ids=["s"] * 60_000, medication_ids=["m"] * 60_000),
        event_times_unix_ms=[day_end_ms(0)] * 60_000,
    )
    code, details = _code(stub.GetActuals, pb.GetActualsRequest(rows=rows, horizon_days=366))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.startswith("rows x horizon_days: 60000 rows of 366 days")


@pytest.mark.parametrize("bad", ["x" * 60_000, "a\nb", "\u202eevil"])
def test_online_keys_must_be_identifiers(stub, bad):
    keys = pb.EntityKeys(store_ids=["fine", bad], medication_ids=["m", "m"])
    code, details = _code(stub.GetOnlineFeatures, pb.GetOnlineFeaturesRequest(keys=keys))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("keys.store_ids[1]: ") and len(details) < 300


def _quarantined(metrics_port: int) -> float:
    text = metrics_text(metrics_port)
    (line,) = [x for x in text.splitlines() if x.startswith("rxcast_state_files_quarantined_total")]
    return float(line.split()[-1])


#: Damaged together so one restart covers all three: the second record log
#: file's day is lost, the registry and the online store are rebuilt.
DAMAGED = ("records/batch-000000000002.parquet", "online.db", "registry.db")


def test_corrupt_state_files_are_set_aside_and_the_service_serves_what_is_whole(tmp_path):
    data = tmp_path / "data"
    columns = world(1, 1, 2, prefix="q")
    process = start_feature(tmp_path / "run", data, "--ttl-clock", "data", name="first")
    channel, stub = stub_for(process)
    try:
        for day in (0, 1):  # two batches: two record log files
            stub.IngestRecords(pb.IngestRecordsRequest(records=to_protos(take(columns, [day]))))
    finally:
        channel.close()
        process.stop()
    for name in DAMAGED:
        (data / name).write_bytes(b"not what was written" * 8)

    restarted = start_feature(tmp_path / "run", data, "--ttl-clock", "data", name="second")
    channel, stub = stub_for(restarted)
    try:
        assert restarted.health() == "SERVING"
        for name in DAMAGED:
            assert list((data / name).parent.glob(f"{(data / name).name}.corrupt-*")), name
        assert _quarantined(restarted.metrics_port) == len(DAMAGED)
        keys = pb.EntityKeys(store_ids=["qs000"], medication_ids=["qm000"])
        online = stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(keys=keys, features=["units_on_hand"]))
        assert list(online.columns[0].statuses) == [PRESENT]  # materialized again from the offline files
        answer = stub.IngestRecords(pb.IngestRecordsRequest(records=to_protos(take(columns, [1]))))
        assert answer.accepted_count == 1 and answer.replaced_count == 0  # day 1's record was the one lost
    finally:
        channel.close()
        restarted.stop()
