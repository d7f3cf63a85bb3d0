"""Inventory records for the wire: a frame with InventoryRecord's field names
→ InventoryRecord messages, in business-day order."""

from __future__ import annotations

import math

import pandas as pd

from rxcast.feature.v1 import feature_pb2 as pb

_FIELDS = pb.InventoryRecord.DESCRIPTOR.fields
#: InventoryRecord's fields by kind, read from the contract.
TEXT_FIELDS = tuple(f.name for f in _FIELDS if f.type == f.TYPE_STRING)
NUMBER_FIELDS = tuple(f.name for f in _FIELDS if f.type == f.TYPE_DOUBLE)
FLAG_FIELDS = tuple(f.name for f in _FIELDS if f.type == f.TYPE_BOOL)
REQUIRED = ("store_id", "medication_id", "business_day")


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Records with InventoryRecord's field names → the columns and types the
    protos need (business_day as YYYY-MM-DD, NaN for an unreported number),
    in day order."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"records lack required columns {missing}")
    out = pd.DataFrame(index=frame.index)
    for name in TEXT_FIELDS:
        if name == "business_day" and not pd.api.types.is_string_dtype(frame[name]):
            out[name] = pd.to_datetime(frame[name]).dt.strftime("%Y-%m-%d")
        elif name in frame.columns:
            text = frame[name].astype(object)
            out[name] = text.where(text.notna(), "").astype(str)
        else:
            out[name] = ""
    for name in NUMBER_FIELDS:
        out[name] = pd.to_numeric(frame[name], errors="coerce").astype(float) if name in frame.columns else math.nan
    for name in FLAG_FIELDS:
        out[name] = frame[name].fillna(False).astype(bool) if name in frame.columns else False
    return out.sort_values("business_day", kind="stable").reset_index(drop=True)


def to_protos(frame: pd.DataFrame) -> list[pb.InventoryRecord]:
    """Normalized records → InventoryRecord messages; NaN numbers stay unset (missing)."""
    records = []
    columns = list(frame.columns)
    for row in frame.itertuples(index=False, name=None):
        fields = {k: v for k, v in zip(columns, row, strict=True) if not (isinstance(v, float) and math.isnan(v))}
        records.append(pb.InventoryRecord(**fields))
    return records
