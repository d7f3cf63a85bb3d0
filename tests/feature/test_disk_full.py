"""A full disk under the feature service's data directory: ingests answer
RESOURCE_EXHAUSTED (never INTERNAL or UNKNOWN), health turns NOT_SERVING, and
what was acknowledged before stays readable. The data directory is a 3 MiB
tmpfs in the process's own mount namespace (tests.tiny_disk)."""

from __future__ import annotations

import grpc

from rxcast.feature.v1 import feature_pb2 as pb
from tests.feature.conftest import stub_for
from tests.feature.records import to_protos, world
from tests.tiny_disk import TinyDisk, needs_namespaces

pytestmark = needs_namespaces


def test_a_full_disk_is_resource_exhausted_and_not_serving(tmp_path):
    process = TinyDisk("feature", tmp_path / "run", tmp_path / "data", 3, "--min-free-mb", "1").start()
    process.wait_ready(120)
    channel, stub = stub_for(process)
    codes = []
    acknowledged = 0
    try:
        assert process.health() == "SERVING"
        for batch in range(60):
            records = to_protos(world(4, 50, 1, seed=batch, first_day=batch, prefix=f"d{batch}-"))
            try:
                acknowledged += stub.IngestRecords(pb.IngestRecordsRequest(records=records)).accepted_count
                codes.append("OK")
            except grpc.RpcError as exc:
                codes.append(exc.code().name)
                if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    assert "disk" in exc.details()
                    break
        assert codes[-1] == "RESOURCE_EXHAUSTED", codes
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
        assert acknowledged > 0
        assert process.health() == "NOT_SERVING"
        assert process.health(pb.DESCRIPTOR.services_by_name["FeatureService"].full_name) == "NOT_SERVING"
        # Reads still answer from what was stored.
        keys = pb.EntityKeys(store_ids=["d0-s000"], medication_ids=["d0-m000"])
        online = stub.GetOnlineFeatures(pb.GetOnlineFeaturesRequest(keys=keys, features=["units_on_hand"]))
        assert len(online.columns) == 1
    finally:
        channel.close()
        process.stop()
