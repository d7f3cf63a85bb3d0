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

import numpy as np

from rxcast.clients import FeatureClient
from rxcast.feature.v1 import feature_pb2
from rxcast.model.timebase import as_of_day, day_number, day_text
from rxcast.runtime.errors import FailedPrecondition
from rxcast.runtime.logs import get_logger
from rxcast.trainer.dataset import FeatureSchema, LoadProgress, LoadRequest, TrainingSet

log = get_logger("rxcast.trainer.feature_source")


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
        self._client = FeatureClient(
            address, timeout=call_timeout, stream_timeout=load_timeout, max_message_mb=max_message_mb
        )
        self._chunk_rows = chunk_rows
        self._actuals_batch = actuals_batch_rows

    def close(self) -> None:
        self._client.close()

    def newest_day(self) -> int | None:
        """The feature service's newest ingested business day (None before any ingest)."""
        latest = self._client.list_features().latest_business_day
        return day_number(latest, "latest_business_day") if latest else None

    def schema(self) -> FeatureSchema:
        return self._schema(self._client.list_features())

    @staticmethod
    def _schema(listing: feature_pb2.ListFeaturesResponse) -> FeatureSchema:
        services = {s.name: s for s in listing.feature_services}
        default = services.get(listing.default_feature_service)
        if default is None or not default.features:
            raise FailedPrecondition(
                f"feature service: default feature service {listing.default_feature_service!r} names no features"
            )
        categorical = frozenset(f.name for f in listing.features if f.categorical)
        return FeatureSchema(
            tuple(default.features), categorical & set(default.features), horizon_days=listing.horizon_days
        )

    def load(self, request: LoadRequest, progress: LoadProgress) -> TrainingSet:
        listing = self._client.list_features()
        schema = self._schema(listing)
        served = {f.name for f in listing.features}
        # Features outside the store (a champion's retired feature) are left
        # out; whoever needs them finds them missing and says so.
        names = _unique([*schema.feature_names, *(n for n in request.extra_features if n in served)])
        keys, instants, columns = self._historical(request, names, progress)
        actuals = self._client.actuals(keys[0], keys[1], instants, request.horizon_days, batch_rows=self._actuals_batch)
        labels, horizon = actuals.values, actuals.horizon_days or request.horizon_days
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
        """Every row of the window's daily grid, strictly decoded: a malformed
        or missing column, or a value stamped after its row's instant (a
        point-in-time leak), refuses the load."""
        grid = (day_text(request.start_day), day_text(request.end_day))
        stores: list[np.ndarray] = []
        medications: list[np.ndarray] = []
        instants: list[np.ndarray] = []
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        loaded = 0
        leaks: dict[str, int] = {}
        for chunk in self._client.historical(names, grid=grid, chunk_rows=self._chunk_rows, strict=True):
            stores.append(chunk.store_ids)
            medications.append(chunk.medication_ids)
            instants.append(chunk.event_ms)
            for name, count in chunk.columns.stamped_after(chunk.event_ms).items():
                leaks[name] = leaks.get(name, 0) + count
            for name in names:
                parts[name].append(chunk.columns.values[name])
            loaded += len(chunk)
            progress(loaded, int(chunk.total_rows))
        if leaks:
            raise FailedPrecondition(
                f"feature service returned values stamped after their row's instant (point-in-time leak): {leaks}"
            )
        if not instants:
            empty = np.zeros(0, dtype=str)
            return (empty, empty), np.zeros(0, dtype=np.int64), {name: np.zeros(0) for name in names}
        columns = {name: np.concatenate(chunks) for name, chunks in parts.items()}
        return (np.concatenate(stores), np.concatenate(medications)), np.concatenate(instants), columns
