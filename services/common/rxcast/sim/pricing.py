"""Shelf prices and promotion campaigns."""

from __future__ import annotations

import numpy as np

INFLATION_PER_YEAR = 0.03
PRICE_CHANGES_PER_YEAR = 2.0
PROMO_DAYS = (7, 21)
PROMO_DISCOUNT = (0.10, 0.30)


def list_price_moves(rng: np.random.Generator, n_steps: int, n_medications: int) -> np.ndarray:
    """Relative list-price level per step and medication (1.0 at the start):
    occasional supplier price changes, mostly increases."""
    changes = rng.random((n_steps, n_medications)) < PRICE_CHANGES_PER_YEAR / 365.0
    sizes = rng.normal(0.03, 0.05, (n_steps, n_medications))
    return np.exp(np.cumsum(np.log1p(np.where(changes, sizes, 0.0)), axis=0))


def inflation(n_steps: int) -> np.ndarray:
    return np.exp(INFLATION_PER_YEAR * np.arange(n_steps) / 365.0)


def promotions(rng: np.random.Generator, starts_per_day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Promotion campaigns. `starts_per_day` holds, per step (first axis) and
    campaign slot (the other axes), the probability that a campaign starts
    when none runs; a campaign lasts 1-3 weeks at one discount.
    Returns (on_promotion, discount), both shaped like `starts_per_day`."""
    n_steps = starts_per_day.shape[0]
    start_draw = rng.random(starts_per_day.shape)
    lengths = rng.integers(PROMO_DAYS[0], PROMO_DAYS[1] + 1, starts_per_day.shape)
    discounts = rng.uniform(*PROMO_DISCOUNT, starts_per_day.shape)
    on = np.zeros(starts_per_day.shape, dtype=bool)
    discount = np.zeros(starts_per_day.shape)
    remaining = np.zeros(starts_per_day.shape[1:], dtype=np.int64)
    current = np.zeros(starts_per_day.shape[1:])
    for t in range(n_steps):
        begins = (remaining == 0) & (start_draw[t] < starts_per_day[t])
        remaining = np.where(begins, lengths[t], remaining)
        current = np.where(begins, discounts[t], current)
        on[t] = remaining > 0
        discount[t] = np.where(on[t], current, 0.0)
        remaining = np.maximum(remaining - 1, 0)
    return on, discount
