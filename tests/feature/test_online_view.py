"""The in-memory online view against Feast's online store (SQLite here, Redis in
test_redis.py): the same answers as reading Feast for every feature, status
and event time, freshness and TTL, a rebuild from the store at restart, and
write-through on ingest and Materialize."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from feast.data_source import PushMode

from rxcast.feature.config import FeatureConfig
from rxcast.feature.definitions import CREATED_TIMESTAMP, EVENT_TIMESTAMP, INVENTORY_VIEW
from rxcast.feature.offline import NOT_FOUND, NULL_VALUE, OUTSIDE_TTL, PRESENT
from rxcast.feature.online import read_online
from rxcast.feature.store import InventoryFeatureStore
from tests.feature.records import day_end_ms, take, world


def open_store(data_dir, **settings) -> InventoryFeatureStore:
    return InventoryFeatureStore.open(FeatureConfig(data_dir=str(data_dir), **settings))


def stale_world() -> dict[str, list]:
    """3 stores x 4 medications over 30 days, except s002 whose records stop on day 9,
    so its daily row is older than the 14-day TTL; one entity's latest numbers are missing."""
    columns = world(3, 4, 30, seed=11)
    keep = [
        i
        for i, (s, d) in enumerate(zip(columns["store_id"], columns["business_day"]))
        if not (s == "s002" and d > "2025-01-10")
    ]
    columns = take(columns, keep)
    for i, (s, m, d) in enumerate(zip(columns["store_id"], columns["medication_id"], columns["business_day"])):
        if (s, m) == ("s001", "m003") and d == "2025-01-30":
            columns["units_dispensed"][i] = float("nan")
            columns["unit_price"][i] = float("nan")
    return columns


def request_keys() -> tuple[list[str], list[str]]:
    """Every entity, a repeat, and three that do not exist (unknown store, medication, both)."""
    stores = [f"s{i:03d}" for i in range(3) for _ in range(4)] + ["s000", "s009", "s000", "nobody"]
    medications = [f"m{j:03d}" for _ in range(3) for j in range(4)] + ["m001", "m000", "m009", "none"]
    return stores, medications


def feast_answer(store: InventoryFeatureStore, stores, medications):
    """The same request read from Feast's online store, without the in-memory view."""
    plan = store.plan((), "")
    keys = {"store_id": stores, "medication_id": medications}
    return read_online(store.feast, plan, keys, store._ttl_now_ms())


def assert_same(ours, theirs) -> None:
    assert [c.name for c in ours] == [c.name for c in theirs]
    for a, b in zip(ours, theirs):
        assert a.values.dtype == b.values.dtype, a.name
        assert list(a.statuses) == list(b.statuses), a.name
        assert list(a.event_ms) == list(b.event_ms), a.name
        assert list(a.values) == list(b.values), a.name


def test_the_view_answers_as_feast_does(tmp_path):
    store = open_store(tmp_path / "data")
    try:
        assert store.online_view is not None
        assert store.ingest(stale_world()).accepted > 0
        stores, medications = request_keys()
        ours = store.online(stores, medications)
        assert_same(ours, feast_answer(store, stores, medications))

        by_name = {c.name: c for c in ours}
        sums = by_name["dispensed_sum_7d"]
        # s002's rows stopped on day 9: outside the TTL, yet their event time is served.
        assert list(sums.statuses[8:12]) == [OUTSIDE_TTL] * 4
        assert list(sums.event_ms[8:12]) == [day_end_ms(9)] * 4
        assert list(sums.statuses[:8]) == [PRESENT] * 8
        assert list(sums.statuses[13:]) == [NOT_FOUND] * 3 and list(sums.event_ms[13:]) == [0] * 3
        assert by_name["unit_price"].statuses[7] == NULL_VALUE  # s001 x m003, missing on its last day
        # Attributes of a known store or medication are found even when the pair is not.
        assert list(by_name["store_region"].statuses[12:]) == [PRESENT, NOT_FOUND, PRESENT, NOT_FOUND]
        assert list(by_name["medication_category"].statuses[12:]) == [PRESENT, PRESENT, NOT_FOUND, NOT_FOUND]
        assert by_name["dispensed_1d"].values[12] == by_name["dispensed_1d"].values[1]  # the repeat

        # Under the wall clock every 2025 row is stale: both paths say so alike.
        store.config = store.config.model_copy(update={"ttl_clock": "wall"})
        ours = store.online(stores, medications)
        assert_same(ours, feast_answer(store, stores, medications))
        assert {c.name: c for c in ours}["dispensed_sum_7d"].statuses[0] == OUTSIDE_TTL
    finally:
        store.close()


