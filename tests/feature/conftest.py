"""Fixtures of the feature tests: a real feature service process on loopback."""

from __future__ import annotations

import os

import pytest

from rxcast.clients import FeatureClient
from rxcast.feature.v1 import feature_pb2
from rxcast.suite.launcher import ServiceProcess

os.environ.setdefault("FEAST_USAGE", "False")
FEATURE_SERVICE = feature_pb2.DESCRIPTOR.services_by_name["FeatureService"]


def start_feature(run_dir, data_dir, *args: str, name: str = "feature") -> ServiceProcess:
    process = ServiceProcess("feature", run_dir, ["--data-dir", str(data_dir), *args], name=name)
    return process.start().wait_ready(120)


def stub_for(process: ServiceProcess, timeout: float = 30.0):
    """The shared client's channel and stub, for tests that send raw messages."""
    client = FeatureClient(process.address, timeout=timeout)
    return client.channel, client.stub


@pytest.fixture(scope="module")
def feature_process(tmp_path_factory):
    root = tmp_path_factory.mktemp("feature")
    process = start_feature(
        root / "run", root / "data", "--registry-refresh-seconds", "0.3", "--max-batch-records", "1000"
    )
    process.data_dir = root / "data"
    yield process
    process.stop()


@pytest.fixture(scope="module")
def stub(feature_process):
    channel, stub = stub_for(feature_process)
    yield stub
    channel.close()
