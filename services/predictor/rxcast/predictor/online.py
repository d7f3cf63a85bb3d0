"""Online forecasts: fresh features from the feature service, the served
model (or the fallback policy), and a prediction log for the drift service."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from prometheus_client import Counter, Histogram

from rxcast.predictor import flags as F
from rxcast.predictor.driftlog import LogEntry, PredictionLogQueue
from rxcast.predictor.frame import EntityBatch, FeatureFrame
from rxcast.predictor.holder import ModelHolder
from rxcast.predictor.policy import Forecasts, forecast, unavailable_forecast
from rxcast.runtime.errors import DeadlineExceeded, Unavailable
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.predictor.online")

FORECAST_ROWS = Counter("rxcast_predictor_forecast_rows_total", "Entities forecast online.")
FLAGGED_ROWS = Counter(
    "rxcast_predictor_flagged_rows_total", "Online forecasts carrying each PredictionFlag.", ["flag"]
)
FEATURE_FETCH_SECONDS = Histogram(
    "rxcast_predictor_feature_fetch_seconds",
    "Time to fetch online features from the feature service.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
FEATURES_UNAVAILABLE = Counter(
    "rxcast_predictor_features_unavailable_total",
    "Requests the feature service could not serve, by outcome.",
    ["outcome"],
)
_FLAG_COUNTERS = {bit: FLAGGED_ROWS.labels(name) for bit, name in F.NAMES.items()}


class OnlineFeatures(Protocol):
    def online(self, keys: EntityBatch, features) -> FeatureFrame: ...


@dataclass(frozen=True)
class OnlineSettings:
    max_keys: int = 10_000
    max_feature_age_seconds: float = 0.0
    fallback_when_features_unavailable: bool = False


class OnlinePredictor:
    def __init__(
        self,
        holder: ModelHolder,
        features: OnlineFeatures | None,
        log_queue: PredictionLogQueue | None = None,
        settings: OnlineSettings = OnlineSettings(),
    ):
        self._holder = holder
        self._features = features
        self._log_queue = log_queue
        self._settings = settings

    def predict(
        self, store_ids, medication_ids, as_of_ms: int | None = None, field: str = "keys", log: bool = True
    ) -> Forecasts:
        keys = EntityBatch.validated(store_ids, medication_ids, field, self._settings.max_keys)
        model = self._holder.current()
        now_ms = int(time.time() * 1000) if as_of_ms is None else as_of_ms
        try:
            if self._features is None:
                raise Unavailable("no feature service is configured (--feature-address)")
            started = time.perf_counter()
            frame = self._features.online(keys, model.requested_features)
            FEATURE_FETCH_SECONDS.observe(time.perf_counter() - started)
        except (Unavailable, DeadlineExceeded) as exc:
            if not self._settings.fallback_when_features_unavailable:
                FEATURES_UNAVAILABLE.labels("refused").inc()
                raise Unavailable(f"cannot forecast without features: {exc.message}") from None
            FEATURES_UNAVAILABLE.labels("fallback").inc()
            result = unavailable_forecast(model, FeatureFrame.empty_features(keys))
            self._count(result)
            return result
        result = forecast(model, frame, now_ms, self._settings.max_feature_age_seconds)
        self._count(result)
        if log and self._log_queue is not None:
            self._log_queue.submit(
                LogEntry(
                    model,
                    result.values,
                    now_ms,
                    "online",
                    columns=frame.columns,
                    store_ids=keys.store_ids,
                    medication_ids=keys.medication_ids,
                )
            )
        return result

    @staticmethod
    def _count(result: Forecasts) -> None:
        FORECAST_ROWS.inc(len(result.values))
        seen = int(np.bitwise_or.reduce(result.flags)) if len(result.flags) else 0
        if seen:
            for bit, counter in _FLAG_COUNTERS.items():
                if seen & bit:
                    counter.inc(int(np.count_nonzero(result.flags & np.uint32(bit))))
