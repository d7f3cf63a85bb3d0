"""Daily totals of a record field per group: a day's level in a part of the
chain (a store, a region, a medication category), to compare with other days
of the history. The drift service judges each category's demand against the
same weekday a year before with them; the history is the feature service's,
which holds every ingested day, while the drift service only sees what is served."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rxcast.feature.history import RecordHistory
from rxcast.feature.records import NUMBERS
from rxcast.model import timebase
from rxcast.runtime.errors import InvalidArgument

#: The keys a total can be grouped by.
GROUP_KEYS = ("store_id", "store_region", "medication_category")
#: Most business days one call totals.
MAX_DAYS = 1000
#: Most (entity, day) cells read from the history at once.
CELLS_PER_READ = 250_000


@dataclass(frozen=True)
class DailyTotals:
    """Totals ordered by day, then groups; `groups[i]` holds row i's value of each key."""

    days: np.ndarray  # int64 epoch days
    groups: list[tuple[str, ...]]
    sums: np.ndarray  # float64
    counts: np.ndarray  # int64
    latest_day: int | None

    def __len__(self) -> int:
        return len(self.days)


def parse_request(field: str, group_by: Sequence[str], business_days: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The group keys and the distinct epoch days asked for; InvalidArgument on bad input."""
    if field not in NUMBERS:
        raise InvalidArgument(f"field: must be one of {', '.join(NUMBERS)}, got {field[:60]!r}")
    keys = list(group_by)
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown:
        raise InvalidArgument(f"group_by: {unknown[0][:60]!r} is not one of {', '.join(GROUP_KEYS)}")
    if len(set(keys)) != len(keys):
        raise InvalidArgument("group_by: each key at most once")
    if len(business_days) > MAX_DAYS:
        raise InvalidArgument(f"business_days: at most {MAX_DAYS} days per call, got {len(business_days)}")
    days, valid = timebase.parse_days(list(business_days))
    if not valid.all():
        bad = list(business_days)[int(np.flatnonzero(~valid)[0])]
        raise InvalidArgument(f"business_days: must be dates as YYYY-MM-DD, got {str(bad)[:40]!r}")
    return keys, np.unique(days)


def daily_totals(history: RecordHistory, field: str, keys: list[str], days: np.ndarray) -> DailyTotals:
    """Sum and count of `field` per (day, group) over the records holding a value."""
    codes = history.all_codes()
    latest = history.max_day
    if not codes.size or not days.size:
        return DailyTotals(np.zeros(0, np.int64), [], np.zeros(0), np.zeros(0, np.int64), latest)
    stores = history.store_ids(codes).astype(str)
    medications = history.medication_ids(codes).astype(str)
    columns = {
        "store_id": stores,
        "store_region": _attribute(history.regions, stores),
        "medication_category": _attribute(history.categories, medications),
    }
    # Each entity's group as one integer code (the unique rows of its key values).
    if keys:
        table = np.stack([columns[k] for k in keys], axis=1)
        names, group = np.unique(table, axis=0, return_inverse=True)
        group = group.reshape(-1)
    else:
        names, group = np.zeros((1, 0), dtype=str), np.zeros(codes.size, dtype=np.int64)
    size = len(names) * days.size
    sums, counts = np.zeros(size), np.zeros(size, dtype=np.int64)
    # Days in slices, so a long span of a large chain reads a bounded grid at a time.
    step = max(1, CELLS_PER_READ // codes.size)
    for first in range(0, days.size, step):
        part = np.arange(first, min(first + step, days.size))
        grid = history.gather(codes[:, None], days[part][None, :])
        values = grid[field]
        has = grid["present"] & ~np.isnan(values)
        bins = (group[:, None] * days.size + part[None, :]).ravel()  # cell (entity, day) → bin (group, day)
        sums += np.bincount(bins, np.where(has, values, 0.0).ravel(), minlength=size)
        counts += np.bincount(bins, has.ravel(), minlength=size).astype(np.int64)
    # Day-major order, groups sorted within a day.
    order = np.arange(size).reshape(len(names), days.size).T.ravel()
    kept = order[counts[order] > 0]
    return DailyTotals(
        days=days[kept % days.size],
        groups=[tuple(row) for row in names[kept // days.size].tolist()],
        sums=sums[kept],
        counts=counts[kept],
        latest_day=latest,
    )


def _attribute(attribute, ids: np.ndarray) -> np.ndarray:
    """Each id's newest attribute value ("" where none was given)."""
    distinct, index = np.unique(ids, return_inverse=True)
    values = np.asarray([attribute.get(key) or "" for key in distinct.tolist()] + [""], dtype=str)
    return values[index.reshape(-1)]
