"""Daily demand and prescriptions for a chunk of (store, medication) pairs.

For every pair the latent need (expected units per day) is

    base level (store size × medication popularity × regional mix × pair effect)
    × season (flu, pollen, summer, by category and region)
    × trend (store and medication drift; a launch ramp for new medications)
    × exp(slow store noise + pair noise)          (AR(1) processes in log space)
    × demand shocks from their day on.

Part of the need arrives as prescriptions written (Poisson), which are filled
over the following days (the fill-delay kernel): prescriptions lead dispensing.
The rest is walk-in and refill demand, which follows the store's weekly rhythm,
promotions and price. Arrays are steps × stores × medications throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rxcast.sim.catalog import FILL_DELAY_KERNEL, FILL_RATE, PRESCRIBING_WEEK, category_profile
from rxcast.sim.inventory import ESTIMATE_DAYS, run_inventory
from rxcast.sim.streams import Stream

PAIR_EFFECT_SD = 0.3
NEED_NOISE = (0.9, 0.12)  # AR(1) coefficient and innovation sd of a pair's log need


@dataclass
class Masked:
    """A change from `step` on for the pairs where `mask` (stores × medications) holds."""

    step: int
    mask: np.ndarray
    value: float = 1.0  # the promotion lift, for promotion-effect changes
    curve: np.ndarray | None = None  # the demand multiplier per step, for shocks
    stream_key: int = 0  # the event's index, which keys its own random streams


@dataclass
class ChunkInputs:
    """Everything one chunk needs; stores and medications are the chunk's rows."""

    stores: pd.DataFrame
    medications: pd.DataFrame
    first_step: np.ndarray  # stores × medications: step from which the pair exists
    day_of_week: np.ndarray  # per step, Monday = 0
    flu: np.ndarray  # steps × stores: the store's regional flu activity
    pollen: np.ndarray  # steps × stores
    summer: np.ndarray  # per step
    dispensing_week: np.ndarray  # steps × stores: the store region's weekday multiplier
    store_noise: np.ndarray  # steps × stores, log scale
    region_mix: np.ndarray  # stores × medications: regional category multiplier
    price_factor: np.ndarray  # per store: the region's price level
    inflation: np.ndarray  # per step
    price_moves: np.ndarray  # steps × medications
    on_promotion: np.ndarray  # steps × stores × medications
    discount: np.ndarray  # steps × stores × medications
    rng: Callable[..., np.random.Generator]  # rng(Stream, *extra) for this chunk
    shocks: list[Masked] = field(default_factory=list)
    decoupled_prescriptions: list[Masked] = field(default_factory=list)
    promotion_effect: list[Masked] = field(default_factory=list)


def ar1_noise(rng: np.random.Generator, shape: tuple[int, ...], phi: float, sigma: float) -> np.ndarray:
    """A stationary AR(1) path along the first axis, independent across the others."""
    path = rng.standard_normal(shape) * sigma
    path[0] /= np.sqrt(1.0 - phi**2)
    for t in range(1, shape[0]):
        path[t] += phi * path[t - 1]
    return path


def _fill_convolution(prescriptions: np.ndarray) -> np.ndarray:
    """Units of prescriptions due for filling each day (causal)."""
    due = np.zeros_like(prescriptions, dtype=float)
    for lag, weight in enumerate(FILL_DELAY_KERNEL):
        due[lag:] += weight * prescriptions[: prescriptions.shape[0] - lag]
    return due


