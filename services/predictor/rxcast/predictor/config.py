"""The predictor service's settings (flags and RXCAST_PREDICTOR_* variables)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from rxcast.runtime.config import GrpcPort, MetricsPort, ServerSettings

Mode = Literal["online", "batch"]


class PredictorConfig(ServerSettings):
    """rxcast predictor service: online/streaming forecasts or batch scoring."""

    model_config = SettingsConfigDict(env_prefix="RXCAST_PREDICTOR_")

    mode: Mode = Field(
        "online", description="online (per-request forecasts) or batch (scheduled scoring, served by lookup)"
    )
    port: GrpcPort = 50053
    metrics_port: MetricsPort = 9153
    access_log: bool = Field(
        False,
        description="log one line per RPC; off by default here: at a predictor's request rate the line costs more "
        "than the forecast, and rxcast_rpc_* metrics count every call by method and status",
    )
    feature_address: str = Field(
        "", description="feature service address host:port; empty: no features (priors only if allowed)"
    )
    trainer_address: str = Field(
        "", description="trainer address host:port to poll for model versions; empty: no polling"
    )
    drift_address: str = Field("", description="drift service address host:port for prediction logs; empty: no logging")
    alias: str = Field("champion", min_length=1, description="the trainer alias whose version is served")
    poll_interval_seconds: float = Field(5.0, gt=0, description="how often to ask the trainer for the alias's version")
    download_timeout_seconds: float = Field(120.0, gt=0, description="deadline for downloading one model version")
    model_dir: str = Field(
        "", description="a model version directory (manifest.json + model file) to serve at start-up"
    )
    feature_timeout_seconds: float = Field(1.0, gt=0, description="deadline for one online feature lookup")
    fallback_when_features_unavailable: bool = Field(
        False,
        description="answer with flagged priors instead of UNAVAILABLE when the feature service cannot be reached",
    )
    max_feature_age_seconds: float = Field(
        172800.0, ge=0, description="features older than this get STALE_FEATURES; 0 disables"
    )
    max_keys: int = Field(10000, ge=1, description="most entities in one Predict or GetBatchPredictions request")
    category_feature: str = Field(
        "medication_category", min_length=1, description="feature holding the medication's category (for priors)"
    )
    region_feature: str = Field(
        "store_region", min_length=1, description="feature holding the store's region (for priors)"
    )
    model_name: str = Field(
        "rxcast-demand", min_length=1, description="the model's name on the Open Inference Protocol"
    )
    drift_queue_rows: int = Field(
        100000, ge=1, description="prediction log rows held for the drift service before dropping"
    )
    drift_batch_rows: int = Field(5000, ge=1, description="prediction log rows sent per batch")
    data_dir: str = Field("data/predictor-batch", min_length=1, description="batch mode: where runs are stored")
    batch_interval_seconds: float = Field(
        86400.0, ge=0, description="batch mode: seconds between scheduled runs; 0 disables"
    )
    batch_keep_runs: int = Field(5, ge=1, description="batch mode: runs kept (older ones are deleted)")
    batch_partition_rows: int = Field(50000, ge=1, description="batch mode: entities per scoring partition")
    dask_scheduler: str = Field(
        "", description="batch mode: Dask scheduler address (tcp://host:port); empty: local threads"
    )
    dask_workers: int = Field(2, ge=1, description="batch mode: local scoring threads when no scheduler is given")
