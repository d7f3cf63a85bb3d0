"""One typed client per rxcast service, for every caller (services, the demo,
the CLIs, the tests): deadlines on every call, retries where the contract
declares an RPC idempotent, request ids passed on, failures as domain errors,
feature columns as NumPy arrays, model downloads checked against their sha256.
"""

from rxcast.clients.drift import DriftClient
from rxcast.clients.feature import Actuals, FeatureClient, HistoricalChunk, IngestOutcome
from rxcast.clients.predictor import PredictorClient
from rxcast.clients.trainer import ChecksumMismatch, DownloadedModel, LatestVersion, TrainerClient

__all__ = [
    "Actuals",
    "ChecksumMismatch",
    "DownloadedModel",
    "DriftClient",
    "FeatureClient",
    "HistoricalChunk",
    "IngestOutcome",
    "LatestVersion",
    "PredictorClient",
    "TrainerClient",
]
