"""Training sets from the feature service, over gRPC.

Rows: `GetHistoricalFeatures` with a DailyGrid (every known entity on every
day of the window, each as of the end of its day), streamed in chunks.
Labels: `GetActuals` on exactly those rows, so the target is the feature
service's definition of demand, and a row whose horizon has not elapsed yet
has no label and is left out. Every value the service returns is checked
against its row's instant: a value stamped after it would leak the future
into training, and the load is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import numpy as np

from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.runtime.channels import as_domain_error, connect
from rxcast.runtime.errors import FailedPrecondition
from rxcast.runtime.logs import get_logger
from rxcast.trainer.dataset import FeatureSchema, LoadProgress, LoadRequest, TrainingSet
from rxcast.model.timebase import day_text, as_of_day

log = get_logger("rxcast.trainer.feature_source")

FEATURE_SERVICE = feature_pb2.DESCRIPTOR.services_by_name["FeatureService"]
PRESENT = feature_pb2.FEATURE_STATUS_PRESENT


def column_values(column: feature_pb2.FeatureColumn) -> np.ndarray:
    """A FeatureColumn as an array: float64 with NaN, or str with "" where not PRESENT."""
    present = np.asarray(column.statuses, dtype=np.int32) == PRESENT
    kind = column.WhichOneof("values")
    if kind == "string_values":
        values = np.asarray(column.string_values.values, dtype=str)
        return np.where(present, values, "") if values.size else np.full(present.shape, "", dtype=str)
    if kind == "double_values":
        values = np.asarray(column.double_values.values, dtype=np.float64)
    elif kind == "int64_values":
        values = np.asarray(column.int64_values.values, dtype=np.float64)
    elif kind == "bool_values":
        values = np.asarray(column.bool_values.values, dtype=np.float64)
    else:
        values = np.zeros(present.shape)
    if values.shape != present.shape:
        values = np.zeros(present.shape)
        present[:] = False
    return np.where(present, values, np.nan)


def leaked_values(column: feature_pb2.FeatureColumn, row_instants_ms: np.ndarray) -> int:
    """How many PRESENT values of a column are stamped after their row's instant."""
    present = np.asarray(column.statuses, dtype=np.int32) == PRESENT
    stamped = np.asarray(column.event_times_unix_ms, dtype=np.int64)
    if stamped.shape != present.shape:
        return 0 if not present.any() else int(present.sum())
    return int(np.count_nonzero(present & (stamped > row_instants_ms)))


def _unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))


