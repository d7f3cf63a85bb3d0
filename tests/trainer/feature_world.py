"""A real feature service seeded with a simulated world, for the trainer's
integration tests and benchmark."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from rxcast.feature.seed import normalize
from rxcast.feature.seed import seed as seed_records
from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.runtime.channels import connect
from rxcast.sim import Scenario, World, simulate
from rxcast.suite.launcher import ServiceProcess

FEATURE_SERVICE = feature_pb2.DESCRIPTOR.services_by_name["FeatureService"]


def ingest(address: str, records: pd.DataFrame, batch: int = 100_000) -> int:
    """Send simulator records to the feature service; returns how many it accepted."""
    with connect(address, [FEATURE_SERVICE], default_timeout=600.0) as channel:
        stub = feature_pb2_grpc.FeatureServiceStub(channel)
        accepted, _, errors = seed_records(stub, normalize(records), batch, progress=False)
    if errors:
        raise RuntimeError(f"feature service rejected {len(errors)} records, e.g. {list(errors)[:3]}")
    return accepted


def start_feature_service(run_dir: Path, data_dir: Path, *args: str) -> ServiceProcess:
    os.environ.setdefault("FEAST_USAGE", "False")
    process = ServiceProcess("feature", run_dir, ["--data-dir", str(data_dir), *args])
    return process.start().wait_ready(180)


def small_world(seed: int = 11, n_days: int = 110) -> World:
    """A few stores and medications over a few months: seconds to train on."""
    return simulate(Scenario(n_stores=5, n_medications=12, n_days=n_days, seed=seed, start_day="2025-01-01"))
