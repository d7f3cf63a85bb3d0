"""The Redis online store, against a real redis-server on a free loopback port."""

from __future__ import annotations

import pytest

from rxcast.feature.v1 import feature_pb2 as pb
from tests import binaries
from tests.feature.conftest import start_feature, stub_for
from tests.feature.records import day_end_ms, oracle, take, to_protos, trailing, world


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    try:
        server, port = binaries.redis_server(tmp_path_factory.mktemp("redis"))
    except binaries.BinaryError as exc:
        pytest.fail(str(exc))
    yield port
    binaries.stop(server)


def test_online_features_from_redis(tmp_path, redis_port):
    process = start_feature(
        tmp_path / "run",
        tmp_path / "data",
        "--online-store",
        "redis",
        "--redis-url",
        f"redis://127.0.0.1:{redis_port}/0",
    )
    channel, stub = stub_for(process)
    try:
        columns = world(2, 2, 10, prefix="r")
        answer = stub.IngestRecords(pb.IngestRecordsRequest(records=to_protos(columns)))
        assert answer.accepted_count == 40 and not answer.errors
        keys = pb.EntityKeys(store_ids=["rs000", "rs001", "nobody"], medication_ids=["rm001", "rm000", "rm000"])
        served = {c.name: c for c in stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(keys=keys)).columns}
        frame = oracle(columns)
        sums = served["dispensed_sum_7d"]
        assert list(sums.statuses) == [
            pb.FEATURE_STATUS_PRESENT,
            pb.FEATURE_STATUS_PRESENT,
            pb.FEATURE_STATUS_NOT_FOUND,
        ]
        assert sums.double_values.values[0] == trailing(frame, "rs000", "rm001", 9, 7)
        assert sums.double_values.values[1] == trailing(frame, "rs001", "rm000", 9, 7)
        assert served["store_region"].string_values.values[:2] == ["north", "south"]

        # A corrected record for the latest day rewrites the same event time online.
        last = [i for i, (s, m, d) in enumerate(zip(columns["store_id"], columns["medication_id"], columns["business_day"]))
                if (s, m) == ("rs000", "rm001") and d == "2025-01-10"]  # fmt: skip
        correction = take(columns, last)
        correction["units_dispensed"] = [500.0]
        stub.IngestRecords(pb.IngestRecordsRequest(records=to_protos(correction)))
        served = {c.name: c for c in stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(keys=keys)).columns}
        assert served["dispensed_1d"].double_values.values[0] == 500.0
        assert served["dispensed_1d"].event_times_unix_ms[0] == day_end_ms(9)

        done = stub.Materialize(pb.MaterializeRequest())
        assert done.rows_written > 0
        served = {c.name: c for c in stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(keys=keys)).columns}
        assert served["dispensed_1d"].double_values.values[0] == 500.0
    finally:
        channel.close()
        process.stop()


def test_the_online_view_answers_as_feast_reading_redis(tmp_path, redis_port):
    from tests.feature.test_online_view import assert_same, feast_answer, open_store, request_keys, stale_world

    settings = {"online_store": "redis", "redis_url": f"redis://127.0.0.1:{redis_port}/1"}
    stores, medications = request_keys()
    store = open_store(tmp_path / "data", **settings)
    try:
        store.ingest(stale_world())
        served = store.online(stores, medications)
        assert_same(served, feast_answer(store, stores, medications))
    finally:
        store.close()
    store = open_store(tmp_path / "data", **settings)  # rebuilt from Redis at start
    try:
        assert_same(store.online(stores, medications), served)
    finally:
        store.close()
