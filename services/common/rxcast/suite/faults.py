"""SIGKILL a service under load, restart it on the same port and data, and
count what its callers saw and what it kept.

A load thread calls one RPC over and over through a channel that reconnects
quickly. Each acknowledged write is remembered; after the restart every one
must still be there (`lost` counts the ones that are not). Callers must see
UNAVAILABLE while the process is down (never INTERNAL or UNKNOWN) and OK
again after it is back.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

import grpc
import numpy as np

from rxcast.drift.v1 import drift_pb2, drift_pb2_grpc
from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.model.profile import build_reference_profile
from rxcast.runtime import channels, tls
from rxcast.suite.launcher import ServiceProcess

#: Reconnect quickly: the default backoff would make recovery look slower than the service is.
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 500)]


@dataclass
class FaultReport:
    """One SIGKILL-and-restart of one process."""

    name: str
    calls: Counter = field(default_factory=Counter)
    acknowledged: int = 0
    lost: int = 0
    down_seconds: float = 0.0
    recovered: bool = False

    @property
    def unexpected(self) -> int:
        return sum(n for code, n in self.calls.items() if code not in ("OK", "UNAVAILABLE"))

    @property
    def survived(self) -> bool:
        return self.recovered and self.lost == 0 and self.unexpected == 0 and self.calls["UNAVAILABLE"] > 0


def restart(process: ServiceProcess, timeout: float = 120.0) -> ServiceProcess:
    """SIGKILL `process` and start the same service on the same port and arguments."""
    process.kill()
    again = ServiceProcess(
        process.service, process.run_dir, [*process.args, "--port", str(process.port)], process.env, process.name
    )
    return again.start().wait_ready(timeout)


class Load:
    """Calls `call(i)` (i = 0, 1, ...) until stopped; counts status codes and acknowledged results."""

    def __init__(self, call: Callable[[int], object]):
        self._call = call
        self.codes: Counter = Counter()
        self.acknowledged: list = []
        self.last_ok = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                result = self._call(i)
            except grpc.RpcError as exc:
                self.codes[exc.code().name] += 1
                time.sleep(0.05)
            else:
                self.codes["OK"] += 1
                self.acknowledged.append(result)
                self.last_ok = time.monotonic()
            i += 1

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)

    def wait_ok_after(self, instant: float, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.last_ok > instant:
                return True
            time.sleep(0.05)
        return False


def kill_under_load(
    process: ServiceProcess, call: Callable[[int], object], warm_seconds: float = 1.0, recover_seconds: float = 60.0
) -> tuple[ServiceProcess, FaultReport, list]:
    """Run `call` in a loop, SIGKILL `process` meanwhile, restart it; returns the
    restarted process, the report (acknowledged and codes; `lost` is for the
    caller to fill in) and the acknowledged results."""
    report = FaultReport(process.name)
    with Load(call) as load:
        time.sleep(warm_seconds)
        killed = time.monotonic()
        process = restart(process)
        report.recovered = load.wait_ok_after(time.monotonic(), recover_seconds)
        report.down_seconds = time.monotonic() - killed
        time.sleep(0.2)
    report.calls = load.codes
    report.acknowledged = len(load.acknowledged)
    return process, report, load.acknowledged


# -- the probes, one per kind of process ---------------------------------------

_DAY = "2025-03-01"
_DAY_END_MS = (20_148 + 1) * 86_400_000  # 2025-03-01 is epoch day 20148; records stand at its end
_DRIFT_MS = 20_000 * 86_400_000 + 1


def feature_probe(process: ServiceProcess) -> tuple[ServiceProcess, FaultReport]:
    """IngestRecords of one new record per call; every acknowledged one must be readable after the restart."""

    def record(i: int):
        return feature_pb2.InventoryRecord(
            store_id=f"fault{i}", medication_id="m0", business_day=_DAY, units_on_hand=float(i),
            units_dispensed=1.0, store_region="north", medication_category="c",
        )  # fmt: skip

    with channels.with_options(process.address, CHANNEL_OPTIONS, default_timeout=10.0) as channel:
        stub = feature_pb2_grpc.FeatureServiceStub(channel)

        def ingest(i: int) -> int:
            answer = stub.IngestRecords(feature_pb2.IngestRecordsRequest(records=[record(i)]), timeout=10)
            assert answer.accepted_count == 1, answer
            return i

        process, report, acked = kill_under_load(process, ingest, warm_seconds=3.0)
        rows = feature_pb2.EntityRows(
            keys=feature_pb2.EntityKeys(store_ids=[f"fault{i}" for i in acked], medication_ids=["m0"] * len(acked)),
            event_times_unix_ms=[_DAY_END_MS] * len(acked),
        )
        request = feature_pb2.GetHistoricalFeaturesRequest(rows=rows, features=["units_on_hand"])
        found = 0
        for chunk in stub.GetHistoricalFeatures(request, timeout=60):
            (column,) = chunk.columns
            for offset, (status, value) in enumerate(zip(column.statuses, column.double_values.values, strict=True)):
                found += status == feature_pb2.FEATURE_STATUS_PRESENT and value == acked[chunk.row_offset + offset]
    report.lost = len(acked) - found
    return process, report


def _as_trainer() -> tls.Trust:
    """The trainer's credentials from the same directory as this process's (or plaintext, if it is)."""
    return tls.ClientSettings(identity="trainer").trust()


def drift_probe(process: ServiceProcess) -> tuple[ServiceProcess, FaultReport]:
    """LogPredictions of 20 new rows per call; every acknowledged row must match its actual after the restart."""
    rows = 20
    rng = np.random.default_rng(3)
    profile = build_reference_profile({"x": rng.normal(size=500)}, [], rng.normal(10, 1, 500), rng.normal(size=500))

    def keys(i: int):
        return drift_pb2.EntityKeys(store_ids=[f"fault{i}-{j}" for j in range(rows)], medication_ids=["m0"] * rows)

    version = 900_001
    # A reference is the trainer's to register (its `publish` role): the probe registers as the trainer.
    with channels.with_options(process.address, CHANNEL_OPTIONS, trust=_as_trainer()) as channel:
        drift_pb2_grpc.DriftServiceStub(channel).RegisterReference(
            drift_pb2.RegisterReferenceRequest(model_version=version, profile_json=json.dumps(profile.to_dict())),
            timeout=30,
        )
    with channels.with_options(process.address, CHANNEL_OPTIONS, default_timeout=10.0) as channel:
        stub = drift_pb2_grpc.DriftServiceStub(channel)

        def log(i: int) -> int:
            request = drift_pb2.LogPredictionsRequest(
                model_version=version, keys=keys(i), event_times_unix_ms=[_DRIFT_MS] * rows,
                features=[drift_pb2.FeatureValues(name="x", numeric=drift_pb2.DoubleList(values=[0.0] * rows))],
                predictions=[10.0] * rows, source="online",
            )  # fmt: skip
            assert stub.LogPredictions(iter([request]), timeout=10).accepted_rows == rows
            return i

        process, report, acked = kill_under_load(process, log)
        matched = 0
        for i in acked:
            actuals = drift_pb2.LogActualsRequest(
                keys=keys(i), event_times_unix_ms=[_DRIFT_MS] * rows, actuals=[10.0] * rows
            )
            matched += stub.LogActuals(iter([actuals]), timeout=30).matched_rows
    report.acknowledged *= rows
    report.lost = report.acknowledged - matched
    return process, report


def read_probe(process: ServiceProcess, method: str, request: bytes = b"") -> tuple[ServiceProcess, FaultReport]:
    """A read RPC (full name) in a loop: UNAVAILABLE while down, OK once back; nothing to lose."""
    with channels.with_options(process.address, CHANNEL_OPTIONS, default_timeout=10.0) as channel:
        call = channel.unary_unary(method)

        def read(i: int) -> None:
            try:
                call(request, timeout=10)
            except grpc.RpcError as exc:
                # A deliberate answer of a serving process (no model yet, no alias yet) is a recovery too.
                if exc.code() not in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                    raise

        process, report, _ = kill_under_load(process, read)
    return process, report
