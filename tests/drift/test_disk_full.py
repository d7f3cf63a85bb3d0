"""A full disk under the drift service's data directory, through the shared
runtime's guard: a state-writing RPC answers RESOURCE_EXHAUSTED, health turns
NOT_SERVING overall and for DriftService, and once the space is freed the
service reports SERVING again and the same write succeeds. The data directory
is a 4 MiB tmpfs in the process's own mount namespace (tests.tiny_disk)."""

from __future__ import annotations

import json
import time

import grpc
import numpy as np
import pytest

from rxcast.clients import DriftClient
from rxcast.drift.v1 import drift_pb2
from rxcast.model.profile import build_reference_profile
from tests.tiny_disk import TinyDisk, needs_namespaces

pytestmark = needs_namespaces

DRIFT_SERVICE = drift_pb2.DESCRIPTOR.services_by_name["DriftService"].full_name


@pytest.fixture
def profile_json() -> str:
    rng = np.random.default_rng(5)
    features = {"demand_7d": rng.poisson(6.0, 2000).astype(float), "unit_price": rng.lognormal(1.0, 0.3, 2000)}
    predictions = features["demand_7d"] * 0.9 + 0.5
    return json.dumps(build_reference_profile(features, [], predictions, rng.normal(0.0, 2.0, 500)).to_dict())


def _health_becomes(process: TinyDisk, status: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while (seen := process.health()) != status and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def test_a_full_disk_is_not_serving_until_there_is_room_again(tmp_path, profile_json):
    process = TinyDisk("drift", tmp_path / "run", tmp_path / "data", 4, "--min-free-mb", "1").start()
    process.wait_ready(120)
    client = DriftClient(process.address, timeout=30.0)
    register = drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=profile_json)
    try:
        assert process.health() == "SERVING"
        process.fill()
        with pytest.raises(grpc.RpcError) as refused:
            client.stub.RegisterReference(register)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value.details()
        assert "disk" in refused.value.details()
        assert process.health() == "NOT_SERVING"
        assert process.health(DRIFT_SERVICE) == "NOT_SERVING"

        process.free()
        assert _health_becomes(process, "SERVING") == "SERVING"
        assert process.health(DRIFT_SERVICE) == "SERVING"
        assert client.stub.RegisterReference(register).reference.model_version == 1
    finally:
        client.close()
        process.stop()
