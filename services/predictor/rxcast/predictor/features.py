"""Feature values from the feature service, as FeatureFrames.

The shared client decodes the columns (read by name, blanked unless PRESENT,
a malformed or absent column served as missing); this module adds what the
predictor needs on top: the entity batch and each row's newest event time
among its present values, for the feature age.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rxcast.clients import FeatureClient
from rxcast.clients.columns import DecodedColumns, decode_columns
from rxcast.feature.v1 import feature_pb2
from rxcast.predictor.frame import EntityBatch, FeatureFrame


def to_frame(keys: EntityBatch, decoded: DecodedColumns) -> FeatureFrame:
    return FeatureFrame(keys, decoded.values, decoded.newest_ms())


def frame_from_columns(
    keys: EntityBatch, columns: Sequence[feature_pb2.FeatureColumn], wanted: Sequence[str]
) -> FeatureFrame:
    """A FeatureFrame for `keys` from the service's columns; `wanted` features
    the service did not return (or returned malformed) count as missing."""
    return to_frame(keys, decode_columns(columns, len(keys), wanted))


@dataclass(frozen=True)
class PopulationChunk:
    """One streamed chunk of every entity's point-in-time features."""

    row_offset: int
    total_rows: int
    frame: FeatureFrame
    event_times_ms: np.ndarray


class FeatureSource:
    """Online and daily-grid lookups through the feature service's client."""

    def __init__(self, address: str, timeout: float = 1.0, historical_timeout: float = 600.0):
        self._client = FeatureClient(address, timeout=timeout, stream_timeout=historical_timeout)

    def online(self, keys: EntityBatch, features: Sequence[str]) -> FeatureFrame:
        return to_frame(keys, self._client.online(keys.store_ids, keys.medication_ids, features))

    def historical_daily(self, day: str, features: Sequence[str], chunk_rows: int = 0) -> Iterator[PopulationChunk]:
        """Every entity the store knows, as of the end of business day `day`, in chunks."""
        for chunk in self._client.historical(features, grid=(day, day), chunk_rows=chunk_rows):
            keys = EntityBatch(chunk.store_ids, chunk.medication_ids)
            yield PopulationChunk(chunk.row_offset, chunk.total_rows, to_frame(keys, chunk.columns), chunk.event_ms)

    def close(self) -> None:
        self._client.close()
