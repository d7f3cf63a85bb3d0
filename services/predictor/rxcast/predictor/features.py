"""Feature values from the feature service, as FeatureFrames.

Columns are read by name (the service may order them as it likes); a value
whose status is not PRESENT is blanked (NaN or ""), and each row's newest
event time among its present values is kept for the feature age.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.predictor.frame import EntityBatch, FeatureFrame
from rxcast.runtime.channels import as_domain_error, connect
from rxcast.runtime.errors import FailedPrecondition

PRESENT = feature_pb2.FEATURE_STATUS_PRESENT
FEATURE_SERVICE = feature_pb2.DESCRIPTOR.services_by_name["FeatureService"]


def _numbers(column: feature_pb2.FeatureColumn):
    kind = column.WhichOneof("values")
    if kind == "double_values":
        return column.double_values.values
    if kind == "int64_values":
        return column.int64_values.values
    if kind == "bool_values":
        return column.bool_values.values
    return ()


def _block(containers, dtype, shape: tuple[int, int]) -> np.ndarray:
    """Repeated fields of equal length as one 2-D array (np.fromiter walks
    them in C; np.array would treat each container as a generic sequence)."""
    return np.fromiter(itertools.chain.from_iterable(containers), dtype=dtype, count=shape[0] * shape[1]).reshape(shape)


def frame_from_columns(
    keys: EntityBatch, columns: Sequence[feature_pb2.FeatureColumn], wanted: Sequence[str]
) -> FeatureFrame:
    """A FeatureFrame for `keys` from the service's columns; `wanted` features
    the service did not return (or returned malformed) count as missing.

    Columns of one kind are converted together, one NumPy call for all of
    them, rather than a handful of calls per column."""
    rows = len(keys)
    by_name = {}
    for column in columns:
        kind = column.WhichOneof("values")
        size = len(column.string_values.values) if kind == "string_values" else len(_numbers(column))
        if len(column.statuses) == rows and len(column.event_times_unix_ms) == rows and size == rows:
            by_name[column.name] = column
    text = [n for n in wanted if n in by_name and by_name[n].WhichOneof("values") == "string_values"]
    numeric = [n for n in wanted if n in by_name and n not in text]
    values: dict[str, np.ndarray] = {}
    newest = np.zeros(rows, dtype=np.int64)
    for names, kind in ((numeric, "numeric"), (text, "text")):
        if not names:
            continue
        group = [by_name[n] for n in names]
        shape = (len(group), rows)
        present = _block((c.statuses for c in group), np.int32, shape) == PRESENT
        times = _block((c.event_times_unix_ms for c in group), np.int64, shape)
        np.maximum(newest, np.where(present, times, 0).max(axis=0), out=newest)
        if kind == "numeric":
            block = _block((_numbers(c) for c in group), np.float64, shape)
            block[~present] = np.nan
        else:
            block = np.array([v for c in group for v in c.string_values.values], dtype=str).reshape(shape)
            block[~present] = ""
        values.update(zip(names, block))
    for name in wanted:
        if name not in values:
            values[name] = np.full(rows, np.nan)
    return FeatureFrame(keys, values, newest)


@dataclass(frozen=True)
class HistoricalChunk:
    """One streamed chunk of point-in-time features."""

    row_offset: int
    total_rows: int
    frame: FeatureFrame
    event_times_ms: np.ndarray


class FeatureClient:
    """Online and historical feature lookups, each with a deadline."""

    def __init__(self, address: str, timeout: float = 1.0, historical_timeout: float = 600.0):
        self._channel = connect(address, [FEATURE_SERVICE], timeout)
        self._stub = feature_pb2_grpc.FeatureServiceStub(self._channel)
        self._timeout = timeout
        self._historical_timeout = historical_timeout

    def online(self, keys: EntityBatch, features: Sequence[str]) -> FeatureFrame:
        request = feature_pb2.GetOnlineFeaturesRequest(
            keys=feature_pb2.EntityKeys(store_ids=keys.store_ids.tolist(), medication_ids=keys.medication_ids.tolist()),
            features=list(features),
        )
        try:
            answer = self._stub.GetOnlineFeatures(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise _dependency_error(exc, "feature service GetOnlineFeatures") from None
        return frame_from_columns(keys, answer.columns, features)

    def historical_daily(self, day: str, features: Sequence[str], chunk_rows: int = 0) -> Iterator[HistoricalChunk]:
        """Every entity the store knows, as of the end of business day `day`, in chunks."""
        request = feature_pb2.GetHistoricalFeaturesRequest(
            daily_grid=feature_pb2.DailyGrid(start_day=day, end_day=day), features=list(features), chunk_rows=chunk_rows
        )
        try:
            for chunk in self._stub.GetHistoricalFeatures(request, timeout=self._historical_timeout):
                keys = EntityBatch(
                    np.asarray(chunk.rows.keys.store_ids, dtype=str), np.asarray(chunk.rows.keys.medication_ids, dtype=str)
                )
                yield HistoricalChunk(
                    chunk.row_offset,
                    chunk.total_rows,
                    frame_from_columns(keys, chunk.columns, features),
                    np.asarray(chunk.rows.event_times_unix_ms, dtype=np.int64),
                )
        except grpc.RpcError as exc:
            raise _dependency_error(exc, "feature service GetHistoricalFeatures") from None

    def close(self) -> None:
        self._channel.close()


def _dependency_error(exc: grpc.RpcError, what: str):
    """A request the feature service rejects as malformed means our model asks
    for features it does not define: a deployment mismatch, not the caller's fault."""
    if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND):
        return FailedPrecondition(f"{what}: {exc.code().name}: {exc.details()}")
    return as_domain_error(exc, what)
