"""A small, deterministic demand world for the trainer's tests.

Stores × medications × days of daily demand (Poisson around a per-entity
level, a weekly cycle and promotions), the trailing features the model sees
as of each day's end, and the label: demand over the days after it. Used as
an in-memory training-set source, so the training code can be tested
without a feature service.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from rxcast.model.timebase import day_number
from rxcast.trainer.dataset import FeatureSchema, LoadProgress, LoadRequest, TrainingSet

FEATURES = (
    "dispensed_1d",
    "dispensed_sum_7d",
    "dispensed_sum_28d",
    "unit_price",
    "on_promotion",
    "day_of_week",
    "medication_category",
    "store_region",
)
CATEGORICAL = frozenset({"medication_category", "store_region"})
CATEGORIES = ("analgesic", "antibiotic", "antiviral", "statin")
REGIONS = ("north", "south", "east")


@dataclasses.dataclass
class World:
    first_day: int
    stores: np.ndarray  # (S,) str
    medications: np.ndarray  # (M,) str
    category: np.ndarray  # (M,) str
    region: np.ndarray  # (S,) str
    demand: np.ndarray  # (S, M, D) units dispensed per day
    price: np.ndarray  # (M, D)
    promotion: np.ndarray  # (S, M, D) bool

    @property
    def days(self) -> int:
        return self.demand.shape[2]

    @property
    def last_day(self) -> int:
        return self.first_day + self.days - 1


def make_world(stores: int = 6, medications: int = 10, days: int = 120, seed: int = 7,
               first_day: str = "2024-01-01") -> World:  # fmt: skip
    rng = np.random.default_rng(seed)
    level = rng.gamma(2.0, 2.0, size=(stores, medications))
    weekday = 1.0 + 0.3 * np.sin(2 * np.pi * np.arange(days) / 7.0)
    promotion = rng.random((stores, medications, days)) < 0.08
    rate = level[:, :, None] * weekday[None, None, :] * np.where(promotion, 1.8, 1.0)
    price = np.round(rng.uniform(2, 40, size=(medications, 1)) * np.ones((1, days)), 2)
    return World(
        first_day=day_number(first_day, "first_day"),
        stores=np.array([f"S{i:03d}" for i in range(stores)]),
        medications=np.array([f"M{j:04d}" for j in range(medications)]),
        category=np.array([CATEGORIES[j % len(CATEGORIES)] for j in range(medications)]),
        region=np.array([REGIONS[i % len(REGIONS)] for i in range(stores)]),
        demand=rng.poisson(rate).astype(np.float64),
        price=price,
        promotion=promotion,
    )


def _trailing(values: np.ndarray, window: int) -> np.ndarray:
    """Sum over the `window` days ending at each day (fewer at the start)."""
    total = np.cumsum(values, axis=-1)
    shifted = np.concatenate([np.zeros(values.shape[:-1] + (window,)), total[..., :-window]], axis=-1)
    return total - shifted


def _following(values: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum over the `horizon` days after each day, and whether they all exist."""
    total = np.concatenate([np.zeros(values.shape[:-1] + (1,)), np.cumsum(values, axis=-1)], axis=-1)
    days = values.shape[-1]
    end = np.minimum(np.arange(days) + 1 + horizon, days)
    sums = total[..., end] - total[..., 1 : days + 1]
    return sums, np.arange(days) + horizon <= days - 1


class WorldSource:
    """A TrainingSetSource over a World, for tests of the training code."""

    def __init__(self, world: World, horizon_days: int = 7):
        self.world = world
        self.horizon_days = horizon_days
        self.requests: list[LoadRequest] = []

    def schema(self) -> FeatureSchema:
        return FeatureSchema(FEATURES, CATEGORICAL, horizon_days=self.horizon_days)

    def load(self, request: LoadRequest, progress: LoadProgress) -> TrainingSet:
        self.requests.append(request)
        w = self.world
        horizon = request.horizon_days or self.horizon_days
        lo = max(request.start_day, w.first_day) - w.first_day
        hi = min(request.end_day, w.last_day) - w.first_day
        day_index = np.arange(lo, hi + 1)
        S, M = len(w.stores), len(w.medications)
        label, complete = _following(w.demand, horizon)
        grid = np.stack(np.meshgrid(np.arange(S), np.arange(M), day_index, indexing="ij"), -1).reshape(-1, 3)
        s, m, d = grid[:, 0], grid[:, 1], grid[:, 2]
        keep = complete[d]
        s, m, d = s[keep], m[keep], d[keep]
        columns = {
            "dispensed_1d": w.demand[s, m, d],
            "dispensed_sum_7d": _trailing(w.demand, 7)[s, m, d],
            "dispensed_sum_28d": _trailing(w.demand, 28)[s, m, d],
            "unit_price": w.price[m, d],
            "on_promotion": w.promotion[s, m, d].astype(np.float64),
            "day_of_week": ((w.first_day + d + 3) % 7).astype(np.float64),
            "medication_category": w.category[m],
            "store_region": w.region[s],
        }
        progress(len(d), len(d))
        return TrainingSet(
            schema=self.schema(),
            columns=columns,
            labels=label[s, m, d],
            row_days=(w.first_day + d).astype(np.int64),
            store_ids=w.stores[s],
            medication_ids=w.medications[m],
            horizon_days=horizon,
        )
