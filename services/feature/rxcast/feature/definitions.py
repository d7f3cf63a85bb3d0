"""The Feast feature repository, as code.

Entities `store` and `medication`; three feature views whose batch sources
are directories of append-only parquet files (one file per ingest batch):
- `inventory_daily` (store × medication): each business day's record and the
  rolling aggregates derived from the days before it (rxcast.feature.derive);
- `medication_attributes` (medication): the therapeutic category;
- `store_attributes` (store): the region.
A push source per view lets Feast clients write online rows the same way the
service does, and the feature service `demand_forecast` names the model's
features. Row timestamps are the END of the business day they describe
(rxcast.feature.timebase).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Bool, FeastType, Float64, Int64, String

PROJECT = "rxcast"
EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created_timestamp"
DEFAULT_FEATURE_SERVICE = "demand_forecast"
INVENTORY_VIEW = "inventory_daily"
MEDICATION_VIEW = "medication_attributes"
STORE_VIEW = "store_attributes"

#: A daily row older than this (from its business day's end) no longer
#: describes the entity: it is served with status OUTSIDE_TTL.
INVENTORY_TTL = timedelta(days=14)


@dataclass(frozen=True)
class FeatureDef:
    name: str
    dtype: FeastType
    description: str
    categorical: bool = False


INVENTORY_FEATURES: tuple[FeatureDef, ...] = (
    FeatureDef("dispensed_1d", Float64, "units dispensed on the as-of business day"),
    FeatureDef("dispensed_sum_7d", Float64, "units dispensed over the 7 days ending on the as-of day (naive baseline)"),
    FeatureDef("dispensed_sum_28d", Float64, "units dispensed over the 28 days ending on the as-of day"),
    FeatureDef("dispensed_mean_28d", Float64, "mean units dispensed per recorded day over the last 28 days"),
    FeatureDef("dispensed_max_28d", Float64, "largest single-day units dispensed over the last 28 days"),
    FeatureDef("prescriptions_1d", Float64, "prescriptions written on the as-of day"),
    FeatureDef("prescriptions_sum_7d", Float64, "prescriptions written over the last 7 days"),
    FeatureDef("prescriptions_sum_28d", Float64, "prescriptions written over the last 28 days"),
    FeatureDef("units_on_hand", Float64, "units on hand at the close of the as-of day"),
    FeatureDef("units_received", Float64, "units received on the as-of day"),
    FeatureDef("received_sum_7d", Float64, "units received over the last 7 days"),
    FeatureDef("unit_price", Float64, "unit price on the as-of day"),
    FeatureDef("on_promotion", Bool, "whether the medication was on promotion on the as-of day"),
    FeatureDef("promotion_days_7d", Int64, "days on promotion among the last 7"),
    FeatureDef("stock_out", Bool, "whether the medication ran out of stock on the as-of day"),
    FeatureDef("stockout_days_7d", Int64, "stock-out days among the last 7"),
    FeatureDef("stockout_days_28d", Int64, "stock-out days among the last 28"),
    FeatureDef("days_recorded_28d", Int64, "days with a record among the last 28"),
    FeatureDef("day_of_week", Int64, "weekday of the as-of day, 0 = Monday"),
    FeatureDef("day_of_year", Int64, "day of the year of the as-of day, 1-366"),
    FeatureDef("week_of_year", Int64, "ISO week of the as-of day, 1-53"),
)
MEDICATION_FEATURES = (
    FeatureDef("medication_category", String, "the medication's therapeutic category", categorical=True),
)
STORE_FEATURES = (FeatureDef("store_region", String, "the store's region", categorical=True),)


def _field(feature: FeatureDef) -> Field:
    tags = {"categorical": "true"} if feature.categorical else {}
    return Field(name=feature.name, dtype=feature.dtype, description=feature.description, tags=tags)


def view_directory(data_dir: Path, view: str) -> Path:
    """Where a feature view's offline parquet files live."""
    return Path(data_dir).resolve() / "offline" / view


def build_repo(data_dir: Path) -> list:
    """Every Feast object of the repository, with sources under `data_dir`."""
    store = Entity(
        name="store", join_keys=["store_id"], value_type=ValueType.STRING, description="a pharmacy of the chain"
    )
    medication = Entity(
        name="medication", join_keys=["medication_id"], value_type=ValueType.STRING, description="a medication (SKU)"
    )

    def view(name, entities, features, ttl, description):
        batch = FileSource(
            name=f"{name}_files",
            path=str(view_directory(data_dir, name)),
            file_format=ParquetFormat(),
            timestamp_field=EVENT_TIMESTAMP,
            created_timestamp_column=CREATED_TIMESTAMP,
            description=f"append-only parquet files of {name}, one per ingest batch",
        )
        push = PushSource(name=f"{name}_push", batch_source=batch, description=f"online writes of {name}")
        return push, FeatureView(
            name=name,
            entities=entities,
            ttl=ttl,
            schema=[_field(f) for f in features],
            source=push,
            online=True,
            description=description,
        )

    inventory_push, inventory = view(
        INVENTORY_VIEW, [store, medication], INVENTORY_FEATURES, INVENTORY_TTL,
        "each business day's inventory record and the rolling aggregates up to it",
    )  # fmt: skip
    medication_push, medication_attrs = view(
        MEDICATION_VIEW, [medication], MEDICATION_FEATURES, timedelta(0), "medication attributes"
    )
    store_push, store_attrs = view(STORE_VIEW, [store], STORE_FEATURES, timedelta(0), "store attributes")
    demand = FeatureService(
        name=DEFAULT_FEATURE_SERVICE,
        features=[inventory, medication_attrs, store_attrs],
        description="the demand model's features",
    )
    return [
        store, medication,
        inventory_push, medication_push, store_push,
        inventory, medication_attrs, store_attrs,
        demand,
    ]  # fmt: skip
