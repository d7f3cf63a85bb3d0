"""Scoring a population in partitions with Dask.

The same task graph runs on Dask's local threaded scheduler (the default:
LightGBM releases the GIL, so threads use every core) or, given a scheduler
address, on a Dask cluster, where the model is broadcast to the workers once
and partitions are scored where they land.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dask
import numpy as np
from dask.callbacks import Callback

from rxcast.predictor.frame import FeatureFrame
from rxcast.predictor.policy import forecast
from rxcast.predictor.serving import ServingModel
from rxcast.runtime.errors import Unavailable
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.predictor.batch.scoring")


@dataclass(frozen=True)
class ScoredPartition:
    forecasts: np.ndarray
    flags: np.ndarray


def score_partition(model: ServingModel, frame: FeatureFrame, as_of_ms: int, max_age_seconds: float) -> ScoredPartition:
    """One partition through the same policy as online requests (one LightGBM thread per task)."""
    result = forecast(model, frame, as_of_ms, max_age_seconds, num_threads=1)
    return ScoredPartition(result.values, result.flags)


class _Progress(Callback):
    """Reports each finished scoring task of a local computation."""

    def __init__(self, on_partition: Callable[[int], None]):
        super().__init__()
        self._on_partition = on_partition

    def _posttask(self, key, result, dsk, state, worker_id):
        if isinstance(result, ScoredPartition):
            self._on_partition(len(result.forecasts))


class DaskScorer:
    """Scores partitions locally (threads) or on the cluster at `scheduler_address`."""

    def __init__(self, scheduler_address: str = "", workers: int = 2, connect_timeout: float = 10.0):
        self.scheduler_address = scheduler_address
        self.workers = max(1, workers)
        self._connect_timeout = connect_timeout
        self._client = None
        self._lock = threading.Lock()

    def _cluster(self):
        with self._lock:
            if self._client is None:
                from distributed import Client

                try:
                    self._client = Client(self.scheduler_address, timeout=self._connect_timeout, set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    raise Unavailable(f"dask scheduler {self.scheduler_address}: {exc}") from None
            return self._client

    def score(
        self,
        model: ServingModel,
        partitions: Sequence[FeatureFrame],
        as_of_ms: int,
        max_age_seconds: float = 0.0,
        on_partition: Callable[[int], None] = lambda rows: None,
    ) -> list[ScoredPartition]:
        """Every partition's forecasts, in partition order; `on_partition(rows)` as each finishes."""
        if not partitions:
            return []
        if self.scheduler_address:
            return self._score_on_cluster(model, partitions, as_of_ms, max_age_seconds, on_partition)
        shared = dask.delayed(model, traverse=False)
        tasks = [
            dask.delayed(score_partition, pure=False)(
                shared, part, as_of_ms, max_age_seconds, dask_key_name=f"score-{i}"
            )
            for i, part in enumerate(partitions)
        ]
        with _Progress(on_partition):
            return list(dask.compute(*tasks, scheduler="threads", num_workers=self.workers))

    def _score_on_cluster(self, model, partitions, as_of_ms, max_age_seconds, on_partition):
        from distributed import as_completed

        client = self._cluster()
        shared = client.scatter(model, broadcast=True, hash=False)
        futures = [
            client.submit(score_partition, shared, part, as_of_ms, max_age_seconds, pure=False) for part in partitions
        ]
        position = {future.key: i for i, future in enumerate(futures)}
        results: list[ScoredPartition | None] = [None] * len(futures)
        try:
            for future in as_completed(futures, loop=client.loop):
                scored = future.result()
                results[position[future.key]] = scored
                on_partition(len(scored.forecasts))
        finally:
            client.cancel(futures)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
