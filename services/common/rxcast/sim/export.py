"""Records in the shapes clients send them: plain columns or one dict per record.

`record_dicts(world.records_for_day(day))` gives keyword arguments for
`InventoryRecord(**d)`; a field not reported (NaN) is left out, as the app
leaves an optional field unset.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from rxcast.sim.catalog import FLAG_FIELDS, NUMERIC_FIELDS, RECORD_COLUMNS


def record_columns(records: pd.DataFrame) -> dict[str, list]:
    """Plain Python lists per InventoryRecord field: strings for ids, labels and
    the business day ("YYYY-MM-DD"), floats (NaN if not reported), bools."""
    columns: dict[str, list] = {}
    for name in RECORD_COLUMNS:
        values = records[name]
        if name == "business_day":
            columns[name] = values.dt.strftime("%Y-%m-%d").tolist()
        elif name in NUMERIC_FIELDS:
            columns[name] = values.to_numpy(dtype=np.float64).tolist()
        elif name in FLAG_FIELDS:
            columns[name] = values.to_numpy(dtype=bool).tolist()
        else:
            columns[name] = values.astype(str).tolist()
    return columns


def record_dicts(records: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per record with the InventoryRecord field names; unreported numbers left out."""
    columns = record_columns(records)
    out = []
    for row in zip(*columns.values(), strict=True):
        out.append({k: v for k, v in zip(columns, row, strict=True) if not (isinstance(v, float) and math.isnan(v))})
    return out
