"""The feature service's settings (flags and RXCAST_FEATURE_* variables)."""

from __future__ import annotations

import dataclasses

from rxcast.runtime.config import ServerConfig, setting


@dataclasses.dataclass(frozen=True)
class FeatureConfig(ServerConfig):
    """rxcast feature service: ingest, online and historical features on Feast."""

    port: int = setting(50051, "gRPC port; 0 picks a free one (see --ready-file)")
    metrics_port: int = setting(9151, "Prometheus metrics HTTP port; 0 picks a free one, -1 disables")
    data_dir: str = setting("data/feature", "where the Feast registry, offline files, SQLite store and record log live")
    online_store: str = setting("sqlite", "online store: sqlite (embedded) or redis")
    redis_url: str = setting("redis://127.0.0.1:6379/0", "Redis online store address, with --online-store redis")
    horizon_days: int = setting(7, "forecast horizon H: the target is demand over the H business days after a row")
    max_batch_records: int = setting(200_000, "most records one IngestRecords call may carry")
    future_tolerance_days: int = setting(1, "how many days past today (UTC) a business_day may be")
    earliest_business_day: str = setting("2000-01-01", "the earliest business_day accepted")
    max_online_entities: int = setting(10_000, "most entities one GetOnlineFeatures call may ask for")
    max_historical_rows: int = setting(5_000_000, "most rows one GetHistoricalFeatures call may return")
    chunk_rows: int = setting(10_000, "rows per historical chunk when the request leaves it 0")
    max_chunk_rows: int = setting(200_000, "largest chunk_rows a request may ask for")
    ttl_clock: str = setting(
        "data",
        "what online values' age is measured against: 'data' (the end of the latest business day ingested, "
        "so replays and simulations stay fresh) or 'wall' (the current time)",
    )
    registry_refresh_seconds: float = setting(5.0, "how often to re-read the Feast registry for definition changes")
    compact_after: int = setting(64, "merge the record log, and each feature view's offline files, once either holds this many files")
