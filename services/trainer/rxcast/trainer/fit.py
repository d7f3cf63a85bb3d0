"""Fitting a LightGBM demand model on a training set.

The model's input matrix is built by the same `FeatureEncoder` the predictors
use, from a manifest that records the feature order and the categorical
levels seen in the training rows, so training and serving encode alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import lightgbm as lgb
import numpy as np

from rxcast.model import FeatureEncoder, ModelManifest
from rxcast.model.encoding import categorical_levels
from rxcast.trainer.dataset import TrainingSet, training_data_sha256
from rxcast.trainer.params import TrainingParams

#: Called with (rounds done, rounds planned) after each boosting round.
RoundProgress = Callable[[int, int], None]


#: Below this many rows one thread trains faster than several: the work per
#: round is too small to pay for synchronizing threads.
SINGLE_THREAD_ROWS = 50_000


def threads_for(rows: int, num_threads: int) -> int:
    """LightGBM threads for a training set of `rows` rows."""
    return 1 if rows < SINGLE_THREAD_ROWS else max(1, num_threads)


class TrainingCancelled(Exception):
    """Raised from inside boosting when the job is asked to stop."""


@dataclasses.dataclass(frozen=True)
class FittedModel:
    booster: lgb.Booster
    #: Feature order, categorical levels and horizon; the rest of the manifest
    #: is filled in by evaluation and publishing.
    manifest: ModelManifest
    model_text: bytes
    training_data_sha256: str

    def predict(self, matrix: np.ndarray, num_threads: int) -> np.ndarray:
        """Non-negative forecasts (demand cannot be negative)."""
        if matrix.shape[0] == 0:
            return np.zeros(0)
        return np.maximum(np.asarray(self.booster.predict(matrix, num_threads=num_threads), dtype=np.float64), 0.0)


def encoding_manifest(train: TrainingSet) -> ModelManifest:
    """A manifest holding what encoding needs: feature order and training levels."""
    levels = {
        name: categorical_levels(train.columns[name])
        for name in train.schema.feature_names
        if name in train.schema.categorical
    }
    return ModelManifest(
        version=0,
        feature_names=train.schema.feature_names,
        categorical_levels=levels,
        horizon_days=train.horizon_days,
    )


def fit_model(
    train: TrainingSet,
    params: TrainingParams,
    num_threads: int,
    on_round: RoundProgress = lambda done, total: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> FittedModel:
    """Train on every row of `train`."""
    manifest = encoding_manifest(train)
    encoder = FeatureEncoder(manifest)
    matrix = encoder.encode(train.columns).matrix
    lgb_params = params.lightgbm_params(threads_for(train.rows, num_threads))
    dataset = lgb.Dataset(
        matrix,
        label=train.labels,
        feature_name=list(manifest.feature_names),
        categorical_feature=encoder.categorical_indices,
        params=lgb_params,
        free_raw_data=True,
    )

    def report(env: lgb.callback.CallbackEnv) -> None:
        if should_stop():
            raise TrainingCancelled("training was cancelled")
        on_round(env.iteration + 1, env.end_iteration)

    booster = lgb.train(lgb_params, dataset, num_boost_round=params.num_boost_round, callbacks=[report])
    data_hash = training_data_sha256(matrix, train.labels, manifest.feature_names)
    text = booster.model_to_string().encode("utf-8")
    return FittedModel(booster, manifest.with_updates(objective=params.objective), text, data_hash)
