"""Reads and writes of the online store, through Feast.

Writes go through the views' push sources (`FeatureStore.push`, ONLINE), the
way any Feast producer writes. Reads call the provider's `online_read` for
just the views and features a ReadPlan names and build typed columns with
NumPy, skipping the per-call registry work of `get_online_features`.
"""

from __future__ import annotations

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


def read_online(store: FeatureStore, plan: ReadPlan, keys: dict[str, np.ndarray], now_ms: int) -> list[Column]:
    """The freshest values of `plan`'s features for rows given by join-key columns."""
    provider = store._get_provider()
    n = len(next(iter(keys.values()))) if keys else 0
    per_part = []
    for part in plan.parts:
        key_columns = [np.asarray(keys[k], dtype=object) for k in part.join_keys]
        if n == 0:
            per_part.append(([], np.zeros(0, np.int64), part.ttl_ms))
            continue
        if len(key_columns) == 1:
            uniques, inverse = np.unique(key_columns[0].astype(str), return_inverse=True)
            unique_rows = [(u,) for u in uniques.tolist()]
        else:
            frame = pd.DataFrame({k: c for k, c in zip(part.join_keys, key_columns)})
            codes, unique_frame = pd.factorize(pd.MultiIndex.from_frame(frame))
            inverse = codes
            unique_rows = list(unique_frame)
        entity_keys = [
            EntityKey(join_keys=part.join_keys, entity_values=[Value(string_val=v) for v in row]) for row in unique_rows
        ]
        found = (
            provider.online_read(config=store.config, table=part.view, entity_keys=entity_keys, requested_features=list(part.features))
            if entity_keys
            else []
        )
        per_part.append((found, np.asarray(inverse, dtype=np.int64).reshape(-1), part.ttl_ms))

    columns = []
    for column in plan.columns:
        found, inverse, ttl_ms = per_part[column.part]
        m = len(found)
        values = [PLACEHOLDER[column.value_type]] * m
        statuses = np.full(m, NOT_FOUND, dtype=np.int8)
        event_ms = np.zeros(m, dtype=np.int64)
        for i, (ts, row) in enumerate(found):
            # Redis answers an unknown key with empty values at the epoch.
            stamp_ms = int(ts.timestamp() * 1000) if ts is not None else 0
            if row is None or stamp_ms == 0:
                continue
            event_ms[i] = stamp_ms
            value = row.get(column.name)
            kind = value.WhichOneof("val") if value is not None else None
            if kind is None or kind == "null_val":
                statuses[i] = NULL_VALUE if value is not None else NOT_FOUND
                continue
            raw = getattr(value, kind)
            if column.value_type == "DOUBLE" and raw != raw:  # NaN stored as a value
                statuses[i] = NULL_VALUE
                continue
            values[i] = raw
            statuses[i] = PRESENT
        typed = np.asarray(values, dtype=NUMPY_TYPE[column.value_type]) if m else np.zeros(0, NUMPY_TYPE[column.value_type])
        if ttl_ms:
            stale = (statuses != NOT_FOUND) & (now_ms - event_ms > ttl_ms)
            statuses[stale] = OUTSIDE_TTL
            typed[stale] = PLACEHOLDER[column.value_type]
        if n and m:
            typed, statuses, event_ms = typed[inverse], statuses[inverse], event_ms[inverse]
        elif n:
            typed = np.full(n, PLACEHOLDER[column.value_type], dtype=NUMPY_TYPE[column.value_type])
            statuses, event_ms = np.full(n, NOT_FOUND, np.int8), np.zeros(n, np.int64)
        columns.append(Column(column.name, column.value_type, typed, statuses, event_ms))
    return columns
