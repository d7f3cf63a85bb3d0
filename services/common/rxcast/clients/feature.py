"""The feature service's client: ingest, online and historical features, actuals, daily totals."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import grpc
import numpy as np
import pandas as pd

from rxcast.clients.base import ServiceClient
from rxcast.clients.columns import PRESENT, DecodedColumns, decode_columns, decode_packed
from rxcast.clients.records import to_protos
from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.feature.v1 import feature_pb2_grpc
from rxcast.runtime.errors import FailedPrecondition
from rxcast.runtime.tls import Trust

DEFAULT_ADDRESS = "127.0.0.1:50051"
#: Entity-days (rows x horizon) per GetActuals call: the feature service's default --max-actuals-days.
ACTUALS_DAYS_PER_CALL = 2_000_000
#: The longest horizon the feature service accepts: sizes calls until the service's horizon is known.
MAX_HORIZON_DAYS = 366


@dataclass(frozen=True)
class HistoricalChunk:
    """One streamed chunk of point-in-time features."""

    row_offset: int
    total_rows: int
    store_ids: np.ndarray
    medication_ids: np.ndarray
    event_ms: np.ndarray
    columns: DecodedColumns

    def __len__(self) -> int:
        return len(self.event_ms)


@dataclass(frozen=True)
class Actuals:
    """Realized demand after each row: NaN where the horizon has not elapsed."""

    values: np.ndarray
    horizon_days: int


@dataclass(frozen=True)
class DailyTotals:
    """Sums and counts of a record field per business day and group: a frame
    with columns business_day (ISO date), one per group key, sum and count."""

    frame: pd.DataFrame
    #: The latest business day of any record ("" when the store holds none).
    latest_business_day: str


@dataclass(frozen=True)
class IngestOutcome:
    accepted: int
    replaced: int
    errors: list[pb.RecordError]


class FeatureClient(ServiceClient):
    """Calls to the feature service, each with a deadline; data as NumPy arrays."""

    SERVICE = pb.DESCRIPTOR.services_by_name["FeatureService"]
    STUB = feature_pb2_grpc.FeatureServiceStub
    NAME = "feature service"

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout: float = 30.0,
        stream_timeout: float = 3600.0,
        max_message_mb: int = 64,
        trust: Trust | None = None,
    ):
        super().__init__(address, timeout=timeout, max_message_mb=max_message_mb, trust=trust)
        self.stream_timeout = stream_timeout

    def list_features(self) -> pb.ListFeaturesResponse:
        try:
            return self.stub.ListFeatures(pb.ListFeaturesRequest())
        except grpc.RpcError as exc:
            raise self.failed(exc, "ListFeatures") from None

    def online(
        self,
        store_ids: Sequence[str] | np.ndarray,
        medication_ids: Sequence[str] | np.ndarray,
        features: Sequence[str],
        *,
        timeout: float | None = None,
    ) -> DecodedColumns:
        """The newest values of `features` for each entity (lenient: a feature
        the service does not return is missing on every row). Asked for packed;
        a service that answers in columns (before `packed`) is read as well."""
        request = pb.GetOnlineFeaturesRequest(
            keys=pb.EntityKeys(store_ids=_list(store_ids), medication_ids=_list(medication_ids)),
            features=list(features),
            packed=True,
        )
        try:
            answer = self.stub.GetOnlineFeatures(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise self.failed(exc, "GetOnlineFeatures") from None
        rows = len(request.keys.store_ids)
        if answer.HasField("packed"):
            return decode_packed(answer.packed, rows, features)
        return decode_columns(answer.columns, rows, features)

    def historical(
        self,
        features: Sequence[str],
        *,
        grid: tuple[str, str] | None = None,
        rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        chunk_rows: int = 0,
        strict: bool = False,
    ) -> Iterator[HistoricalChunk]:
        """Point-in-time features in chunks, for a daily grid (first, last
        business day: every known entity as of the end of each day) or for
        explicit rows (store ids, medication ids, instants in ms)."""
        request = pb.GetHistoricalFeaturesRequest(features=list(features), chunk_rows=chunk_rows)
        if grid is not None:
            request.daily_grid.CopyFrom(pb.DailyGrid(start_day=grid[0], end_day=grid[1]))
        elif rows is not None:
            request.rows.CopyFrom(_entity_rows(*rows))
        else:
            raise ValueError("historical: give a grid or rows")
        try:
            for chunk in self.stub.GetHistoricalFeatures(request, timeout=self.stream_timeout):
                event_ms = np.asarray(chunk.rows.event_times_unix_ms, dtype=np.int64)
                yield HistoricalChunk(
                    row_offset=chunk.row_offset,
                    total_rows=chunk.total_rows,
                    store_ids=np.asarray(chunk.rows.keys.store_ids, dtype=str),
                    medication_ids=np.asarray(chunk.rows.keys.medication_ids, dtype=str),
                    event_ms=event_ms,
                    columns=decode_columns(chunk.columns, len(event_ms), features, strict=strict),
                )
        except grpc.RpcError as exc:
            raise self.failed(exc, "GetHistoricalFeatures") from None

    def actuals(
        self,
        store_ids: np.ndarray,
        medication_ids: np.ndarray,
        event_ms: np.ndarray,
        horizon_days: int = 0,
        *,
        batch_rows: int = 200_000,
    ) -> Actuals:
        """Demand over the `horizon_days` business days after each row (0: the
        service's horizon), in calls of at most `batch_rows` rows and
        ACTUALS_DAYS_PER_CALL entity-days (rows x horizon; the service's default
        limit), the service's horizon learned from its first answer."""
        event_ms = np.asarray(event_ms, dtype=np.int64)
        values = np.full(event_ms.size, np.nan)
        horizon = horizon_days
        start = 0
        while start < event_ms.size:
            rows = min(batch_rows, max(1, ACTUALS_DAYS_PER_CALL // (horizon or MAX_HORIZON_DAYS)))
            stop = min(start + rows, event_ms.size)
            request = pb.GetActualsRequest(
                rows=_entity_rows(store_ids[start:stop], medication_ids[start:stop], event_ms[start:stop]),
                horizon_days=horizon_days,
            )
            try:
                answer = self.stub.GetActuals(request)
            except grpc.RpcError as exc:
                raise self.failed(exc, "GetActuals") from None
            if len(answer.values) != stop - start or len(answer.statuses) != stop - start:
                raise FailedPrecondition(
                    f"feature service: GetActuals answered {len(answer.values)} values for {stop - start} rows"
                )
            present = np.asarray(answer.statuses, dtype=np.int32) == PRESENT
            values[start:stop] = np.where(present, np.asarray(answer.values, dtype=np.float64), np.nan)
            horizon = answer.horizon_days or horizon
            start = stop
        return Actuals(values, horizon)

    def daily_totals(self, field: str, group_by: Sequence[str], business_days: Sequence[str]) -> DailyTotals:
        """Sum and count of a numeric record field per business day and group."""
        request = pb.GetDailyTotalsRequest(field=field, group_by=list(group_by), business_days=list(business_days))
        try:
            answer = self.stub.GetDailyTotals(request)
        except grpc.RpcError as exc:
            raise self.failed(exc, "GetDailyTotals") from None
        keys = list(group_by)
        if any(len(t.groups) != len(keys) for t in answer.totals):
            raise FailedPrecondition(f"feature service: GetDailyTotals answered groups not of {keys}")
        frame = pd.DataFrame(
            {
                "business_day": [t.business_day for t in answer.totals],
                **{key: [t.groups[i] for t in answer.totals] for i, key in enumerate(keys)},
                "sum": np.fromiter((t.sum for t in answer.totals), dtype=np.float64, count=len(answer.totals)),
                "count": np.fromiter((t.count for t in answer.totals), dtype=np.int64, count=len(answer.totals)),
            }
        )
        return DailyTotals(frame, answer.latest_business_day)

    def ingest(self, records: Sequence[pb.InventoryRecord], *, timeout: float | None = None) -> IngestOutcome:
        try:
            answer = self.stub.IngestRecords(pb.IngestRecordsRequest(records=records), timeout=timeout)
        except grpc.RpcError as exc:
            raise self.failed(exc, "IngestRecords") from None
        return IngestOutcome(answer.accepted_count, answer.replaced_count, list(answer.errors))

    def ingest_frame(
        self, frame: pd.DataFrame, *, batch_records: int = 50_000, timeout: float = 600.0, progress: bool = False
    ) -> IngestOutcome:
        """Send normalized records (rxcast.clients.records.normalize) in
        batches; errors carry their index in `frame`."""
        from tqdm import tqdm

        accepted = replaced = 0
        errors: list[pb.RecordError] = []
        with tqdm(total=len(frame), unit="rec", unit_scale=True, disable=not progress, file=sys.stderr) as bar:
            for offset in range(0, len(frame), batch_records):
                part = frame.iloc[offset : offset + batch_records]
                outcome = self.ingest(to_protos(part), timeout=timeout)
                accepted += outcome.accepted
                replaced += outcome.replaced
                errors.extend(
                    pb.RecordError(index=e.index + offset, field=e.field, message=e.message) for e in outcome.errors
                )
                bar.update(len(part))
        return IngestOutcome(accepted, replaced, errors)


def _list(values) -> list:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _entity_rows(store_ids, medication_ids, event_ms) -> pb.EntityRows:
    return pb.EntityRows(
        keys=pb.EntityKeys(store_ids=_list(store_ids), medication_ids=_list(medication_ids)),
        event_times_unix_ms=np.asarray(event_ms, dtype=np.int64).tolist(),
    )