class FeatureServiceSource:
    """The production training-set source."""

    def __init__(
        self,
        address: str,
        call_timeout: float = 30.0,
        load_timeout: float = 3600.0,
        chunk_rows: int = 50_000,
        actuals_batch_rows: int = 200_000,
        max_message_mb: int = 64,
    ):
        self.address = address
        self._channel = connect(address, [FEATURE_SERVICE], default_timeout=call_timeout, max_message_mb=max_message_mb)
        self._stub = feature_pb2_grpc.FeatureServiceStub(self._channel)
        self._load_timeout = load_timeout
        self._chunk_rows = chunk_rows
        self._actuals_batch = actuals_batch_rows

    def close(self) -> None:
        self._channel.close()

    def _listing(self) -> feature_pb2.ListFeaturesResponse:
        try:
            return self._stub.ListFeatures(feature_pb2.ListFeaturesRequest())
        except grpc.RpcError as exc:
            raise as_domain_error(exc, f"feature service {self.address} ListFeatures") from None

    def schema(self) -> FeatureSchema:
        return self._schema(self._listing())

    @staticmethod
    def _schema(listing: feature_pb2.ListFeaturesResponse) -> FeatureSchema:
        services = {s.name: s for s in listing.feature_services}
        default = services.get(listing.default_feature_service)
        if default is None or not default.features:
            raise FailedPrecondition(
                f"feature service: default feature service {listing.default_feature_service!r} names no features"
            )
        categorical = frozenset(f.name for f in listing.features if f.categorical)
        return FeatureSchema(tuple(default.features), categorical & set(default.features))

    def load(self, request: LoadRequest, progress: LoadProgress) -> TrainingSet:
        listing = self._listing()
        schema = self._schema(listing)
        served = {f.name for f in listing.features}
        # Features outside the store (a champion's retired feature) are left
        # out; whoever needs them finds them missing and says so.
        names = _unique([*schema.feature_names, *(n for n in request.extra_features if n in served)])
        keys, instants, columns = self._historical(request, names, progress)
        labels, horizon = self._actuals(keys, instants, request.horizon_days)
        labelled = ~np.isnan(labels)
        log.info(
            "training_rows_loaded",
            start_day=day_text(request.start_day),
            end_day=day_text(request.end_day),
            rows=int(instants.size),
            labelled=int(labelled.sum()),
            horizon_days=horizon,
        )
        data = TrainingSet(
            schema=schema,
            columns=columns,
            labels=labels,
            row_days=as_of_day(instants),
            store_ids=keys[0],
            medication_ids=keys[1],
            horizon_days=horizon,
        )
        return data.take(labelled)

    def _historical(
        self, request: LoadRequest, names: list[str], progress: LoadProgress
    ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
        grid = feature_pb2.DailyGrid(start_day=day_text(request.start_day), end_day=day_text(request.end_day))
        call = feature_pb2.GetHistoricalFeaturesRequest(daily_grid=grid, features=names, chunk_rows=self._chunk_rows)
        stores: list[np.ndarray] = []
        medications: list[np.ndarray] = []
        instants: list[np.ndarray] = []
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        loaded = 0
        leaks: dict[str, int] = {}
        try:
            for chunk in self._stub.GetHistoricalFeatures(call, timeout=self._load_timeout):
                rows = len(chunk.rows.event_times_unix_ms)
                chunk_instants = np.asarray(chunk.rows.event_times_unix_ms, dtype=np.int64)
                stores.append(np.asarray(chunk.rows.keys.store_ids, dtype=str))
                medications.append(np.asarray(chunk.rows.keys.medication_ids, dtype=str))
                instants.append(chunk_instants)
                by_name = {c.name: c for c in chunk.columns}
                for name in names:
                    column = by_name.get(name)
                    if column is None:
                        raise FailedPrecondition(f"feature service: historical chunk lacks feature {name!r}")
                    if len(column.statuses) != rows:
                        raise FailedPrecondition(
                            f"feature service: feature {name!r} has {len(column.statuses)} values for {rows} rows"
                        )
                    leaked = leaked_values(column, chunk_instants)
                    if leaked:
                        leaks[name] = leaks.get(name, 0) + leaked
                    parts[name].append(column_values(column))
                loaded += rows
                progress(loaded, int(chunk.total_rows))
        except grpc.RpcError as exc:
            raise as_domain_error(exc, f"feature service {self.address} GetHistoricalFeatures") from None
        if leaks:
            raise FailedPrecondition(
                f"feature service returned values stamped after their row's instant (point-in-time leak): {leaks}"
            )
        if not instants:
            return (np.zeros(0, dtype=str), np.zeros(0, dtype=str)), np.zeros(0, dtype=np.int64), {
                name: np.zeros(0) for name in names
            }
        columns = {name: np.concatenate(chunks) for name, chunks in parts.items()}
        return (np.concatenate(stores), np.concatenate(medications)), np.concatenate(instants), columns

    def _actuals(
        self, keys: tuple[np.ndarray, np.ndarray], instants: np.ndarray, horizon_days: int
    ) -> tuple[np.ndarray, int]:
        """Realized demand after each row (NaN where the horizon has not elapsed)."""
        labels = np.full(instants.size, np.nan)
        horizon = horizon_days
        for start in range(0, instants.size, self._actuals_batch):
            stop = min(start + self._actuals_batch, instants.size)
            rows = feature_pb2.EntityRows(
                keys=feature_pb2.EntityKeys(
                    store_ids=keys[0][start:stop].tolist(), medication_ids=keys[1][start:stop].tolist()
                ),
                event_times_unix_ms=instants[start:stop].tolist(),
            )
            try:
                answer = self._stub.GetActuals(feature_pb2.GetActualsRequest(rows=rows, horizon_days=horizon_days))
            except grpc.RpcError as exc:
                raise as_domain_error(exc, f"feature service {self.address} GetActuals") from None
            if len(answer.values) != stop - start or len(answer.statuses) != stop - start:
                raise FailedPrecondition(
                    f"feature service: GetActuals answered {len(answer.values)} values for {stop - start} rows"
                )
            present = np.asarray(answer.statuses, dtype=np.int32) == PRESENT
            labels[start:stop] = np.where(present, np.asarray(answer.values, dtype=np.float64), np.nan)
            horizon = answer.horizon_days
        if horizon <= 0:
            horizon = horizon_days
        return labels, horizon
