"""A real feature service seeded with a simulated world, for the trainer's
integration tests and benchmark."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.runtime.channels import connect
from rxcast.sim import Scenario, World, simulate
from rxcast.suite.launcher import ServiceProcess

FEATURE_SERVICE = feature_pb2.DESCRIPTOR.services_by_name["FeatureService"]
NUMBERS = ("units_dispensed", "units_received", "units_on_hand", "prescriptions_written", "unit_price")
FLAGS = ("on_promotion", "stock_out")
TEXTS = ("store_id", "medication_id", "medication_category", "store_region")


def record_protos(records: pd.DataFrame) -> Iterator[feature_pb2.InventoryRecord]:
    """The simulator's records as InventoryRecord messages (missing numbers left unset)."""
    texts = {name: records[name].astype(str).tolist() for name in TEXTS}
    days = records["business_day"].dt.strftime("%Y-%m-%d").tolist()
    numbers = {name: records[name].to_numpy(dtype=np.float64) for name in NUMBERS}
    present = {name: ~np.isnan(values) for name, values in numbers.items()}
    lists = {name: values.tolist() for name, values in numbers.items()}
    flags = {name: records[name].to_numpy(dtype=bool).tolist() for name in FLAGS}
    for i in range(len(records)):
        fields = {name: texts[name][i] for name in TEXTS}
        fields.update({name: lists[name][i] for name in NUMBERS if present[name][i]})
        fields.update({name: flags[name][i] for name in FLAGS})
        yield feature_pb2.InventoryRecord(business_day=days[i], **fields)


def ingest(address: str, records: pd.DataFrame, batch: int = 20_000) -> int:
    """Send records to the feature service in batches; returns how many it accepted."""
    channel = connect(address, [FEATURE_SERVICE], default_timeout=300.0)
    stub = feature_pb2_grpc.FeatureServiceStub(channel)
    accepted = 0
    try:
        protos = list(record_protos(records))
        for start in range(0, len(protos), batch):
            answer = stub.IngestRecords(feature_pb2.IngestRecordsRequest(records=protos[start : start + batch]))
            if answer.errors:
                raise RuntimeError(f"feature service rejected records: {list(answer.errors)[:3]}")
            accepted += answer.accepted_count
    finally:
        channel.close()
    return accepted


def start_feature_service(run_dir: Path, data_dir: Path, *args: str) -> ServiceProcess:
    os.environ.setdefault("FEAST_USAGE", "False")
    process = ServiceProcess("feature", run_dir, ["--data-dir", str(data_dir), *args])
    return process.start().wait_ready(180)


def small_world(seed: int = 11, n_days: int = 110) -> World:
    """A few stores and medications over a few months: seconds to train on."""
    return simulate(Scenario(n_stores=5, n_medications=12, n_days=n_days, seed=seed, start_day="2025-01-01"))
