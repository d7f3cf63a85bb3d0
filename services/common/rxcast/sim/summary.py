"""Tables that describe a world: per day, and per drift event around its day."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rxcast.sim.catalog import NUMERIC_FIELDS
from rxcast.sim.world import World

WINDOW_DAYS = 14  # days compared before and after an event


def daily_summary(world: World) -> pd.DataFrame:
    """One row per business day: what the app recorded across the chain."""
    r = world.records
    by_day = r.groupby("business_day", sort=True)
    table = pd.DataFrame(
        {
            "records": by_day.size(),
            "stores": by_day["store_id"].nunique(),
            "medications": by_day["medication_id"].nunique(),
            "units_dispensed": by_day["units_dispensed"].sum(min_count=1),
            "prescriptions_written": by_day["prescriptions_written"].sum(min_count=1),
            "mean_on_hand": by_day["units_on_hand"].mean(),
            "mean_price": by_day["unit_price"].mean(),
            "promotion_rate": by_day["on_promotion"].mean(),
            "stock_out_rate": by_day["stock_out"].mean(),
            "missing_values": r[list(NUMERIC_FIELDS)].isna().sum(axis=1).groupby(r["business_day"]).sum(),
        }
    )
    table.index = table.index.strftime("%Y-%m-%d")
    table.index.name = "business_day"
    return table


def event_summary(world: World) -> pd.DataFrame:
    """One row per event: what it touches and how that looked in the
    `WINDOW_DAYS` before and after its day."""
    rows = []
    r = world.records
    day_index = ((r["business_day"] - world.days[0]).dt.days).to_numpy()
    for event in world.events:
        before = (day_index >= event.day - WINDOW_DAYS) & (day_index < event.day)
        after = (day_index >= event.day) & (day_index < event.day + WINDOW_DAYS)
        p = event.params
        watch, selected, stat = "units_dispensed", np.ones(len(r), dtype=bool), "mean"
        if event.kind == "new_medication":
            selected = r["medication_id"].isin(p["medication_ids"]).to_numpy()
            target = f"{len(p['medication_ids'])} medications ({p['category'] or 'existing categories'})"
            stat = "records"
        elif event.kind == "new_region":
            selected = r["store_id"].isin(p["store_ids"]).to_numpy()
            target = f"{len(p['store_ids'])} stores in {p['region']}"
            stat = "records"
        elif event.kind in ("demand_shock", "concept_change"):
            if p["categories"]:
                selected = r["medication_category"].isin(p["categories"]).to_numpy()
            target = ", ".join(p["categories"] or ["all categories"])
            if event.kind == "concept_change":
                watch = "prescriptions_written"
                target = f"{p['mode']} ({target})"
        else:
            watch = p["field"]
            target = watch
            stat = {"unit_change": "mean", "missing_values": "missing", "constant_column": "distinct"}[event.kind]
        values = r[watch].to_numpy()
        rows.append(
            {
                "kind": event.kind,
                "day": event.day,
                "business_day": event.business_day,
                "touches": target,
                "field": watch,
                "statistic": stat,
                "before": _measure(values[before & selected], stat),
                "after": _measure(values[after & selected], stat),
            }
        )
    return pd.DataFrame(
        rows, columns=["kind", "day", "business_day", "touches", "field", "statistic", "before", "after"]
    )


def _measure(values: np.ndarray, stat: str) -> float:
    if stat == "records":
        return float(len(values))
    if not len(values):
        return np.nan
    if stat == "missing":
        return float(np.isnan(values.astype(float)).mean())
    if stat == "distinct":
        return float(pd.Series(values).nunique())
    return float(np.nanmean(values.astype(float)))
