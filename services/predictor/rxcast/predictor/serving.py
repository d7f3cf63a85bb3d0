"""A model version made ready to serve: the bundle plus what the fallback
policy needs from its manifest, computed once when the version loads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rxcast.model import ModelBundle
from rxcast.predictor.fastpredict import SingleRowPredictor
from rxcast.predictor.lookup import KeySet, KeyTable
from rxcast.runtime.errors import InvalidArgument

#: Up to this many rows, predict row by row through LightGBM's single-row C API
#: (see rxcast.predictor.fastpredict); beyond it, Booster.predict is cheaper.
FAST_PATH_MAX_ROWS = 16


@dataclass(frozen=True)
class EntityFeatures:
    """Which features name an entity's attributes (used to pick a prior)."""

    category: str = "medication_category"
    region: str = "store_region"


@dataclass(frozen=True)
class Priors:
    """The manifest's fallback forecasts (means of the target over training)."""

    global_mean: float
    by_category: KeyTable
    by_store: KeyTable
    by_region: KeyTable

    @classmethod
    def from_manifest(cls, priors: dict) -> Priors:
        value = priors.get("global")
        global_mean = float(value) if value is not None and np.isfinite(float(value)) else 0.0
        return cls(
            global_mean,
            KeyTable(priors.get("by_category")),
            KeyTable(priors.get("by_store")),
            KeyTable(priors.get("by_region")),
        )


@dataclass(frozen=True)
class ServingModel:
    """One version, immutable once built: a request that reads it once is
    answered wholly by that version."""

    bundle: ModelBundle
    priors: Priors
    #: None when the manifest does not record them: every entity counts as seen.
    seen_stores: KeySet | None
    seen_medications: KeySet | None
    entity_features: EntityFeatures
    #: What to ask the feature service for: the model's inputs, then the attributes priors need.
    requested_features: tuple[str, ...]
    fast: SingleRowPredictor | None = None
    loaded_at: float = field(default_factory=time.time)

    @property
    def version(self) -> int:
        return self.bundle.version

    @property
    def manifest(self):
        return self.bundle.manifest

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.bundle.manifest.feature_names

    @classmethod
    def build(cls, bundle: ModelBundle, entity_features: EntityFeatures = EntityFeatures()) -> ServingModel:
        seen = bundle.manifest.entities_seen or {}
        requested = list(bundle.manifest.feature_names)
        for name in (entity_features.category, entity_features.region):
            if name and name not in requested:
                requested.append(name)
        return cls(
            bundle=bundle,
            priors=Priors.from_manifest(bundle.manifest.priors or {}),
            seen_stores=KeySet(seen["store_ids"]) if "store_ids" in seen else None,
            seen_medications=KeySet(seen["medication_ids"]) if "medication_ids" in seen else None,
            entity_features=entity_features,
            requested_features=tuple(requested),
            fast=SingleRowPredictor(bundle.booster, len(bundle.manifest.feature_names)),
        )

    def predict(self, matrix: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """Non-negative forecasts for an encoded (rows, features) matrix."""
        if self.fast is not None and matrix.ndim == 2 and 0 < matrix.shape[0] <= FAST_PATH_MAX_ROWS:
            if matrix.shape[1] != len(self.feature_names):
                raise InvalidArgument(f"input must have shape (rows, {len(self.feature_names)}), got {matrix.shape}")
            return self.fast.predict(matrix, lower=0.0)
        return self.bundle.predict_matrix(matrix, num_threads)

    def warm_up(self) -> None:
        self.bundle.warm_up()
        self.predict(np.zeros((1, len(self.feature_names))))
