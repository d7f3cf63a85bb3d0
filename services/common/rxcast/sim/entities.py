"""The chain's stores, medications and regions, grown by the scenario's events.

Entities come in groups: group 0 is the chain at the start; each event that
adds stores or medications adds one group, keyed by the event's position.
Each group draws its attributes from its own streams, so a group never changes
because another one exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rxcast.sim.catalog import CATEGORIES, REGIONS, RegionProfile, category_profile
from rxcast.sim.streams import Stream, stream

BASE_GROUP = 0


@dataclass(frozen=True)
class Group:
    """A contiguous run of stores or medications that entered together."""

    key: int  # 0 for the starting chain, event index + 1 for an event's additions
    start: int  # position of the first member in the stores/medications table
    stop: int
    first_step: int  # simulation step from which the members exist

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)

    def __len__(self) -> int:
        return self.stop - self.start


def base_stores(seed: int, n: int) -> pd.DataFrame:
    rng = stream(seed, Stream.STORES, BASE_GROUP)
    weights = np.array([r.store_weight for r in REGIONS])
    region_index = rng.choice(len(REGIONS), size=n, p=weights / weights.sum())
    return _stores_frame(rng, 0, region_index, [r.demand_scale for r in REGIONS])


def region_stores(
    seed: int, group: int, first_number: int, n: int, region_index: int, demand_scale: float
) -> pd.DataFrame:
    rng = stream(seed, Stream.STORES, group)
    scales = {region_index: demand_scale}
    return _stores_frame(rng, first_number, np.full(n, region_index), scales)


def _stores_frame(rng: np.random.Generator, first_number: int, region_index: np.ndarray, scales) -> pd.DataFrame:
    n = len(region_index)
    scale = np.array([scales[i] for i in region_index], dtype=float)
    return pd.DataFrame(
        {
            "store_id": [f"S{first_number + i + 1:04d}" for i in range(n)],
            "region_index": region_index.astype(np.int64),
            "size": rng.lognormal(0.0, 0.35, n) * scale,
            "lead_time_days": rng.choice([1, 2, 3, 4], size=n, p=[0.3, 0.35, 0.25, 0.1]),
            # Days of demand a store keeps beyond the lead time: lean stores run out more.
            "safety_days": rng.uniform(0.5, 3.0, n),
            "trend_per_year": rng.normal(0.02, 0.05, n),
        }
    )


def medications(
    seed: int,
    group: int,
    first_number: int,
    n: int,
    category: str | None,
    popularity_scale: float = 1.0,
) -> pd.DataFrame:
    rng = stream(seed, Stream.MEDICATIONS, group)
    names = list(CATEGORIES)
    if category is None:
        weights = np.array([CATEGORIES[c].weight for c in names])
        categories = [names[i] for i in rng.choice(len(names), size=n, p=weights / weights.sum())]
    else:
        categories = [category] * n
    profiles = [category_profile(c) for c in categories]
    return pd.DataFrame(
        {
            "medication_id": [f"M{first_number + i + 1:04d}" for i in range(n)],
            "medication_category": categories,
            # Mean daily units at an average store: many slow movers, a few fast.
            "popularity": rng.lognormal(0.3, 0.9, n) * popularity_scale,
            "base_price": np.round(np.array([p.median_price for p in profiles]) * rng.lognormal(0.0, 0.4, n), 2),
            "units_per_prescription": rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1]),
            "promo_propensity": rng.uniform(0.3, 1.7, n),
            "trend_per_year": rng.normal(0.0, 0.12, n),
        }
    )


def new_region_profile(params: dict) -> RegionProfile:
    return RegionProfile(
        name=params["region"],
        store_weight=0.0,
        demand_scale=params["demand_scale"],
        price_factor=params["price_factor"],
        flu_peak_day_of_year=params["flu_peak_day_of_year"],
        allergy_peak_day_of_year=params["allergy_peak_day_of_year"],
        weekly_pattern=tuple(params["weekly_pattern"]),
        category_multipliers=dict(params["category_multipliers"]),
    )
