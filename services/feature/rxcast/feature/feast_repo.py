"""Open the Feast feature store under a data directory and apply the repo."""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
from pathlib import Path
from urllib.parse import urlparse

os.environ.setdefault("FEAST_USAGE", "False")

from feast import FeatureStore, RepoConfig
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.repo_config import RegistryConfig
from google.protobuf.message import DecodeError

from rxcast.feature.config import OnlineStore, redis_url_problem
from rxcast.feature.definitions import PROJECT, build_repo
from rxcast.runtime.durable import quarantine


def redis_connection_string(url: str) -> str:
    """redis://[:password@]host:port[/db] → Feast's "host:port,db=N[,password=P]".

    FeatureConfig has checked the URL (redis_url_problem) before it gets here."""
    problem = redis_url_problem(url)
    if problem:
        raise ValueError(f"redis_url: {problem}, got {url!r}")
    parsed = urlparse(url)
    parts = [f"{parsed.hostname}:{parsed.port or 6379}"]
    db = parsed.path.strip("/")
    if db:
        parts.append(f"db={db}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def repo_config(data_dir: Path, online_store: OnlineStore = "sqlite", redis_url: str = "") -> RepoConfig:
    data_dir = Path(data_dir).resolve()
    if online_store == "sqlite":
        online = {"type": "sqlite", "path": str(data_dir / "online.db")}
    elif online_store == "redis":
        # rxcast is the only writer and always writes an entity's newest row,
        # sometimes again with the same event time after a replayed record
        # changed it; Feast's timestamp check would drop such a rewrite.
        online = {"type": "redis", "connection_string": redis_connection_string(redis_url), "skip_dedup": True}
    else:
        raise ValueError(f"unknown online store {online_store!r}")  # FeatureConfig allows only the two
    return RepoConfig(
        project=PROJECT,
        provider="local",
        registry=RegistryConfig(path=str(data_dir / "registry.db"), cache_ttl_seconds=0),
        online_store=online,
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
    )


def set_aside_unreadable(data_dir: Path) -> list[str]:
    """Quarantine Feast's files that cannot be read (the registry, the SQLite
    online store); returns their names. Both are rebuilt: the registry by the
    apply on open, the online values by materializing the offline ones."""
    data_dir = Path(data_dir)
    set_aside = []
    registry = data_dir / "registry.db"
    if registry.exists():
        try:
            RegistryProto.FromString(registry.read_bytes())
        except DecodeError as exc:
            quarantine(registry, f"unreadable Feast registry: {exc}")
            set_aside.append(registry.name)
    online = data_dir / "online.db"
    if online.exists():
        try:
            with contextlib.closing(sqlite3.connect(online)) as connection:
                (verdict,) = connection.execute("PRAGMA quick_check").fetchone()
            problem = "" if verdict == "ok" else verdict
        except sqlite3.DatabaseError as exc:
            problem = str(exc)
        if problem:
            quarantine(online, f"unreadable online store: {problem[:200]}")
            set_aside.append(online.name)
    return set_aside


def open_store(
    data_dir: Path, online_store: OnlineStore = "sqlite", redis_url: str = "", apply: bool = True
) -> FeatureStore:
    """A FeatureStore over `data_dir`, with rxcast's definitions applied."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    store = FeatureStore(config=repo_config(data_dir, online_store, redis_url), repo_path=str(data_dir))
    if apply:
        with contextlib.redirect_stdout(io.StringIO()):
            store.apply(build_repo(data_dir))
    return store
