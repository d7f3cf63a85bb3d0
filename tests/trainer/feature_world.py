"""A real feature service seeded with a simulated world, for the trainer's
integration tests and benchmark."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from rxcast.clients import FeatureClient
from rxcast.clients.records import normalize
from rxcast.sim import Scenario, World, simulate
from rxcast.suite.launcher import ServiceProcess


def ingest(address: str, records: pd.DataFrame, batch: int = 100_000) -> int:
    """Send simulator records to the feature service; returns how many it accepted."""
    with FeatureClient(address, timeout=600.0) as client:
        outcome = client.ingest_frame(normalize(records), batch_records=batch)
    if outcome.errors:
        raise RuntimeError(f"feature service rejected {len(outcome.errors)} records, e.g. {outcome.errors[:3]}")
    return outcome.accepted


def start_feature_service(run_dir: Path, data_dir: Path, *args: str) -> ServiceProcess:
    os.environ.setdefault("FEAST_USAGE", "False")
    process = ServiceProcess("feature", run_dir, ["--data-dir", str(data_dir), *args])
    return process.start().wait_ready(180)


def small_world(seed: int = 11, n_days: int = 110) -> World:
    """A few stores and medications over a few months: seconds to train on."""
    return simulate(Scenario(n_stores=5, n_medications=12, n_days=n_days, seed=seed, start_day="2025-01-01"))