def test_ingest_writes_through_to_the_view_and_to_feast(tmp_path):
    store = open_store(tmp_path / "data")
    try:
        columns = world(2, 2, 20, seed=5)
        store.ingest(columns)
        keys = (["s000", "s001"], ["m001", "m000"])
        before = {c.name: c for c in store.online(*keys)}
        # A correction of the latest day and a new day for one entity.
        last = [i for i, (s, m, d) in enumerate(zip(columns["store_id"], columns["medication_id"], columns["business_day"]))
                if (s, m) == ("s000", "m001") and d == "2025-01-20"]  # fmt: skip
        correction = take(columns, last)
        correction["units_dispensed"] = [321.0]
        store.ingest(correction)
        after = {c.name: c for c in store.online(*keys)}
        assert after["dispensed_1d"].values[0] == 321.0 and before["dispensed_1d"].values[0] != 321.0
        assert after["dispensed_1d"].values[1] == before["dispensed_1d"].values[1]
        newer = dict(correction, business_day=["2025-01-21"], units_dispensed=[7.0])
        store.ingest(newer)
        answer = store.online(*keys)
        assert {c.name: c for c in answer}["dispensed_1d"].event_ms[0] == day_end_ms(20)
        assert_same(answer, feast_answer(store, *keys))
    finally:
        store.close()


def outside_push(store: InventoryFeatureStore, store_id: str, medication_id: str, dispensed: float, day: int) -> None:
    """A Feast client writing one row straight into the online store, behind the service's back:
    the entity's served inventory features with `dispensed_1d` changed."""
    view = store.feast.get_feature_view(INVENTORY_VIEW)
    names = [f.name for f in view.features]
    served = {c.name: c for c in store.online([store_id], [medication_id], names)}
    row = pd.DataFrame({"store_id": [store_id], "medication_id": [medication_id]})
    for name in names:
        row[name] = served[name].values
    row["dispensed_1d"] = [dispensed]
    row[EVENT_TIMESTAMP] = pd.to_datetime([day_end_ms(day)], unit="ms", utc=True)
    row[CREATED_TIMESTAMP] = pd.Timestamp.now(tz="UTC")
    store.feast.push(f"{INVENTORY_VIEW}_push", row, to=PushMode.ONLINE)


def test_a_restart_rebuilds_the_view_from_the_online_store(tmp_path):
    data = tmp_path / "data"
    stores, medications = request_keys()
    store = open_store(data)
    try:
        store.ingest(stale_world())
        served = store.online(stores, medications)
        # Feast's store is the system of record: what is there at start is what gets served.
        outside_push(store, "s000", "m000", 999.0, 29)
        assert {c.name: c for c in store.online(["s000"], ["m000"])}["dispensed_1d"].values[0] != 999.0
    finally:
        store.close()

    store = open_store(data)
    try:
        again = store.online(stores, medications)
        assert_same(again, feast_answer(store, stores, medications))
        by_name = {c.name: c for c in again}
        assert by_name["dispensed_1d"].values[0] == 999.0
        before = next(c for c in served if c.name == "dispensed_1d")
        assert list(by_name["dispensed_1d"].values[1:]) == list(before.values[1:])
    finally:
        store.close()


def test_materialize_rebuilds_the_view_from_the_online_store(tmp_path):
    store = open_store(tmp_path / "data")
    try:
        store.ingest(world(2, 2, 20, seed=9))
        keys = (["s000", "s001"], ["m000", "m001"])
        expected = {c.name: c for c in store.online(*keys)}["dispensed_1d"].values[0]
        outside_push(store, "s000", "m000", 999.0, 19)
        store.materialize(datetime(2024, 12, 1, tzinfo=UTC), datetime.now(UTC), [INVENTORY_VIEW])
        answer = store.online(*keys)
        assert_same(answer, feast_answer(store, *keys))
        dispensed = {c.name: c for c in answer}["dispensed_1d"]
        assert dispensed.values[0] == expected and dispensed.statuses[0] == PRESENT
    finally:
        store.close()


def test_without_the_view_reads_go_to_feast(tmp_path):
    store = open_store(tmp_path / "data", online_view=False)
    try:
        assert store.online_view is None
        store.ingest(stale_world())
        stores, medications = request_keys()
        served = store.online(stores, medications)
        assert_same(served, feast_answer(store, stores, medications))
        assert np.count_nonzero(served[0].statuses == PRESENT) > 0
    finally:
        store.close()
