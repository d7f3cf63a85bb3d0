"""The dashboard's settings (flags and RXCAST_DASHBOARD_* variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from rxcast.runtime.config import GrpcPort, MetricsPort, ServerSettings


class DashboardConfig(ServerSettings):
    """rxcast dashboard: forecasts, drift, models and health, live in a browser."""

    model_config = SettingsConfigDict(env_prefix="RXCAST_DASHBOARD_")

    port: GrpcPort = Field(8080, description="HTTP port of the pages; 0 picks a free one (see --ready-file)")
    metrics_port: MetricsPort = 9156
    feature_address: str = Field("", description="feature service host:port; empty leaves its parts blank")
    trainer_address: str = Field("", description="trainer host:port")
    drift_address: str = Field("", description="drift service host:port")
    online_address: str = Field("", description="online predictor host:port")
    batch_address: str = Field("", description="batch predictor host:port")
    feature_metrics_url: str = Field(
        "", description="the feature service's /metrics URL, for its queues and last error"
    )
    trainer_metrics_url: str = Field("", description="the trainer's /metrics URL, for its queues and last error")
    drift_metrics_url: str = Field("", description="the drift service's /metrics URL, for its queues and last error")
    online_metrics_url: str = Field(
        "", description="the online predictor's /metrics URL, for latency, cost, queues and last error"
    )
    batch_metrics_url: str = Field(
        "", description="the batch predictor's /metrics URL, for latency, cost, queues and last error"
    )
    refresh_seconds: float = Field(2.0, gt=0, le=3600, description="how often live pages are refreshed")
    call_timeout_seconds: float = Field(5.0, gt=0, description="deadline of each call the dashboard makes")
    history_points: int = Field(
        2000, ge=10, le=1_000_000, description="online forecasts remembered per entity for the forecast chart"
    )
    watch_stores: int = Field(
        20, ge=0, le=1000, description="stores whose online forecasts are sampled from the start, besides those viewed"
    )
    drift_reports_shown: int = Field(
        50, ge=1, le=10_000, description="newest drift reports read for the drift page's charts (each poll)"
    )
    batch_runs_shown: int = Field(30, ge=1, le=1000, description="newest batch runs read for the forecast chart")
    entities_ttl_seconds: float = Field(60.0, gt=0, description="how long the list of stores and medications is cached")
