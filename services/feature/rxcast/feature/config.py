"""The feature service's settings (flags and RXCAST_FEATURE_* variables)."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from rxcast.runtime.config import GrpcPort, MetricsPort, MinFreeMb, ServerSettings, SettingError

OnlineStore = Literal["sqlite", "redis"]
TtlClock = Literal["data", "wall"]


class FeatureConfig(ServerSettings):
    """rxcast feature service: ingest, online and historical features on Feast."""

    model_config = SettingsConfigDict(env_prefix="RXCAST_FEATURE_")

    port: GrpcPort = 50051
    metrics_port: MetricsPort = 9151
    data_dir: str = Field(
        "data/feature",
        min_length=1,
        description="where the Feast registry, offline files, SQLite store and record log live",
    )
    online_store: OnlineStore = Field("sqlite", description="online store: sqlite (embedded) or redis")
    online_view: bool = Field(
        True,
        description="answer online reads from an in-memory copy of the online store's newest rows "
        "(written through, rebuilt at start); off reads Feast's online store on every call",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis online store address, redis[s]://[:password@]host[:port][/db], with --online-store redis",
    )
    horizon_days: int = Field(
        7, description="forecast horizon H: the target is demand over the H business days after a row"
    )
    max_batch_records: int = Field(200_000, ge=1, description="most records one IngestRecords call may carry")
    future_tolerance_days: int = Field(1, ge=0, description="how many days past today (UTC) a business_day may be")
    earliest_business_day: str = Field("2000-01-01", description="the earliest business_day accepted, YYYY-MM-DD")
    max_online_entities: int = Field(10_000, ge=1, description="most entities one GetOnlineFeatures call may ask for")
    max_historical_rows: int = Field(5_000_000, ge=1, description="most rows one GetHistoricalFeatures call may return")
    min_free_mb: MinFreeMb = 64
    max_actuals_days: int = Field(
        2_000_000, ge=1, description="most entity-days (rows x horizon_days) one GetActuals call may sum"
    )
    chunk_rows: int = Field(10_000, ge=1, description="rows per historical chunk when the request leaves it 0")
    max_chunk_rows: int = Field(200_000, ge=1, description="largest chunk_rows a request may ask for")
    ttl_clock: TtlClock = Field(
        "data",
        description="what online values' age is measured against: 'data' (the end of the latest business day "
        "ingested, so replays and simulations stay fresh) or 'wall' (the current time)",
    )
    registry_refresh_seconds: float = Field(
        5.0, ge=0, description="how often to re-read the Feast registry for definition changes; 0 never"
    )
    compact_after: int = Field(
        64,
        ge=2,
        description="merge the record log, and each feature view's offline files, once either holds this many files",
    )

    @field_validator("earliest_business_day")
    @classmethod
    def _a_date(cls, value: str) -> str:
        try:
            if len(value) == 10:
                dt.date.fromisoformat(value)
                return value
        except ValueError:
            pass
        raise ValueError("must be a date as YYYY-MM-DD")

    @model_validator(mode="after")
    def _consistent(self) -> FeatureConfig:
        if self.chunk_rows > self.max_chunk_rows:
            raise SettingError(
                "chunk_rows", f"must be <= max_chunk_rows ({self.max_chunk_rows}), got {self.chunk_rows}"
            )
        if self.online_store == "redis":
            problem = redis_url_problem(self.redis_url)
            if problem:
                raise SettingError("redis_url", f"{problem}, got {self.redis_url!r}")
        return self


def redis_url_problem(url: str) -> str:
    """What is wrong with a redis://[:password@]host[:port][/db] URL; "" if nothing."""
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018  (raises on a port that is no number or out of range)
    except ValueError:
        return "must be redis://host:port[/db] with a numeric port"
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        return "must be redis://host:port[/db]"
    db = parsed.path.strip("/")
    if db and not db.isdigit():
        return "the database after the last / must be a number"
    return ""
