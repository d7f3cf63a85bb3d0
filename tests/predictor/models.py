"""Small real LightGBM demand models and the world they were trained on, for the predictor's tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from rxcast.model import ModelManifest
from rxcast.model.bundle import sha256_bytes

FEATURES = (
    "dispensed_sum_7d",
    "dispensed_sum_28d",
    "unit_price",
    "on_promotion",
    "medication_category",
    "store_region",
)
CATEGORIES = ("analgesic", "antiviral", "statin")
REGIONS = ("north", "south")
STORES = tuple(f"S{i}" for i in range(4))
MEDICATIONS = tuple(f"M{i}" for i in range(6))
CATEGORY_OF = {m: CATEGORIES[i % len(CATEGORIES)] for i, m in enumerate(MEDICATIONS)}
REGION_OF = {s: REGIONS[i % len(REGIONS)] for i, s in enumerate(STORES)}


@dataclass(frozen=True)
class TrainedModel:
    version: int
    model_text: bytes
    manifest: ModelManifest

    @property
    def sha256(self) -> str:
        return self.manifest.sha256

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / self.manifest.model_file).write_bytes(self.model_text)
        (directory / "manifest.json").write_text(self.manifest.to_json())
        return directory


def training_rows(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sum7 = rng.gamma(2.0, 5.0, rows)
    return {
        "dispensed_sum_7d": sum7,
        "dispensed_sum_28d": sum7 * 4 + rng.normal(0, 2, rows),
        "unit_price": rng.uniform(1, 20, rows),
        "on_promotion": rng.integers(0, 2, rows).astype(float),
        "medication_category": rng.choice(CATEGORIES, rows),
        "store_region": rng.choice(REGIONS, rows),
    }


def train(
    version: int = 1,
    scale: float = 1.0,
    rows: int = 2000,
    rounds: int = 20,
    seed: int = 0,
    category_effect: dict[str, float] | None = None,
) -> TrainedModel:
    """A tweedie model whose forecasts grow with `scale` (so versions are told
    apart by their answers); `category_effect` adds units per medication
    category, so that the model's answer depends on the category's level."""
    manifest = ModelManifest(
        version=version,
        feature_names=FEATURES,
        categorical_levels={"medication_category": CATEGORIES, "store_region": REGIONS},
        horizon_days=7,
    )
    from rxcast.model import FeatureEncoder

    data = training_rows(rows, seed)
    matrix = FeatureEncoder(manifest).encode(data).matrix
    target = scale * (data["dispensed_sum_7d"] * (1 + 0.5 * data["on_promotion"]) + 1.0)
    if category_effect:
        target = target + np.vectorize(category_effect.get)(data["medication_category"])
    dataset = lgb.Dataset(matrix, target, feature_name=list(FEATURES), categorical_feature=[4, 5], free_raw_data=False)
    booster = lgb.train(
        {"objective": "tweedie", "num_leaves": 15, "verbose": -1, "seed": seed, "num_threads": 1},
        dataset,
        num_boost_round=rounds,
    )
    text = booster.model_to_string().encode()
    manifest = manifest.with_updates(
        sha256=sha256_bytes(text),
        priors={
            "global": float(target.mean()),
            "by_category": {c: float(target[data["medication_category"] == c].mean()) for c in CATEGORIES},
            "by_store": {s: 10.0 * scale + i for i, s in enumerate(STORES)},
            "by_region": {r: 20.0 * scale + i for i, r in enumerate(REGIONS)},
        },
        entities_seen={"store_ids": STORES, "medication_ids": MEDICATIONS},
    )
    return TrainedModel(version, text, manifest)
