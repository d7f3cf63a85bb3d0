"""A loaded model version: LightGBM booster, manifest and encoder together."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import lightgbm as lgb
import numpy as np

from rxcast.model.encoding import EncodedBatch, FeatureEncoder
from rxcast.model.manifest import ModelManifest
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ModelBundle:
    """An immutable, ready-to-serve model version."""

    def __init__(self, booster: lgb.Booster, manifest: ModelManifest):
        if list(booster.feature_name()) != list(manifest.feature_names):
            raise FailedPrecondition(
                f"model {manifest.version}: booster features {booster.feature_name()} "
                f"differ from the manifest's {list(manifest.feature_names)}"
            )
        self.booster = booster
        self.manifest = manifest
        self.encoder = FeatureEncoder(manifest)

    @property
    def version(self) -> int:
        return self.manifest.version

    @classmethod
    def from_bytes(cls, model_text: bytes, manifest: ModelManifest, verify: bool = True) -> ModelBundle:
        """Load from the model file's bytes, checking them against the manifest's sha256."""
        if verify and manifest.sha256 and sha256_bytes(model_text) != manifest.sha256:
            raise FailedPrecondition(
                f"model {manifest.version}: sha256 {sha256_bytes(model_text)} does not match the "
                f"manifest's {manifest.sha256}"
            )
        try:
            booster = lgb.Booster(model_str=model_text.decode("utf-8"))
        except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
            raise FailedPrecondition(f"model {manifest.version}: not a LightGBM model: {exc}") from None
        return cls(booster, manifest)

    @classmethod
    def load(cls, directory: Path) -> ModelBundle:
        """Load a version directory holding manifest.json and the model file."""
        directory = Path(directory)
        manifest = ModelManifest.from_json((directory / "manifest.json").read_text())
        return cls.from_bytes((directory / manifest.model_file).read_bytes(), manifest)

    def encode(self, columns: Mapping[str, np.ndarray | Sequence]) -> EncodedBatch:
        return self.encoder.encode(columns)

    def predict_matrix(self, matrix: np.ndarray, num_threads: int = 1) -> np.ndarray:
        """Forecasts for an encoded matrix; non-negative (demand cannot be negative).

        One thread per call by default: on a small serving machine, per-call
        threading costs more than it gains for the small batches of online
        requests; batch scoring passes more.
        """
        if matrix.ndim != 2 or matrix.shape[1] != len(self.manifest.feature_names):
            raise InvalidArgument(
                f"input must have shape (rows, {len(self.manifest.feature_names)}), got {matrix.shape}"
            )
        if matrix.shape[0] == 0:
            return np.zeros(0)
        raw = self.booster.predict(matrix, num_threads=num_threads)
        return np.maximum(np.asarray(raw, dtype=np.float64), 0.0)

    def predict(self, columns: Mapping[str, np.ndarray | Sequence], num_threads: int = 1) -> np.ndarray:
        return self.predict_matrix(self.encode(columns).matrix, num_threads)

    def warm_up(self) -> None:
        """Run one prediction so the first real request pays no first-call cost."""
        self.predict_matrix(np.zeros((1, len(self.manifest.feature_names))))
