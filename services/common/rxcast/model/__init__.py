"""The model bundle: what a published model version is, shared by the trainer
(which writes it) and the predictors (which load it).

A version is two files: the LightGBM model text and `manifest.json`
(`ModelManifest`). `FeatureEncoder` turns feature columns into the model's
input matrix in the manifest's feature order, encoding categoricals with the
levels recorded at training time, so training and serving encode alike.
"""

from rxcast.model.bundle import ModelBundle, sha256_file
from rxcast.model.encoding import EncodedBatch, FeatureEncoder
from rxcast.model.manifest import MANIFEST_FORMAT, ModelManifest

__all__ = ["MANIFEST_FORMAT", "EncodedBatch", "FeatureEncoder", "ModelBundle", "ModelManifest", "sha256_file"]
