"""A simulated world: the records the app would hold, the entities, the event
log, and the truth behind the records (latent demand, realized targets)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from rxcast.runtime.errors import InvalidArgument
from rxcast.sim.catalog import FLAG_FIELDS, NUMERIC_FIELDS, RECORD_COLUMNS
from rxcast.sim.generator import WARMUP_STEPS, DenseWorld, Plan, generate
from rxcast.sim.scenario import Scenario

HORIZON_DAYS = 7


@dataclass(frozen=True)
class EventLogEntry:
    """A drift event as it happened: its day and its parameters with defaults
    filled in and, for events that add entities, the ids they added
    (`medication_ids` or `store_ids`)."""

    kind: str
    day: int  # index from the scenario's first day
    business_day: str  # "YYYY-MM-DD"
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        from rxcast.sim.scenario import plain_data

        return {
            "kind": self.kind,
            "day": self.day,
            "business_day": self.business_day,
            "params": plain_data(self.params),
        }


def simulate(scenario: Scenario, progress: Callable[[int, int], None] | None = None) -> World:
    """Simulate `scenario`. Same scenario, same world. `progress(done, total)`
    is called as (store, medication) pairs are generated."""
    if not isinstance(scenario, Scenario):
        raise InvalidArgument(f"scenario: must be a Scenario, got {type(scenario).__name__}")
    plan, dense = generate(scenario, progress)
    return World(plan, dense)


class World:
    """The output of `simulate`.

    `records` has one row per (store, medication, business day) on which the
    pair exists, ordered by day, then store, then medication, with exactly the
    InventoryRecord field names as columns:

    - `business_day`: datetime64[ns] at midnight (the day; no time zone).
      `.dt.strftime("%Y-%m-%d")` gives the proto's string.
    - `store_id`, `medication_id`, `medication_category`, `store_region`:
      pandas categoricals of strings (`.astype(str)` for plain strings).
    - `units_dispensed`, `units_received`, `units_on_hand`,
      `prescriptions_written`, `unit_price`: float64; NaN means not reported.
    - `on_promotion`, `stock_out`: bool. `stock_out` means demand exceeded the
      stock available that day (so some patients were turned away).
    """

    def __init__(self, plan: Plan, dense: DenseWorld):
        self.scenario: Scenario = plan.scenario
        self.days: pd.DatetimeIndex = plan.dates[WARMUP_STEPS:]
        self._dense = dense
        self._plan = plan
        self.stores: pd.DataFrame = pd.DataFrame(
            {
                "store_id": plan.stores["store_id"],
                "store_region": [plan.regions[i].name for i in plan.stores["region_index"]],
                "size": plan.stores["size"],
                "lead_time_days": plan.stores["lead_time_days"],
                "safety_days": plan.stores["safety_days"],
                "first_day": self.days[np.maximum(plan.stores["first_step"].to_numpy() - WARMUP_STEPS, 0)],
            }
        )
        self.medications: pd.DataFrame = pd.DataFrame(
            {
                "medication_id": plan.medications["medication_id"],
                "medication_category": plan.medications["medication_category"],
                "popularity": plan.medications["popularity"],
                "base_price": plan.medications["base_price"],
                "units_per_prescription": plan.medications["units_per_prescription"],
                "first_day": self.days[np.maximum(plan.medications["first_step"].to_numpy() - WARMUP_STEPS, 0)],
            }
        )
        self.events: tuple[EventLogEntry, ...] = tuple(
            EventLogEntry(e.kind, e.day, self.days[e.day].strftime("%Y-%m-%d"), e.params) for e in plan.events
        )
        self._assemble_records()

    # -- records -----------------------------------------------------------

    def _assemble_records(self) -> None:
        n_days, n_stores, n_meds = self._dense.demand.shape
        exists = np.arange(n_days)[:, None, None] >= self._dense.first_day[None]
        if exists.all():
            flat = np.arange(exists.size, dtype=np.int64)
        else:
            flat = np.flatnonzero(exists)
        del exists
        pairs = n_stores * n_meds
        self._row_day = (flat // pairs).astype(np.int32)
        self._row_pair = (flat % pairs).astype(np.int64)
        store_code = (self._row_pair // n_meds).astype(np.int32)
        med_code = (self._row_pair % n_meds).astype(np.int32)

        columns: dict[str, Any] = {}
        columns["store_id"] = pd.Categorical.from_codes(store_code, categories=self.stores["store_id"])
        columns["medication_id"] = pd.Categorical.from_codes(med_code, categories=self.medications["medication_id"])
        columns["business_day"] = self.days.to_numpy()[self._row_day]
        for name in NUMERIC_FIELDS:
            values = self._dense.fields[name].reshape(-1)[flat].astype(np.float64)
            columns[name] = np.round(values, 2) if name == "unit_price" else values
        for name in FLAG_FIELDS:
            columns[name] = self._dense.fields[name].reshape(-1)[flat]
        categories = pd.Categorical(self.medications["medication_category"])
        columns["medication_category"] = pd.Categorical.from_codes(
            categories.codes[med_code], categories=categories.categories
        )
        regions = pd.Categorical(self.stores["store_region"])
        columns["store_region"] = pd.Categorical.from_codes(regions.codes[store_code], categories=regions.categories)
        self.records: pd.DataFrame = pd.DataFrame({name: columns[name] for name in RECORD_COLUMNS}, copy=False)
        self._day_bounds = np.searchsorted(self._row_day, np.arange(n_days + 1))

    def day_index(self, day: int | str | dt.date | np.datetime64 | pd.Timestamp) -> int:
        """The index of `day` in `days` (an int is taken as the index itself)."""
        if isinstance(day, int | np.integer) and not isinstance(day, bool):
            index = int(day)
        else:
            try:
                stamp = pd.Timestamp(day)
            except (ValueError, TypeError):
                raise InvalidArgument(f"day: must be a day as YYYY-MM-DD, got {day!r}") from None
            index = (stamp.normalize() - self.days[0]).days
        if not 0 <= index < len(self.days):
            raise InvalidArgument(
                f"day: {day!r} is outside the simulated days {self.days[0]:%Y-%m-%d}..{self.days[-1]:%Y-%m-%d}"
            )
        return index

    def records_for_day(self, day: int | str | dt.date | np.datetime64 | pd.Timestamp) -> pd.DataFrame:
        """The day's records, as the app would push them (index as in `records`)."""
        index = self.day_index(day)
        return self.records.iloc[self._day_bounds[index] : self._day_bounds[index + 1]].copy()

    # -- truth -------------------------------------------------------------

    def truth(self) -> pd.DataFrame:
        """Per record (same index as `records`): the latent `demand` before
        stock censoring, and `units_dispensed` and `prescriptions_written` as
        they truly were, before any reporting change."""
        pairs = self._row_pair

        def take(dense: np.ndarray) -> np.ndarray:
            return dense.reshape(len(self.days), -1)[self._row_day, pairs].astype(np.float64)

        return pd.DataFrame(
            {
                "demand": take(self._dense.demand),
                "units_dispensed": take(self._dense.true_dispensed),
                "prescriptions_written": take(self._dense.true_prescriptions),
            },
            index=self.records.index,
        )

    @cached_property
    def _dispensed_before(self) -> np.ndarray:
        """Units dispensed before each day (days + 1 × pairs), truly."""
        return _cumulative(self._dense.true_dispensed)

    @cached_property
    def _reported_before(self) -> tuple[np.ndarray, np.ndarray]:
        """As `_dispensed_before` from the reported field, with a running count of gaps."""
        reported = self._dense.fields["units_dispensed"]
        gaps = np.isnan(reported)
        return _cumulative(np.where(gaps, 0.0, reported)), _cumulative(gaps)

    def actuals(
        self, rows: pd.DataFrame | None = None, horizon: int = HORIZON_DAYS, observed: bool = False
    ) -> pd.Series:
        """The realized target: units dispensed over the business days
        (t, t + horizon] for each row stamped t, in the true world (or, with
        `observed`, summed from the reported records: NaN if any is missing).

        `rows` has store_id, medication_id and business_day columns (any
        dtype); None means every record. NaN where the window runs past the
        last simulated day or the pair does not exist yet at t."""
        if not isinstance(horizon, int | np.integer) or isinstance(horizon, bool) or horizon < 1:
            raise InvalidArgument(f"horizon: must be a positive integer, got {horizon!r}")
        if rows is None:
            day, pair, index = self._row_day.astype(np.int64), self._row_pair, self.records.index
        else:
            day, pair = self._locate(rows)
            index = rows.index
        n_days = len(self.days)
        complete = day + horizon < n_days
        start = np.where(complete, day + 1, 0)
        end = np.where(complete, day + 1 + horizon, 0)
        if observed:
            sums, gaps = self._reported_before
            value = sums[end, pair] - sums[start, pair]
            complete &= (gaps[end, pair] - gaps[start, pair]) == 0
        else:
            sums = self._dispensed_before
            value = sums[end, pair] - sums[start, pair]
        exists = day >= self._dense.first_day.reshape(-1)[pair]
        return pd.Series(np.where(complete & exists, value, np.nan), index=index, name=f"demand_next_{horizon}d")

    def _locate(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        missing = [c for c in ("store_id", "medication_id", "business_day") if c not in rows.columns]
        if missing:
            raise InvalidArgument(f"rows: missing column(s) {', '.join(missing)}")
        store = pd.Index(self.stores["store_id"]).get_indexer(rows["store_id"].astype(str))
        med = pd.Index(self.medications["medication_id"]).get_indexer(rows["medication_id"].astype(str))
        for name, codes in (("store_id", store), ("medication_id", med)):
            if (codes < 0).any():
                unknown = pd.unique(rows[name].astype(str).to_numpy()[codes < 0])[:5]
                raise InvalidArgument(f"rows.{name}: unknown id(s) {', '.join(unknown)}")
        try:
            stamps = pd.to_datetime(rows["business_day"]).dt.tz_localize(None).dt.normalize()
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"rows.business_day: not days as YYYY-MM-DD: {exc}") from None
        day = ((stamps - self.days[0]).dt.days).to_numpy()
        outside = (day < 0) | (day >= len(self.days))
        if outside.any():
            raise InvalidArgument(
                f"rows.business_day: {outside.sum()} row(s) outside the simulated days "
                f"{self.days[0]:%Y-%m-%d}..{self.days[-1]:%Y-%m-%d}"
            )
        return day.astype(np.int64), store.astype(np.int64) * len(self.medications) + med

    def __repr__(self) -> str:
        return (
            f"World({len(self.stores)} stores × {len(self.medications)} medications × {len(self.days)} days, "
            f"{len(self.records):,} records, {len(self.events)} events)"
        )


def _cumulative(dense: np.ndarray) -> np.ndarray:
    """Per day boundary and pair: the sum over earlier days (leading zero row)."""
    n_days = dense.shape[0]
    flat = dense.reshape(n_days, -1)
    out = np.zeros((n_days + 1, flat.shape[1]))
    np.cumsum(flat, axis=0, dtype=np.float64, out=out[1:])
    return out
