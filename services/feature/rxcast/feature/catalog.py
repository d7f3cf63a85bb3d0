"""What the Feast registry defines, resolved once per registry version.

Requests name features (bare names, unique across the store, or Feast's
"view:feature" references) or a Feast feature service; a ReadPlan says which
feature views to read, with which join keys, and in what order the columns
go back. Plans are cached until the registry changes, so the hot path never
rebuilds registry objects. The registry cache never expires on its own
(cache_ttl_seconds=0): `refresh` re-reads it deliberately.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from feast import FeatureStore, FeatureView
from feast.errors import FeatureServiceNotFoundException
from google.protobuf.message import DecodeError

from rxcast.feature.definitions import DEFAULT_FEATURE_SERVICE
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from rxcast.runtime.logs import get_logger
from rxcast.runtime.validation import quote

log = get_logger("rxcast.feature.catalog")

#: Reads of a registry file caught mid-write before the contents resolved before are kept.
TORN_READ_ATTEMPTS = 5
TORN_READ_PAUSE_SECONDS = 0.05

#: Feast value types → the contract's value types.
VALUE_TYPES = {
    "Float64": "DOUBLE",
    "Float32": "DOUBLE",
    "Int64": "INT64",
    "Int32": "INT64",
    "String": "STRING",
    "Bool": "BOOL",
}


@dataclass(frozen=True)
class ViewRead:
    """The features to read from one feature view."""

    view: FeatureView
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    ttl_ms: int  # 0 = values never expire


@dataclass(frozen=True)
class OutputColumn:
    name: str
    value_type: str  # DOUBLE, INT64, STRING or BOOL
    part: int  # index into ReadPlan.parts


@dataclass(frozen=True)
class ReadPlan:
    parts: tuple[ViewRead, ...]
    columns: tuple[OutputColumn, ...]


@dataclass(frozen=True)
class FeatureInfo:
    name: str
    feature_view: str
    value_type: str
    categorical: bool
    ttl_seconds: float
    description: str


@dataclass(frozen=True)
class Schema:
    features: tuple[FeatureInfo, ...]
    feature_services: tuple[tuple[str, tuple[str, ...], str], ...]  # (name, features, description)
    entities: tuple[tuple[str, str, str], ...]  # (name, join key, description)
    default_feature_service: str
    updated: datetime | None


def _value_type(field) -> str:
    kind = VALUE_TYPES.get(str(field.dtype))
    if kind is None:
        raise FailedPrecondition(f"feature {field.name!r} has type {field.dtype}, which rxcast does not serve")
    return kind


def _ttl_ms(view: FeatureView) -> int:
    return int(view.ttl.total_seconds() * 1000) if view.ttl else 0


class Catalog:
    """Resolved registry contents, refreshed on demand."""

    def __init__(self, store: FeatureStore):
        self._store = store
        self._lock = threading.Lock()
        #: Held by whoever makes Feast rewrite the registry file in place (Materialize);
        #: `refresh` reads the file only under it.
        self.registry_lock = threading.Lock()
        self._plans: dict[tuple, ReadPlan] = {}
        self._fingerprint = self._registry_fingerprint()
        self._views: dict[str, FeatureView] = {}
        self._feature_to_view: dict[str, str] = {}
        self._index()

    @property
    def store(self) -> FeatureStore:
        return self._store

    def _registry_fingerprint(self) -> str:
        proto = self._store.registry.cached_registry_proto
        return hashlib.sha256(proto.SerializeToString(deterministic=True)).hexdigest() if proto else ""

    def _index(self) -> None:
        views = {v.name: v for v in self._store.list_feature_views(allow_cache=True)}
        feature_to_view: dict[str, str] = {}
        for view in views.values():
            for field in view.features:
                feature_to_view.setdefault(field.name, view.name)
        self._views, self._feature_to_view = views, feature_to_view

    def refresh(self) -> bool:
        """Re-read the registry; True when its contents changed.

        Feast's file registry is rewritten in place (truncated, then written), so a
        read can catch it empty or cut short: a read that does not parse, or finds no
        feature view where there were some, is read again a moment later, and if it
        stays so the contents resolved before are kept (the next refresh tries again)."""
        with self.registry_lock:
            for _ in range(TORN_READ_ATTEMPTS):
                if self._read_whole():
                    break
                time.sleep(TORN_READ_PAUSE_SECONDS)
            else:
                log.warning("registry_read_torn", attempts=TORN_READ_ATTEMPTS, kept_views=sorted(self._views))
                return False
            fingerprint = self._registry_fingerprint()
        with self._lock:
            if fingerprint == self._fingerprint:
                return False
            self._fingerprint = fingerprint
            self._plans = {}
            self._index()
        return True

    def _read_whole(self) -> bool:
        try:
            self._store.refresh_registry()
        except DecodeError:
            return False
        proto = self._store.registry.cached_registry_proto
        return not self._views or (proto is not None and len(proto.feature_views) > 0)

    def view(self, name: str) -> FeatureView:
        view = self._views.get(name)
        if view is None:
            raise NotFound(f"feature view {quote(name)} is not defined (known: {sorted(self._views)})")
        return view

    def view_names(self) -> list[str]:
        return sorted(self._views)

    def plan(self, features: tuple[str, ...], feature_service: str) -> ReadPlan:
        """The plan for a request's `features` or, when empty, its feature service."""
        key = (features, feature_service)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._resolve(features, feature_service)
            with self._lock:
                self._plans[key] = plan
        return plan

    def _resolve(self, features: tuple[str, ...], feature_service: str) -> ReadPlan:
        if features and feature_service:
            raise InvalidArgument("features and feature_service: give one or the other, not both")
        wanted: list[tuple[str, str]] = []  # (view, feature)
        if features:
            for i, name in enumerate(features):
                view_name, _, feature = name.rpartition(":")
                if not view_name:
                    view_name = self._feature_to_view.get(name, "")
                    if not view_name:
                        raise InvalidArgument(f"features[{i}]: no feature named {quote(name)}")
                elif view_name not in self._views or feature not in {f.name for f in self._views[view_name].features}:
                    raise InvalidArgument(
                        f"features[{i}]: no feature {quote(feature)} in a feature view {quote(view_name)}"
                    )
                wanted.append((view_name, feature))
        else:
            name = feature_service or DEFAULT_FEATURE_SERVICE
            try:
                service = self._store.get_feature_service(name, allow_cache=True)
            except FeatureServiceNotFoundException:
                raise NotFound(f"feature_service: no feature service named {quote(name)}") from None
            for projection in service.feature_view_projections:
                if projection.name not in self._views:
                    raise FailedPrecondition(
                        f"feature service {quote(name)} reads {projection.name!r}, which is not served"
                    )
                wanted.extend((projection.name, f.name) for f in projection.features)
        seen = set()
        parts: dict[str, list[str]] = {}
        columns = []
        for view_name, feature in wanted:
            if feature in seen:
                raise InvalidArgument(f"feature {quote(feature)} is requested twice")
            seen.add(feature)
            parts.setdefault(view_name, []).append(feature)
        order = list(parts)
        reads = []
        for view_name in order:
            view = self._views[view_name]
            join_keys = tuple(c.name for c in view.entity_columns)
            reads.append(ViewRead(view, join_keys, tuple(parts[view_name]), _ttl_ms(view)))
        fields = {(v.name, f.name): f for v in self._views.values() for f in v.features}
        for view_name, feature in wanted:
            columns.append(OutputColumn(feature, _value_type(fields[(view_name, feature)]), order.index(view_name)))
        return ReadPlan(tuple(reads), tuple(columns))

    def schema(self) -> Schema:
        views = self._store.list_feature_views(allow_cache=True)
        features = []
        for view in sorted(views, key=lambda v: v.name):
            for field in view.features:
                features.append(
                    FeatureInfo(
                        name=field.name,
                        feature_view=view.name,
                        value_type=VALUE_TYPES.get(str(field.dtype), "UNSPECIFIED"),
                        categorical=field.tags.get("categorical", "").lower() == "true",
                        ttl_seconds=view.ttl.total_seconds() if view.ttl else 0.0,
                        description=field.description,
                    )
                )
        services = tuple(
            (s.name, tuple(f.name for p in s.feature_view_projections for f in p.features), s.description)
            for s in sorted(self._store.list_feature_services(), key=lambda s: s.name)
        )
        entities = tuple(
            (e.name, e.join_key, e.description)
            for e in sorted(self._store.list_entities(allow_cache=True), key=lambda e: e.name)
        )
        proto = self._store.registry.cached_registry_proto
        updated = None
        if proto is not None and proto.HasField("last_updated"):
            updated = proto.last_updated.ToDatetime(tzinfo=UTC)
        return Schema(tuple(features), services, entities, DEFAULT_FEATURE_SERVICE, updated)
