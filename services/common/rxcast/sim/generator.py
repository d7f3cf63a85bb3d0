"""Turns a Scenario into dense steps × stores × medications arrays.

The chain grows in groups (entities.py); every (store group, medication group)
block is generated on its own, in chunks of stores, from streams keyed by the
block and the chunk. A warm-up period before the first day lets prescriptions
in flight and inventory settle; it is simulated and then dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rxcast.sim import entities, pricing, seasons
from rxcast.sim.catalog import NUMERIC_FIELDS, REGIONS, RegionProfile, category_profile
from rxcast.sim.demand import ChunkInputs, Masked, ar1_noise, simulate_chunk
from rxcast.sim.observation import apply_observation_events
from rxcast.sim.scenario import Scenario
from rxcast.sim.streams import Stream, stream

WARMUP_STEPS = 35
CHUNK_PAIRS = 8192  # pairs generated together; bounds the working memory
STORE_NOISE = (0.97, 0.03)  # AR(1) of a store's log footfall

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PlannedEvent:
    index: int
    kind: str
    day: int
    params: dict[str, Any]

    @property
    def step(self) -> int:
        return WARMUP_STEPS + self.day


@dataclass
class Plan:
    scenario: Scenario
    dates: pd.DatetimeIndex  # one per step, warm-up included
    stores: pd.DataFrame
    medications: pd.DataFrame
    regions: list[RegionProfile]
    store_groups: list[entities.Group]
    medication_groups: list[entities.Group]
    events: list[PlannedEvent]
    region_group: list[tuple[int, int]] = field(default_factory=list)  # per region: (group key, index in group)

    @property
    def n_steps(self) -> int:
        return len(self.dates)


def plan(scenario: Scenario) -> Plan:
    start = dt.date.fromisoformat(scenario.start_day) - dt.timedelta(days=WARMUP_STEPS)
    dates = pd.date_range(start, periods=WARMUP_STEPS + scenario.n_days, freq="D")
    seed = scenario.seed
    stores = entities.base_stores(seed, scenario.n_stores).assign(first_step=0)
    meds = entities.medications(seed, entities.BASE_GROUP, 0, scenario.n_medications, None).assign(
        first_step=0, adoption_days=0
    )
    store_groups = [entities.Group(entities.BASE_GROUP, 0, len(stores), 0)]
    med_groups = [entities.Group(entities.BASE_GROUP, 0, len(meds), 0)]
    regions = list(REGIONS)
    region_group = [(entities.BASE_GROUP, i) for i in range(len(REGIONS))]
    events = []
    for index, event in enumerate(scenario.events):
        params = event.resolved_params()
        planned = PlannedEvent(index, event.kind, int(event.day), params)
        key = index + 1
        if event.kind == "new_medication":
            added = entities.medications(
                seed, key, len(meds), params["n"], params["category"], params["popularity_scale"]
            ).assign(first_step=planned.step, adoption_days=params["adoption_days"])
            med_groups.append(entities.Group(key, len(meds), len(meds) + len(added), planned.step))
            meds = pd.concat([meds, added], ignore_index=True)
            params["medication_ids"] = added["medication_id"].tolist()
        elif event.kind == "new_region":
            regions.append(entities.new_region_profile(params))
            region_group.append((key, 0))
            added = entities.region_stores(
                seed, key, len(stores), params["n_stores"], len(regions) - 1, params["demand_scale"]
            ).assign(first_step=planned.step)
            store_groups.append(entities.Group(key, len(stores), len(stores) + len(added), planned.step))
            stores = pd.concat([stores, added], ignore_index=True)
            params["store_ids"] = added["store_id"].tolist()
        events.append(planned)
    return Plan(scenario, dates, stores, meds, regions, store_groups, med_groups, events, region_group)


def _region_curves(p: Plan) -> tuple[np.ndarray, np.ndarray]:
    flu, pollen = [], []
    for region, (group, index) in zip(p.regions, p.region_group, strict=True):
        f, a = seasons.region_seasons(stream(p.scenario.seed, Stream.REGION_SEASON, group, index), region, p.dates)
        flu.append(f)
        pollen.append(a)
    return np.stack(flu, axis=1), np.stack(pollen, axis=1)


def shock_curve(n_steps: int, step: int, params: dict[str, Any]) -> np.ndarray:
    """Multiplier per step: 1 before the shock, ramping linearly to the full
    multiplier, held for the duration, then ramping back down."""
    t = np.arange(n_steps, dtype=float) - step
    ramp = max(params["ramp_days"], 1)
    level = np.clip((t + 1) / ramp, 0.0, 1.0) if params["ramp_days"] else (t >= 0).astype(float)
    level = np.where(t >= 0, level, 0.0)
    if params["duration_days"] is not None:
        end = params["ramp_days"] + params["duration_days"]
        level = np.minimum(level, np.clip(1.0 - (t - end) / ramp, 0.0, 1.0))
    return 1.0 + (params["multiplier"] - 1.0) * level


def _pair_mask(stores: pd.DataFrame, meds: pd.DataFrame, regions: list[RegionProfile], params: dict) -> np.ndarray:
    store_ok = np.ones(len(stores), dtype=bool)
    if params.get("regions"):
        names = np.array([regions[i].name for i in stores["region_index"]])
        store_ok = np.isin(names, params["regions"])
    med_ok = np.ones(len(meds), dtype=bool)
    if params.get("categories"):
        med_ok = meds["medication_category"].isin(params["categories"]).to_numpy()
    return store_ok[:, None] & med_ok[None, :]


@dataclass
class DenseWorld:
    """Per day × store × medication: the observed fields plus the truth."""

    fields: dict[str, np.ndarray]  # the record fields as the app reports them
    demand: np.ndarray  # latent demand (before stock censoring)
    true_dispensed: np.ndarray  # units dispensed in the true world (before reporting changes)
    true_prescriptions: np.ndarray  # prescriptions written in the true world
    first_day: np.ndarray  # stores × medications: first day index with a record


def generate(scenario: Scenario, progress: Progress | None = None) -> tuple[Plan, DenseWorld]:
    p = plan(scenario)
    seed, n_steps, n_days = scenario.seed, p.n_steps, scenario.n_days
    n_stores, n_meds = len(p.stores), len(p.medications)
    shape = (n_days, n_stores, n_meds)
    out = {name: np.empty(shape, dtype=np.float32) for name in NUMERIC_FIELDS if name != "unit_price"}
    out["unit_price"] = np.empty(shape)
    out["on_promotion"] = np.empty(shape, dtype=bool)
    out["stock_out"] = np.empty(shape, dtype=bool)
    demand = np.empty(shape, dtype=np.float32)

    flu, pollen = _region_curves(p)
    summer = seasons.summer(p.dates)
    day_of_week = p.dates.dayofweek.to_numpy()
    weekly = np.array([np.asarray(r.weekly_pattern) / np.mean(r.weekly_pattern) for r in p.regions])
    inflation = pricing.inflation(n_steps)
    store_region = p.stores["region_index"].to_numpy()
    categories = p.medications["medication_category"].to_numpy()
    region_mix = np.array([[r.category_multipliers.get(c, 1.0) for c in categories] for r in p.regions])
    phi, sigma = STORE_NOISE
    store_noise = {
        g.key: ar1_noise(stream(seed, Stream.STORE_NOISE, g.key), (n_steps, len(g)), phi, sigma) for g in p.store_groups
    }
    price_moves = {
        g.key: pricing.list_price_moves(stream(seed, Stream.PRICE, g.key), n_steps, len(g)) for g in p.medication_groups
    }

    total_pairs = n_stores * n_meds
    done = 0
    for sg in p.store_groups:
        group_regions = sorted(set(store_region[sg.slice]))
        for mg in p.medication_groups:
            meds = p.medications.iloc[mg.slice]
            promo_rate = (
                np.array([category_profile(c).promos_per_year for c in meds["medication_category"]])
                * meds["promo_propensity"].to_numpy()
                / 365.0
            )
            starts = np.broadcast_to(promo_rate, (n_steps, len(group_regions), len(meds)))
            on_promo, discount = pricing.promotions(stream(seed, Stream.PROMOTION, sg.key, mg.key), starts)
            stores_per_chunk = max(1, CHUNK_PAIRS // len(meds))
            for chunk, lo in enumerate(range(sg.start, sg.stop, stores_per_chunk)):
                hi = min(lo + stores_per_chunk, sg.stop)
                stores = p.stores.iloc[lo:hi]
                regions_here = store_region[lo:hi]
                local_region = np.searchsorted(group_regions, regions_here)
                first_step = np.maximum(
                    stores["first_step"].to_numpy()[:, None], meds["first_step"].to_numpy()[None, :]
                )

                def chunk_rng(kind: Stream, *extra: int, _key=(sg.key, mg.key, chunk)) -> np.random.Generator:
                    return stream(seed, kind, *_key, *extra)

                inputs = ChunkInputs(
                    stores=stores,
                    medications=meds,
                    first_step=first_step,
                    day_of_week=day_of_week,
                    flu=flu[:, regions_here],
                    pollen=pollen[:, regions_here],
                    summer=summer,
                    dispensing_week=weekly[regions_here][:, day_of_week].T,
                    store_noise=store_noise[sg.key][:, lo - sg.start : hi - sg.start],
                    region_mix=region_mix[regions_here][:, mg.slice],
                    price_factor=np.array([p.regions[r].price_factor for r in regions_here]),
                    inflation=inflation,
                    price_moves=price_moves[mg.key],
                    on_promotion=on_promo[:, local_region, :],
                    discount=discount[:, local_region, :],
                    rng=chunk_rng,
                )
                _attach_world_events(p, inputs, chunk_rng)
                result = simulate_chunk(inputs)
                target = (slice(None), slice(lo, hi), mg.slice)
                for name, values in out.items():
                    values[target] = result[name][WARMUP_STEPS:]
                demand[target] = result["demand"][WARMUP_STEPS:]
                done += (hi - lo) * len(meds)
                if progress is not None:
                    progress(done, total_pairs)

    # Reporting changes copy the fields they touch, so these stay the truth.
    true_dispensed = out["units_dispensed"]
    true_prescriptions = out["prescriptions_written"]
    observed = apply_observation_events(p, out)
    first_day = np.maximum(p.stores["first_step"].to_numpy()[:, None], p.medications["first_step"].to_numpy()[None, :])
    first_day = np.maximum(first_day - WARMUP_STEPS, 0)
    return p, DenseWorld(observed, demand, true_dispensed, true_prescriptions, first_day)


def _attach_world_events(p: Plan, inputs: ChunkInputs, chunk_rng) -> None:
    """The events that change the true world, as masks over the chunk's pairs."""
    for e in p.events:
        if e.kind == "demand_shock":
            mask = _pair_mask(inputs.stores, inputs.medications, p.regions, e.params)
            inputs.shocks.append(Masked(e.step, mask, curve=shock_curve(p.n_steps, e.step, e.params)))
        elif e.kind == "concept_change":
            mask = _pair_mask(inputs.stores, inputs.medications, p.regions, e.params)
            if e.params["strength"] < 1.0:
                picked = chunk_rng(Stream.OBSERVATION, e.index).random(mask.shape) < e.params["strength"]
                mask = mask & picked
            change = Masked(e.step, mask, value=e.params["promo_lift"], stream_key=e.index)
            if e.params["mode"] == "decouple_prescriptions":
                inputs.decoupled_prescriptions.append(change)
            else:
                inputs.promotion_effect.append(change)