def simulate_chunk(x: ChunkInputs) -> dict[str, np.ndarray]:
    n_steps = len(x.day_of_week)
    n_stores, n_meds = x.first_step.shape
    profiles = [category_profile(c) for c in x.medications["medication_category"]]

    def per_med(attribute: str) -> np.ndarray:
        return np.array([getattr(p, attribute) for p in profiles])[None, None, :]

    rx_share, elasticity, lift = per_med("rx_share"), per_med("price_elasticity"), per_med("promo_lift")
    steps = np.arange(n_steps)
    years = steps[:, None, None] / 365.0
    meds, stores = x.medications, x.stores

    pair_effect = np.exp(
        x.rng(Stream.ENTITY_EFFECT).normal(0.0, PAIR_EFFECT_SD, (n_stores, n_meds)) - PAIR_EFFECT_SD**2 / 2
    )
    base = stores["size"].to_numpy()[:, None] * meds["popularity"].to_numpy()[None, :] * x.region_mix * pair_effect
    season = (
        1.0
        + per_med("flu") * x.flu[:, :, None]
        + per_med("allergy") * x.pollen[:, :, None]
        + per_med("summer") * x.summer[:, None, None]
    )
    trend = np.exp(
        years * (stores["trend_per_year"].to_numpy()[None, :, None] + meds["trend_per_year"].to_numpy()[None, None, :])
    )
    launch = meds["first_step"].to_numpy()[None, None, :]
    adoption_days = meds["adoption_days"].to_numpy()[None, None, :]
    since_launch = np.maximum(steps[:, None, None] - launch, 0)
    adoption = np.where(adoption_days > 0, 1.0 - np.exp(-3.0 * since_launch / np.maximum(adoption_days, 1)), 1.0)
    adoption = np.where(launch > 0, np.maximum(adoption, 0.05), 1.0)
    phi, sigma = NEED_NOISE
    pair_noise = ar1_noise(x.rng(Stream.NEED_NOISE), (n_steps, n_stores, n_meds), phi, sigma)
    log_noise_var = sigma**2 / (1 - phi**2)
    need = base * season * trend * adoption * np.exp(pair_noise + x.store_noise[:, :, None] - log_noise_var / 2)
    for shock in x.shocks:
        need *= np.where(shock.mask, shock.curve[:, None, None], 1.0)
    exists = steps[:, None, None] >= x.first_step[None]
    need = np.where(exists, need, 0.0)

    units_per_rx = meds["units_per_prescription"].to_numpy()[None, None, :]
    rx_rate = rx_share * need * np.asarray(PRESCRIBING_WEEK)[x.day_of_week][:, None, None] / units_per_rx
    prescriptions = x.rng(Stream.PRESCRIPTIONS).poisson(rx_rate)
    fills = x.rng(Stream.FILLS).poisson(FILL_RATE * units_per_rx * _fill_convolution(prescriptions))

    promo_multiplier = np.where(x.on_promotion, lift * (1.0 + elasticity * x.discount), 1.0)
    for change in x.promotion_effect:
        later = promo_multiplier[change.step :]
        later[:] = np.where(change.mask & x.on_promotion[change.step :], change.value, later)
    walk_in_rate = (
        (1.0 - rx_share)
        * need
        * x.dispensing_week[:, :, None]
        * promo_multiplier
        * x.price_moves[:, None, :] ** (-elasticity)
    )
    walk_in = x.rng(Stream.WALK_IN).poisson(walk_in_rate)
    demand = (fills + walk_in).astype(float)

    # What the app records as prescriptions written. Decoupled pairs report the
    # prescriptions of another decoupled pair of the chunk (a fresh draw): the
    # field keeps its distribution but no longer leads this pair's dispensing.
    recorded_rx = prescriptions.astype(float)
    for change in x.decoupled_prescriptions:
        pairs = np.flatnonzero(change.mask)
        source = np.arange(n_stores * n_meds)
        source[pairs] = x.rng(Stream.DECOUPLED_PRESCRIPTIONS, change.stream_key, 0).permutation(pairs)
        other_noise = ar1_noise(x.rng(Stream.DECOUPLED_NOISE, change.stream_key), pair_noise.shape, phi, sigma)
        other_rate = (rx_rate * np.exp(other_noise - pair_noise)).reshape(n_steps, -1)[:, source]
        other = x.rng(Stream.DECOUPLED_PRESCRIPTIONS, change.stream_key, 1).poisson(other_rate[change.step :])
        later = recorded_rx[change.step :]
        later[:] = np.where(change.mask, other.reshape(later.shape), later)

    price = (
        meds["base_price"].to_numpy()[None, None, :]
        * x.price_factor[None, :, None]
        * x.inflation[:, None, None]
        * x.price_moves[:, None, :]
        * (1.0 - x.discount)
    )

    n_pairs = n_stores * n_meds
    first_step = x.first_step.reshape(n_pairs)
    need_flat = need.reshape(n_steps, n_pairs)
    cumulative = np.vstack([np.zeros(n_pairs), np.cumsum(need_flat, axis=0)])
    window_end = np.minimum(first_step + ESTIMATE_DAYS, n_steps)
    start = np.minimum(first_step, n_steps)
    columns = np.arange(n_pairs)
    initial_rate = (cumulative[window_end, columns] - cumulative[start, columns]) / np.maximum(window_end - start, 1)
    stores_lead = np.repeat(stores["lead_time_days"].to_numpy(), n_meds)
    stores_safety = np.repeat(stores["safety_days"].to_numpy(), n_meds)
    trace = run_inventory(
        demand.reshape(n_steps, n_pairs),
        first_step,
        stores_lead,
        stores_safety,
        np.maximum(initial_rate, 0.05),
        x.rng(Stream.SUPPLY).random((n_steps, n_pairs)),
    )
    shape = (n_steps, n_stores, n_meds)
    return {
        "demand": demand,
        "units_dispensed": trace.dispensed.reshape(shape),
        "units_received": trace.received.reshape(shape),
        "units_on_hand": trace.on_hand.reshape(shape),
        "prescriptions_written": recorded_rx,
        "unit_price": price,
        "on_promotion": x.on_promotion,
        "stock_out": trace.stock_out.reshape(shape),
    }
