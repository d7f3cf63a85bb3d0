"""The simulated chain's fixed domain knowledge: record fields, therapeutic
categories and regions, each with the traits that shape its demand."""

from __future__ import annotations

from dataclasses import dataclass, field

# InventoryRecord (protos/rxcast/feature/v1/feature.proto), in proto field order.
RECORD_COLUMNS = (
    "store_id",
    "medication_id",
    "business_day",
    "units_dispensed",
    "units_received",
    "units_on_hand",
    "prescriptions_written",
    "unit_price",
    "on_promotion",
    "stock_out",
    "medication_category",
    "store_region",
)
# Optional doubles in the proto: float64 columns where NaN means "not sent".
NUMERIC_FIELDS = ("units_dispensed", "units_received", "units_on_hand", "prescriptions_written", "unit_price")
FLAG_FIELDS = ("on_promotion", "stock_out")

# Day-of-week multipliers, Monday first. Dispensing dips at the weekend;
# prescriptions are written mostly on weekdays, when practices are open.
DISPENSING_WEEK = (1.15, 1.05, 1.0, 1.0, 1.1, 0.95, 0.75)
PRESCRIBING_WEEK = (1.3, 1.2, 1.15, 1.15, 1.1, 0.6, 0.5)

# Share of a prescription's fills on the day it is written and the days after:
# prescriptions lead dispensing by a few days.
FILL_DELAY_KERNEL = (0.45, 0.25, 0.12, 0.08, 0.05, 0.05)
# Share of prescriptions written that are filled at the same store.
FILL_RATE = 0.9


@dataclass(frozen=True)
class CategoryProfile:
    """How a therapeutic category's demand behaves."""

    weight: float  # share of the catalogue's medications
    rx_share: float  # share of demand that starts with a prescription written
    promos_per_year: float  # promotion campaigns per region and medication
    promo_lift: float  # non-prescription demand multiplier while on promotion
    price_elasticity: float  # of non-prescription demand
    flu: float = 0.0  # sensitivity to the regional flu season
    allergy: float = 0.0  # sensitivity to the spring pollen season
    summer: float = 0.0  # sensitivity to summer (sun, travel)
    median_price: float = 10.0


CATEGORIES: dict[str, CategoryProfile] = {
    "respiratory": CategoryProfile(0.12, 0.5, 4.0, 1.35, 0.8, flu=1.2, allergy=0.2, median_price=9.0),
    "antiviral": CategoryProfile(0.06, 0.95, 0.5, 1.05, 0.1, flu=3.0, median_price=45.0),
    "allergy": CategoryProfile(0.10, 0.3, 4.0, 1.5, 1.0, allergy=1.5, median_price=8.0),
    "cardiovascular": CategoryProfile(0.14, 0.9, 1.0, 1.05, 0.1, median_price=15.0),
    "diabetes": CategoryProfile(0.10, 0.92, 1.0, 1.05, 0.1, median_price=30.0),
    "analgesic": CategoryProfile(0.12, 0.25, 5.0, 1.5, 1.1, flu=0.3, median_price=6.0),
    "antibiotic": CategoryProfile(0.08, 0.98, 0.5, 1.0, 0.0, flu=0.6, median_price=12.0),
    "gastrointestinal": CategoryProfile(0.09, 0.4, 3.0, 1.35, 0.9, summer=0.3, median_price=7.0),
    "dermatology": CategoryProfile(0.08, 0.5, 3.0, 1.3, 0.8, summer=0.6, median_price=11.0),
    "mental_health": CategoryProfile(0.11, 0.95, 0.5, 1.0, 0.05, median_price=25.0),
}
# A category first seen with a launched medication: a prescription-only specialty drug.
NEW_CATEGORY = CategoryProfile(0.0, 0.9, 0.5, 1.05, 0.1, median_price=60.0)


def category_profile(name: str) -> CategoryProfile:
    return CATEGORIES.get(name, NEW_CATEGORY)


@dataclass(frozen=True)
class RegionProfile:
    """How a region's stores differ: size, season timing, weekly rhythm, mix."""

    name: str
    store_weight: float  # share of the chain's stores
    demand_scale: float
    price_factor: float
    flu_peak_day_of_year: int
    allergy_peak_day_of_year: int = 125
    weekly_pattern: tuple[float, ...] = DISPENSING_WEEK
    category_multipliers: dict[str, float] = field(default_factory=dict)


REGIONS: tuple[RegionProfile, ...] = (
    RegionProfile("north", 0.22, 1.0, 1.00, 40, 135, category_multipliers={"respiratory": 1.2}),
    RegionProfile("south", 0.20, 1.1, 0.96, 55, 110, category_multipliers={"allergy": 1.3, "dermatology": 1.2}),
    RegionProfile("east", 0.18, 0.9, 1.02, 30, 125),
    RegionProfile("west", 0.18, 1.2, 1.05, 45, 120, category_multipliers={"mental_health": 1.2}),
    RegionProfile("central", 0.22, 0.95, 0.98, 35, 130, category_multipliers={"cardiovascular": 1.2, "diabetes": 1.15}),
)
