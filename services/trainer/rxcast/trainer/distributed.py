"""Fitting on a Dask cluster with `lightgbm.dask`, when the trainer is given a scheduler.

The rows are encoded here, by the same `FeatureEncoder` as a local fit, then
split into one block per worker and sent to the cluster, where LightGBM's
workers train one model together (data-parallel: each holds its block and
they exchange histograms every round). The booster comes back to this
process and is published like a locally fitted one.

Unlike a local fit, rounds are not reported while they run (LightGBM's
callbacks run on the workers), and a cancellation is honoured before the
cluster starts, not between rounds. Use it once a training set no longer
fits one machine's memory or time budget; below that, a local fit on all of
one machine's cores is faster (no transfer, no synchronization).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

from rxcast.model import FeatureEncoder
from rxcast.runtime.errors import Unavailable
from rxcast.runtime.logs import get_logger
from rxcast.trainer.dataset import TrainingSet, training_data_sha256
from rxcast.trainer.fit import FittedModel, RoundProgress, TrainingCancelled, encoding_manifest
from rxcast.trainer.params import TrainingParams

log = get_logger("rxcast.trainer.distributed")


class DaskFitter:
    """Fits models on the Dask cluster at `scheduler_address`, connecting on first use."""

    def __init__(self, scheduler_address: str, connect_timeout: float = 30.0):
        self.scheduler_address = scheduler_address
        self._connect_timeout = connect_timeout
        self._client = None
        self._lock = threading.Lock()

    def _connect(self):
        from distributed import Client

        with self._lock:
            if self._client is None:
                try:
                    self._client = Client(self.scheduler_address, timeout=self._connect_timeout, set_as_default=False)
                except (OSError, TimeoutError) as exc:
                    raise Unavailable(f"Dask scheduler {self.scheduler_address}: {exc}") from None
            return self._client

    def fit(
        self,
        train: TrainingSet,
        params: TrainingParams,
        num_threads: int,
        on_round: RoundProgress = lambda done, total: None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> FittedModel:
        """Train on every row of `train` across the cluster's workers; each worker
        uses as many LightGBM threads as it has (`num_threads` is for local fits)."""
        import dask.array as da
        import lightgbm as lgb

        if should_stop():
            raise TrainingCancelled("training was cancelled")
        manifest = encoding_manifest(train)
        encoder = FeatureEncoder(manifest)
        matrix = encoder.encode(train.columns).matrix
        labels = np.asarray(train.labels, dtype=np.float64)
        client = self._connect()
        workers = max(1, len(client.scheduler_info()["workers"]))
        block = max(1, math.ceil(len(labels) / workers))
        features = da.from_array(matrix, chunks=(block, matrix.shape[1]))
        target = da.from_array(labels, chunks=(block,))
        lgb_params = params.lightgbm_params(1)
        del lgb_params["num_threads"]  # each worker uses its own thread count
        model = lgb.DaskLGBMRegressor(client=client, n_estimators=params.num_boost_round, **lgb_params)
        log.info("dask_fit_started", scheduler=self.scheduler_address, workers=workers, rows=len(labels))
        with client.as_current():  # lightgbm.dask waits on its futures through the current client
            model.fit(
                features,
                target,
                feature_name=list(manifest.feature_names),
                categorical_feature=encoder.categorical_indices,
            )
        booster = model.booster_
        on_round(booster.current_iteration(), params.num_boost_round)
        text = booster.model_to_string().encode("utf-8")
        data_hash = training_data_sha256(matrix, labels, manifest.feature_names)
        return FittedModel(booster, manifest.with_updates(objective=params.objective), text, data_hash)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
