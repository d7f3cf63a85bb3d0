"""In-process servers speaking the real feature, trainer and drift contracts,
backed by in-memory data the test controls (what the predictor depends on,
without Feast or training: the predictor's tests are about the predictor).

Each runs a real grpc server on a loopback port; the predictor under test is
a real process that reaches them over gRPC, with TLS (they present the test
session's certificate and do not check tokens: they stand in for data, not for auth).
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from rxcast.drift.v1 import drift_pb2, drift_pb2_grpc
from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.runtime import tls
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc
from tests.predictor.models import CATEGORY_OF, FEATURES, REGION_OF, TrainedModel

PRESENT = feature_pb2.FEATURE_STATUS_PRESENT
NOT_FOUND = feature_pb2.FEATURE_STATUS_NOT_FOUND
NULL_VALUE = feature_pb2.FEATURE_STATUS_NULL_VALUE
CATEGORICAL = {"medication_category", "store_region"}


def serve(add, servicer) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    add(servicer, server)
    port = tls.add_port(server, "127.0.0.1:0", tls.client_trust())
    server.start()
    return server, f"127.0.0.1:{port}"


@dataclass
class Entity:
    values: dict[str, object]
    event_ms: int


class FeatureStandIn(feature_pb2_grpc.FeatureServiceServicer):
    """Feature values per entity; `down` answers UNAVAILABLE, `delay` stalls every call."""

    def __init__(self):
        self.entities: dict[tuple[str, str], Entity] = {}
        self.down = False
        self.delay = 0.0
        self.online_calls = 0

    def put(self, store: str, medication: str, event_ms: int | None = None, **overrides) -> None:
        values: dict[str, object] = {
            "dispensed_sum_7d": 10.0,
            "dispensed_sum_28d": 40.0,
            "unit_price": 5.0,
            "on_promotion": 0.0,
            "medication_category": CATEGORY_OF.get(medication, "antiviral"),
            "store_region": REGION_OF.get(store, "north"),
        }
        values.update(overrides)
        stamp = event_ms if event_ms is not None else int(time.time() * 1000) - 3_600_000
        self.entities[(store, medication)] = Entity(values, stamp)

    def _gate(self, context):
        if self.delay:
            time.sleep(self.delay)
        if self.down:
            context.abort(grpc.StatusCode.UNAVAILABLE, "feature store is down")

    def _columns(self, keys: list[tuple[str, str]], names) -> list[feature_pb2.FeatureColumn]:
        columns = []
        for name in names:
            statuses, times, values = [], [], []
            for key in keys:
                entity = self.entities.get(key)
                value = None if entity is None else entity.values.get(name)
                if entity is None:
                    statuses.append(NOT_FOUND)
                elif value is None:
                    statuses.append(NULL_VALUE)
                else:
                    statuses.append(PRESENT)
                times.append(entity.event_ms if entity is not None else 0)
                values.append(value)
            column = feature_pb2.FeatureColumn(name=name, statuses=statuses, event_times_unix_ms=times)
            if name in CATEGORICAL:
                column.string_values.values.extend("" if v is None else str(v) for v in values)
            else:
                column.double_values.values.extend(0.0 if v is None else float(v) for v in values)
            columns.append(column)
        return columns[::-1]  # the service orders columns as it likes

    def GetOnlineFeatures(self, request, context):
        self._gate(context)
        self.online_calls += 1
        unknown = set(request.features) - set(FEATURES)
        if unknown:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"features: unknown {sorted(unknown)}")
        keys = list(zip(request.keys.store_ids, request.keys.medication_ids))
        return feature_pb2.GetOnlineFeaturesResponse(columns=self._columns(keys, request.features))

    def GetHistoricalFeatures(self, request, context):
        self._gate(context)
        keys = sorted(self.entities)
        chunk = request.chunk_rows or 1000
        day_end = (int(time.mktime(time.strptime(request.daily_grid.end_day, "%Y-%m-%d"))) // 86400 + 1) * 86_400_000
        for start in range(0, len(keys), chunk):
            part = keys[start : start + chunk]
            yield feature_pb2.GetHistoricalFeaturesResponse(
                row_offset=start,
                total_rows=len(keys),
                rows=feature_pb2.EntityRows(
                    keys=feature_pb2.EntityKeys(store_ids=[k[0] for k in part], medication_ids=[k[1] for k in part]),
                    event_times_unix_ms=[day_end] * len(part),
                ),
                columns=self._columns(part, request.features),
            )


class TrainerStandIn(trainer_pb2_grpc.TrainerServiceServicer):
    """A registry of trained versions behind one alias; `corrupt` versions send altered bytes."""

    def __init__(self):
        self.versions: dict[int, TrainedModel] = {}
        self.alias_version = 0
        self.corrupt: set[int] = set()
        self.down = False
        self.downloads: list[int] = []
        self._lock = threading.Lock()

    def publish(self, model: TrainedModel) -> None:
        with self._lock:
            self.versions[model.version] = model
            self.alias_version = model.version

    def GetLatestVersion(self, request, context):
        if self.down:
            context.abort(grpc.StatusCode.UNAVAILABLE, "trainer is down")
        with self._lock:
            version = self.alias_version
            sha = self.versions[version].sha256 if version else ""
        return trainer_pb2.GetLatestVersionResponse(alias=request.alias or "champion", version=version, sha256=sha)

    def DownloadModel(self, request, context):
        model = self.versions.get(request.version)
        if model is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"version {request.version} does not exist")
        self.downloads.append(request.version)
        data = model.model_text
        if request.version in self.corrupt:
            data = data[:-10] + b"0123456789"
        yield trainer_pb2.DownloadModelResponse(
            header=trainer_pb2.ModelFileHeader(
                version=model.version, sha256=model.sha256, size_bytes=len(data), manifest_json=model.manifest.to_json()
            )
        )
        step = request.chunk_bytes or 8192
        for start in range(0, len(data), step):
            yield trainer_pb2.DownloadModelResponse(chunk=data[start : start + step])


class DriftStandIn(drift_pb2_grpc.DriftServiceServicer):
    """Collects what LogPredictions receives."""

    def __init__(self):
        self.requests: list[drift_pb2.LogPredictionsRequest] = []
        self._lock = threading.Lock()
        self.received = threading.Condition(self._lock)
        self.open = threading.Event()  # cleared: every LogPredictions call waits until it is set
        self.open.set()

    def LogPredictions(self, request_iterator, context):
        self.open.wait(30)
        rows = 0
        for request in request_iterator:
            with self._lock:
                self.requests.append(request)
                self.received.notify_all()
            rows += len(request.predictions)
        return drift_pb2.LogPredictionsResponse(accepted_rows=rows)

    def rows(self) -> int:
        with self._lock:
            return sum(len(r.predictions) for r in self.requests)

    def wait_rows(self, rows: int, timeout: float) -> bool:
        with self._lock:
            return self.received.wait_for(lambda: sum(len(r.predictions) for r in self.requests) >= rows, timeout)


@dataclass
class StandIns:
    feature: FeatureStandIn = field(default_factory=FeatureStandIn)
    trainer: TrainerStandIn = field(default_factory=TrainerStandIn)
    drift: DriftStandIn = field(default_factory=DriftStandIn)
    addresses: dict[str, str] = field(default_factory=dict)
    servers: list[grpc.Server] = field(default_factory=list)

    def start(self) -> StandIns:
        for name, add, servicer in (
            ("feature", feature_pb2_grpc.add_FeatureServiceServicer_to_server, self.feature),
            ("trainer", trainer_pb2_grpc.add_TrainerServiceServicer_to_server, self.trainer),
            ("drift", drift_pb2_grpc.add_DriftServiceServicer_to_server, self.drift),
        ):
            server, address = serve(add, servicer)
            self.servers.append(server)
            self.addresses[name] = address
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop(0)


def wait_for(predicate, timeout: float, interval: float = 0.05):
    """Poll `predicate` until it returns a truthy value or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
