"""Store inventory: what a pharmacy can dispense given what it ordered.

Each store reviews every medication daily with a reorder-point policy: it
tracks its demand rate as a moving average of what it dispensed, and when
stock on hand plus stock on order falls below the rate times (lead time +
safety days), it orders up to a week more than that. Orders arrive after the
store's lead time; now and then the warehouse ships only half. Dispensing is
censored by stock: dispensed = min(demand, on hand + received today).

The recursion steps through days, vectorized over all entities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE_SMOOTHING = 0.1  # weight of today in the store's demand-rate average
COVER_DAYS = 7.0  # extra days of demand an order covers beyond the reorder point
SHORT_SHIPMENT_RATE = 0.02  # share of orders the warehouse ships half of
ESTIMATE_DAYS = 28  # days of expected demand a store stocks for on opening/launch


@dataclass
class InventoryTrace:
    """Per step and entity (steps × entities)."""

    dispensed: np.ndarray
    received: np.ndarray
    on_hand: np.ndarray
    stock_out: np.ndarray


def run_inventory(
    demand: np.ndarray,
    first_step: np.ndarray,
    lead_days: np.ndarray,
    safety_days: np.ndarray,
    initial_rate: np.ndarray,
    supply_draw: np.ndarray,
) -> InventoryTrace:
    """Simulate stock for `demand` (steps × entities, whole units). Entity e
    opens at `first_step[e]` with `initial_rate[e]` as its expected daily demand
    and stock for its lead time, safety days and half the cover."""
    n_steps, n = demand.shape
    slots = int(lead_days.max()) + 1
    pipeline = np.zeros((slots, n))
    on_hand = np.zeros(n)
    rate = np.zeros(n)
    columns = np.arange(n)
    cover_to_reorder = lead_days + safety_days
    trace = InventoryTrace(
        dispensed=np.empty((n_steps, n)),
        received=np.empty((n_steps, n)),
        on_hand=np.empty((n_steps, n)),
        stock_out=np.empty((n_steps, n), dtype=bool),
    )
    openings = {int(s): np.flatnonzero(first_step == s) for s in np.unique(first_step) if s < n_steps}
    for t in range(n_steps):
        opening = openings.get(t)
        if opening is not None:
            rate[opening] = initial_rate[opening]
            on_hand[opening] = np.ceil(initial_rate[opening] * (cover_to_reorder[opening] + COVER_DAYS / 2))
        slot = t % slots
        received = pipeline[slot].copy()
        pipeline[slot] = 0.0
        available = on_hand + received
        dispensed = np.minimum(demand[t], available)
        stock_out = demand[t] > available
        on_hand = available - dispensed
        # A store that turned patients away does not read that as falling demand.
        seen = np.where(stock_out, np.maximum(dispensed, rate), dispensed)
        rate += RATE_SMOOTHING * (seen - rate)
        position = on_hand + pipeline.sum(axis=0)
        reorder_point = rate * cover_to_reorder
        order = np.where(position < reorder_point, np.ceil(reorder_point + rate * COVER_DAYS - position), 0.0)
        order = np.where(supply_draw[t] < SHORT_SHIPMENT_RATE, np.floor(order / 2), order)
        pipeline[(t + lead_days) % slots, columns] += order
        trace.dispensed[t] = dispensed
        trace.received[t] = received
        trace.on_hand[t] = on_hand
        trace.stock_out[t] = stock_out
    return trace
