"""A separate process that publishes model versions into a registry.

python tests/trainer/registry_worker.py ROOT COUNT [ALIAS]

Publishes COUNT versions of a small model, printing each version number as
it is committed (and, with ALIAS, force-moving the alias to it). Used to
publish from two processes at once, and to be killed mid-publish.
"""

from __future__ import annotations

import sys

import lightgbm as lgb
import numpy as np

from rxcast.model import ModelManifest
from rxcast.runtime.logs import configure_logging
from rxcast.trainer.registry import ModelRegistry

FEATURES = ("a", "b")


def small_model(seed: int, rounds: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    matrix = rng.random((200, 2))
    labels = rng.poisson(3.0 + matrix[:, 0] * 4).astype(np.float64)
    booster = lgb.train(
        {"objective": "poisson", "verbosity": -1, "num_threads": 1, "seed": seed},
        lgb.Dataset(matrix, labels, feature_name=list(FEATURES)),
        num_boost_round=rounds,
    )
    return booster.model_to_string().encode()


def manifest(reason: str = "") -> ModelManifest:
    return ModelManifest(version=0, feature_names=FEATURES, categorical_levels={}, horizon_days=7, reason=reason)


def main() -> None:
    configure_logging("registry-worker", "warning")
    root, count = sys.argv[1], int(sys.argv[2])
    alias = sys.argv[3] if len(sys.argv) > 3 else ""
    registry = ModelRegistry(root)
    text = small_model(seed=len(sys.argv))
    for i in range(count):
        info = registry.publish(text, manifest(reason=f"worker {i}"))
        if alias:
            registry.move_alias(alias, info.version, "force", f"worker {i}")
        print(info.version, flush=True)


if __name__ == "__main__":
    main()
