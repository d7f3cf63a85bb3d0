"""Small hand-made inventory worlds for the feature tests (a seeded RNG)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from rxcast.feature.v1 import feature_pb2 as pb

START = dt.date(2025, 1, 1)
REGIONS = ("north", "south", "east")
CATEGORIES = ("antiviral", "analgesic", "antibiotic")


def day_text(offset: int) -> str:
    return (START + dt.timedelta(days=offset)).isoformat()


def day_end_ms(offset: int) -> int:
    """The instant business day START+offset ends (its records' stamp)."""
    return ((START - dt.date(1970, 1, 1)).days + offset + 1) * 86_400_000


def world(
    stores: int, medications: int, days: int, seed: int = 7, first_day: int = 0, prefix: str = ""
) -> dict[str, list]:
    """Records for every (store, medication, day) as columns, with some missing
    values, promotions and stock-outs."""
    rng = np.random.default_rng(seed)
    s, m, d = np.meshgrid(
        np.arange(stores), np.arange(medications), np.arange(first_day, first_day + days), indexing="ij"
    )
    s, m, d = s.ravel(), m.ravel(), d.ravel()
    n = len(s)
    dispensed = rng.poisson(5 + 3 * (m % 4) + 2 * ((d % 7) < 2), n).astype(float)
    dispensed[rng.random(n) < 0.03] = np.nan
    return {
        "store_id": [f"{prefix}s{i:03d}" for i in s],
        "medication_id": [f"{prefix}m{i:03d}" for i in m],
        "business_day": [day_text(int(i)) for i in d],
        "units_dispensed": dispensed.tolist(),
        "units_received": rng.choice([0.0, 0.0, 20.0, 40.0], n).tolist(),
        "units_on_hand": rng.integers(0, 80, n).astype(float).tolist(),
        "prescriptions_written": rng.poisson(4, n).astype(float).tolist(),
        "unit_price": np.round(2 + m * 0.5 + rng.random(n), 2).tolist(),
        "on_promotion": (rng.random(n) < 0.1).tolist(),
        "stock_out": (rng.random(n) < 0.05).tolist(),
        "medication_category": [CATEGORIES[i % len(CATEGORIES)] for i in m],
        "store_region": [REGIONS[i % len(REGIONS)] for i in s],
    }


def take(columns: dict[str, list], index) -> dict[str, list]:
    return {k: [v[i] for i in index] for k, v in columns.items()}


def to_protos(columns: dict[str, list]) -> list[pb.InventoryRecord]:
    out = []
    for i in range(len(columns["store_id"])):
        fields = {k: v[i] for k, v in columns.items()}
        for k, v in list(fields.items()):
            if isinstance(v, float) and math.isnan(v):
                del fields[k]
        out.append(pb.InventoryRecord(**fields))
    return out


def oracle(columns: dict[str, list]):
    """The records as a DataFrame indexed by (store, medication, day offset), last copy winning."""
    import pandas as pd

    frame = pd.DataFrame(columns)
    frame["offset"] = (pd.to_datetime(frame["business_day"]) - pd.Timestamp(START)).dt.days
    return (
        frame.drop_duplicates(["store_id", "medication_id", "offset"], keep="last")
        .set_index(["store_id", "medication_id", "offset"])
        .sort_index()
    )


def trailing(frame, store: str, medication: str, day: int, window: int, field: str = "units_dispensed"):
    """Sum of `field` over the `window` days ending on `day` (missing values skipped; None if none)."""
    rows = frame.loc[(store, medication)]
    values = rows.loc[(rows.index > day - window) & (rows.index <= day), field].dropna()
    return float(values.sum()) if len(values) else None
