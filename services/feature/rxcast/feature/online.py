"""Reads and writes of the online store, through Feast.

Writes go through the views' push sources (`FeatureStore.push`, ONLINE), the
way any Feast producer writes. Reads are answered by the in-memory copy of a
view (rxcast.feature.online_view) when there is one; otherwise they call the
provider's `online_read` for just the views and features a ReadPlan names and
build typed columns with NumPy, skipping the per-call registry work of
`get_online_features`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from rxcast.feature.catalog import ReadPlan
from rxcast.feature.offline import NOT_FOUND, NULL_VALUE, OUTSIDE_TTL, PRESENT

PLACEHOLDER = {"DOUBLE": 0.0, "INT64": 0, "STRING": "", "BOOL": False}
NUMPY_TYPE = {"DOUBLE": np.float64, "INT64": np.int64, "STRING": object, "BOOL": bool}


@dataclass
class Column:
    """One feature's values for a batch of rows, with a status and event time each."""

    name: str
    value_type: str
    values: np.ndarray
    statuses: np.ndarray  # int8 FeatureStatus values
    event_ms: np.ndarray  # int64, 0 where nothing was found


def push_online(store: FeatureStore, view: str, frame: pd.DataFrame) -> None:
    """Write rows (join keys, event_timestamp, created_timestamp, features) online."""
    if len(frame):
        store.push(f"{view}_push", frame, to=PushMode.ONLINE)


def read_entities(store: FeatureStore, provider, part, entity_keys: list[tuple], features: list[str]) -> list:
    """Online rows of one view: (event ms, {feature: Value}) or None per entity key."""
    if not entity_keys:
        return []
    protos = [
        EntityKey(join_keys=part.join_keys, entity_values=[Value(string_val=v) for v in key]) for key in entity_keys
    ]
    found = provider.online_read(config=store.config, table=part.view, entity_keys=protos, requested_features=features)
    rows = []
    for ts, values in found:
        # Redis answers an unknown key with empty values at the epoch.
        stamp_ms = round(ts.timestamp() * 1000) if ts is not None else 0
        rows.append((stamp_ms, values) if values is not None and stamp_ms != 0 else None)
    return rows


def _read_part(store: FeatureStore, provider, part, keys: dict[str, list]) -> tuple[list, list[int]]:
    """Online rows of one view for the distinct entities among the request's
    rows: ([(event ms, {feature: Value}) or None per distinct entity], row → entity)."""
    slots: dict[tuple, int] = {}
    inverse = [slots.setdefault(key, len(slots)) for key in zip(*(keys[k] for k in part.join_keys))]
    return read_entities(store, provider, part, list(slots), list(part.features)), inverse


def _part_columns(rows: list, inverse: list[int], part, types: dict[str, str], now_ms: int) -> dict[str, tuple]:
    """(values, statuses, event ms) per feature of one view, in request row order."""
    ttl_ms = part.ttl_ms
    names = [name for name in part.features if name in types]
    placeholders = [PLACEHOLDER[types[name]] for name in names]
    values = [[] for _ in names]
    statuses = [[] for _ in names]
    event_ms = []
    for row in rows:
        if row is None:
            event_ms.append(0)
            for j, placeholder in enumerate(placeholders):
                values[j].append(placeholder)
                statuses[j].append(NOT_FOUND)
            continue
        stamp_ms, found = row
        event_ms.append(stamp_ms)
        stale = ttl_ms and now_ms - stamp_ms > ttl_ms
        for j, name in enumerate(names):
            value = found.get(name)
            kind = value.WhichOneof("val") if value is not None else None
            raw = getattr(value, kind) if kind is not None and kind != "null_val" else None
            if stale and value is not None:
                values[j].append(placeholders[j])
                statuses[j].append(OUTSIDE_TTL)
            elif raw is None or (isinstance(raw, float) and math.isnan(raw)):  # unset, null, or a NaN double
                values[j].append(placeholders[j])
                statuses[j].append(NULL_VALUE if value is not None else NOT_FOUND)
            else:
                values[j].append(raw)
                statuses[j].append(PRESENT)
    reorder = len(rows) != len(inverse) or any(i != k for k, i in enumerate(inverse))
    if reorder:
        event_ms = [event_ms[i] for i in inverse]
    times = np.asarray(event_ms, dtype=np.int64)
    out = {}
    for j, name in enumerate(names):
        column_values, column_statuses = values[j], statuses[j]
        if reorder:
            column_values = [column_values[i] for i in inverse]
            column_statuses = [column_statuses[i] for i in inverse]
        dtype = NUMPY_TYPE[types[name]]
        out[name] = (
            np.asarray(column_values, dtype=dtype) if column_values else np.zeros(0, dtype),
            np.asarray(column_statuses, dtype=np.int8),
            times,
        )
    return out


def read_online(store: FeatureStore, plan: ReadPlan, keys: dict[str, list], now_ms: int, copies=None) -> list[Column]:
    """The freshest values of `plan`'s features for rows given by join-key columns.

    `copies` (an rxcast.feature.online_view.OnlineView) answers for the views it
    holds a copy of; the others are read from Feast's online store."""
    types = {column.name: column.value_type for column in plan.columns}
    by_feature: dict[str, tuple] = {}
    provider = None
    for part in plan.parts:
        copy = copies.copy_of(part) if copies is not None else None
        if copy is not None:
            by_feature.update(copy.read(keys, part, now_ms))
            continue
        provider = provider or store._get_provider()
        rows, inverse = _read_part(store, provider, part, keys)
        by_feature.update(_part_columns(rows, inverse, part, types, now_ms))
    return [Column(c.name, c.value_type, *by_feature[c.name]) for c in plan.columns]
