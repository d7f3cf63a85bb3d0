"""Nothing acknowledged is lost: SIGKILL right after an ack, restart, find the records."""

from __future__ import annotations

import pytest

from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.suite.launcher import ServiceFailed
from tests.feature.conftest import start_feature, stub_for
from tests.feature.records import day_end_ms, oracle, take, to_protos, trailing, world

PRESENT = pb.FEATURE_STATUS_PRESENT


def _read_back(stub, store, medication, day):
    online = stub.GetOnlineFeatures(
        pb.GetOnlineFeaturesRequest(keys=pb.EntityKeys(store_ids=[store], medication_ids=[medication]))
    )
    rows = pb.EntityRows(
        keys=pb.EntityKeys(store_ids=[store], medication_ids=[medication]), event_times_unix_ms=[day_end_ms(day)]
    )
    (chunk,) = stub.GetHistoricalFeatures(pb.GetHistoricalFeaturesRequest(rows=rows))
    return {c.name: c for c in online.columns}, {c.name: c for c in chunk.columns}


def test_acknowledged_records_survive_sigkill_and_interrupted_batches_are_finished(tmp_path):
    data = tmp_path / "data"
    columns = world(1, 2, 12, prefix="k")
    frame = oracle(columns)
    first_days = [i for i, d in enumerate(columns["business_day"]) if d < "2025-01-12"]
    last_day = [i for i, d in enumerate(columns["business_day"]) if d == "2025-01-12"]

    process = start_feature(tmp_path / "run", data, name="first")
    channel, stub = stub_for(process)
    try:
        stub.IngestRecords(pb.IngestRecordsRequest(records=to_protos(take(columns, first_days))))
        answer = stub.IngestRecords(pb.IngestRecordsRequest(records=to_protos(take(columns, last_day))))
        process.kill()  # SIGKILL right after the acknowledgement
    finally:
        channel.close()
        process.kill()
    assert answer.accepted_count == 2

    restarted = start_feature(tmp_path / "run", data, name="second")
    channel, stub = stub_for(restarted)
    try:
        online, past = _read_back(stub, "ks000", "km001", 11)
        assert online["dispensed_sum_7d"].statuses[0] == PRESENT
        assert online["dispensed_sum_7d"].event_times_unix_ms[0] == day_end_ms(11)
        assert online["dispensed_sum_7d"].double_values.values[0] == trailing(frame, "ks000", "km001", 11, 7)
        assert past["dispensed_sum_28d"].double_values.values[0] == trailing(frame, "ks000", "km001", 11, 28)
        assert past["store_region"].string_values.values[0] == "north"
        # A second process must not share the data directory.
        with pytest.raises(ServiceFailed, match="in use"):
            start_feature(tmp_path / "run", data, name="intruder")
    finally:
        channel.close()
        restarted.kill()

    # A crash after the record log but before the derived rows were written:
    # the last batch's inventory_daily file is missing. The next start finishes it.
    (last,) = sorted((data / "offline" / "inventory_daily").glob("batch-*.parquet"))[-1:]
    last.unlink()
    finished = start_feature(tmp_path / "run", data, name="third")
    channel, stub = stub_for(finished)
    try:
        _, past = _read_back(stub, "ks000", "km000", 11)
        assert past["dispensed_sum_7d"].statuses[0] == PRESENT
        assert past["dispensed_sum_7d"].double_values.values[0] == trailing(frame, "ks000", "km000", 11, 7)
        assert last.exists()
    finally:
        channel.close()
        finished.stop()
