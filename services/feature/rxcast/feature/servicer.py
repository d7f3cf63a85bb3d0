"""rxcast.feature.v1.FeatureService over InventoryFeatureStore: protos in, columns out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from google.protobuf import duration_pb2

from rxcast.clients.columns import encode_column, encode_packed
from rxcast.feature.online import Column
from rxcast.feature.records import NUMBERS
from rxcast.feature.store import InventoryFeatureStore
from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.feature.v1 import feature_pb2_grpc
from rxcast.model import timebase
from rxcast.runtime import auth, timestamps
from rxcast.runtime.errors import InvalidArgument

_VALUE_TYPES = {
    "DOUBLE": pb.VALUE_TYPE_DOUBLE,
    "INT64": pb.VALUE_TYPE_INT64,
    "STRING": pb.VALUE_TYPE_STRING,
    "BOOL": pb.VALUE_TYPE_BOOL,
}


def record_columns(records) -> tuple[dict, dict]:
    """InventoryRecord messages → (columns for RecordBatch.from_columns, the
    numbers set explicitly to NaN, which validation rejects)."""
    nan = math.nan
    columns = {
        "store_id": [r.store_id for r in records],
        "medication_id": [r.medication_id for r in records],
        "business_day": [r.business_day for r in records],
        "on_promotion": [r.on_promotion for r in records],
        "stock_out": [r.stock_out for r in records],
        "medication_category": [r.medication_category for r in records],
        "store_region": [r.store_region for r in records],
    }
    nan_given = {}
    for name in NUMBERS:
        has = np.fromiter((r.HasField(name) for r in records), dtype=bool, count=len(records))
        values = np.fromiter((getattr(r, name) for r in records), dtype=np.float64, count=len(records))
        nan_given[name] = has & np.isnan(values)
        values[~has] = nan
        columns[name] = values
    return columns, nan_given


def feature_column(column: Column) -> pb.FeatureColumn:
    return encode_column(column.name, column.value_type, column.values, column.statuses, column.event_ms)


#: The role each RPC needs (rxcast.runtime.auth).
ROLES = auth.RoleTable(
    pb.DESCRIPTOR.services_by_name["FeatureService"].full_name,
    {
        "IngestRecords": auth.INGEST,
        "GetOnlineFeatures": auth.READ,
        "GetHistoricalFeatures": auth.READ,
        "GetActuals": auth.READ,
        "GetDailyTotals": auth.READ,
        "ListFeatures": auth.READ,
        "Materialize": auth.OPERATE,
    },
)


def online_columns(columns: list[Column]) -> list[pb.FeatureColumn]:
    """Columns for the wire; the features of one view share their event times
    (one array), which are converted once."""
    lists: dict[int, list[int]] = {}
    out = []
    for column in columns:
        times = lists.get(id(column.event_ms))
        if times is None:
            times = lists[id(column.event_ms)] = column.event_ms.tolist()
        out.append(encode_column(column.name, column.value_type, column.values, column.statuses, times))
    return out


class FeatureServicer(feature_pb2_grpc.FeatureServiceServicer):
    def __init__(self, store: InventoryFeatureStore):
        self.store = store

    def IngestRecords(self, request: pb.IngestRecordsRequest, context) -> pb.IngestRecordsResponse:
        result = self.store.ingest(*record_columns(request.records))
        return pb.IngestRecordsResponse(
            accepted_count=result.accepted,
            replaced_count=result.replaced,
            errors=[pb.RecordError(index=e.index, field=e.field, message=e.message) for e in result.errors],
        )

    def GetOnlineFeatures(self, request: pb.GetOnlineFeaturesRequest, context) -> pb.GetOnlineFeaturesResponse:
        keys = request.keys
        columns = self.store.online(keys.store_ids, keys.medication_ids, request.features, request.feature_service)
        read_time = timestamps.from_datetime(datetime.now(UTC))
        if request.packed:
            return pb.GetOnlineFeaturesResponse(packed=encode_packed(columns), read_time=read_time)
        return pb.GetOnlineFeaturesResponse(columns=online_columns(columns), read_time=read_time)

    def GetHistoricalFeatures(self, request: pb.GetHistoricalFeaturesRequest, context):
        which = request.WhichOneof("entities")
        if which == "daily_grid":
            stores, medications, event_ms = self.store.daily_grid(
                request.daily_grid.start_day, request.daily_grid.end_day
            )
        elif which == "rows":
            rows = request.rows
            stores, medications, event_ms = rows.keys.store_ids, rows.keys.medication_ids, rows.event_times_unix_ms
        else:
            raise InvalidArgument("entities: give rows or daily_grid")
        chunks = self.store.historical(
            stores, medications, event_ms, request.features, request.feature_service, request.chunk_rows
        )
        for chunk in chunks:
            if not context.is_active():
                return
            yield pb.GetHistoricalFeaturesResponse(
                row_offset=chunk.row_offset,
                total_rows=chunk.total_rows,
                rows=pb.EntityRows(
                    keys=pb.EntityKeys(
                        store_ids=chunk.store_ids.tolist(), medication_ids=chunk.medication_ids.tolist()
                    ),
                    event_times_unix_ms=chunk.event_ms.tolist(),
                ),
                columns=[feature_column(c) for c in chunk.columns],
            )

    def GetActuals(self, request: pb.GetActualsRequest, context) -> pb.GetActualsResponse:
        rows = request.rows
        actuals = self.store.actuals(
            rows.keys.store_ids, rows.keys.medication_ids, rows.event_times_unix_ms, request.horizon_days
        )
        return pb.GetActualsResponse(
            values=actuals.values.tolist(), statuses=actuals.statuses.tolist(), horizon_days=actuals.horizon_days
        )

    def GetDailyTotals(self, request: pb.GetDailyTotalsRequest, context) -> pb.GetDailyTotalsResponse:
        found = self.store.daily_totals(request.field, request.group_by, request.business_days)
        day_texts = {int(d): timebase.day_text(d) for d in np.unique(found.days).tolist()}
        return pb.GetDailyTotalsResponse(
            totals=[
                pb.DailyTotal(business_day=day_texts[day], groups=groups, sum=total, count=count)
                for day, groups, total, count in zip(
                    found.days.tolist(), found.groups, found.sums.tolist(), found.counts.tolist(), strict=True
                )
            ],
            latest_business_day="" if found.latest_day is None else timebase.day_text(found.latest_day),
        )

    def ListFeatures(self, request: pb.ListFeaturesRequest, context) -> pb.ListFeaturesResponse:
        schema = self.store.schema()
        features = []
        for f in schema.features:
            ttl = duration_pb2.Duration()
            ttl.FromTimedelta(timedelta(seconds=f.ttl_seconds))
            features.append(
                pb.FeatureSpec(
                    name=f.name,
                    feature_view=f.feature_view,
                    value_type=_VALUE_TYPES.get(f.value_type, 0),
                    categorical=f.categorical,
                    ttl=ttl,
                    description=f.description,
                )
            )
        return pb.ListFeaturesResponse(
            features=features,
            feature_services=[
                pb.FeatureServiceSpec(name=name, features=list(names), description=description)
                for name, names, description in schema.feature_services
            ],
            entities=[pb.EntitySpec(name=n, join_key=k, description=d) for n, k, d in schema.entities],
            default_feature_service=schema.default_feature_service,
            horizon_days=self.store.config.horizon_days,
            latest_business_day=""
            if self.store.history.max_day is None
            else timebase.day_text(self.store.history.max_day),
            registry_updated_time=None if schema.updated is None else timestamps.from_datetime(schema.updated),
        )

    def Materialize(self, request: pb.MaterializeRequest, context) -> pb.MaterializeResponse:
        start = timestamps.optional_datetime(request, "start_time")
        end = timestamps.optional_datetime(request, "end_time")
        done = self.store.materialize(start, end, list(request.feature_views))
        return pb.MaterializeResponse(
            feature_views=done.views,
            start_time=None if done.start is None else timestamps.from_datetime(done.start),
            end_time=None if done.end is None else timestamps.from_datetime(done.end),
            rows_written=done.rows_written,
        )
