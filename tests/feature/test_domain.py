"""The feature service's domain code, without a server: validation, the record
history, derived features against a direct computation, point-in-time
lookups (and agreement with Feast's own historical retrieval), the record log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rxcast.feature.derive import affected_ranges, derive_rows
from rxcast.feature.history import RecordHistory
from rxcast.feature.offline import NOT_FOUND, OUTSIDE_TTL, PRESENT, point_in_time
from rxcast.feature.record_log import RecordLog
from rxcast.feature.records import Limits, RecordBatch, validate
from rxcast.model import timebase
from tests.feature.records import START, day_end_ms, take, world

START_DAY = (START - pd.Timestamp("1970-01-01").date()).days


def batch_of(columns) -> RecordBatch:
    batch, parsed = RecordBatch.from_columns(columns)
    assert parsed.all()
    return batch


def test_business_days_parse_strictly():
    days, valid = timebase.parse_days(["2025-01-01", "2024-02-29", "2023-02-29", "2025-1-01", "", "2999-12-31", "x"])
    assert valid.tolist() == [True, True, False, False, False, True, False]
    assert timebase.day_text(int(days[0])) == "2025-01-01" and timebase.day_text(int(days[5])) == "2999-12-31"
    # A record for day D is stamped at the end of D: a row at that instant stands on D.
    assert timebase.as_of_day(timebase.day_end_ms(days[:1])).tolist() == [days[0]]
    assert timebase.as_of_day(timebase.day_end_ms(days[:1]) - 1).tolist() == [days[0] - 1]


def test_validation_names_fields_and_accepts_stores_introduced_in_the_batch():
    columns = {
        "store_id": ["new", "new", " padded", "old"],
        "medication_id": ["m", "m", "m", "m"],
        "business_day": ["2025-01-01", "2025-01-02", "2025-01-01", "2025-01-01"],
        "units_dispensed": [1.0, np.nan, 2.0, -1.0],
        "store_region": ["", "north", "north", ""],
        "medication_category": ["c", "", "c", ""],
    }
    batch, parsed = RecordBatch.from_columns(columns)
    valid, errors = validate(batch, parsed, Limits(today=START_DAY + 30), known_stores={"old"})
    assert valid.tolist() == [True, True, False, False]
    assert [(e.index, e.field) for e in errors] == [(2, "store_id"), (3, "units_dispensed")]
    # NaN is "missing" unless the sender set it explicitly.
    valid, errors = validate(
        batch, parsed, Limits(today=START_DAY + 30), known_stores={"old"},
        nan_given={"units_dispensed": np.array([False, True, False, False])},
    )  # fmt: skip
    assert (1, "units_dispensed") in [(e.index, e.field) for e in errors]


def test_history_keeps_the_latest_copy_of_each_key():
    history = RecordHistory()
    columns = world(1, 2, 3)
    first = history.upsert(batch_of(columns))
    assert not first.replaced.any() and history.record_count == 6
    again = take(columns, [0, 0, 4])
    again["units_dispensed"] = [100.0, 200.0, 300.0]
    second = history.upsert(batch_of(again))
    assert second.replaced.tolist() == [True, True, True]
    assert history.record_count == 6
    codes = history.entity_codes(["s000", "s000", "zzz"], ["m000", "m001", "m000"])
    assert codes[2] == -1
    read = history.gather(codes, np.array([START_DAY, START_DAY + 1, START_DAY]))
    assert read["units_dispensed"][0] == 200.0 and read["units_dispensed"][1] == 300.0
    assert read["present"].tolist() == [True, True, False]


def _direct(frame: pd.DataFrame, day: int, window: int, field: str) -> float:
    rows = frame[(frame.index > day - window) & (frame.index <= day)][field].dropna()
    return float(rows.sum()) if len(rows) else np.nan


def test_derived_rows_equal_a_direct_computation_whatever_the_arrival_order():
    columns = world(2, 2, 70, seed=5)
    rng = np.random.default_rng(9)
    n = len(columns["store_id"])
    kept = np.sort(rng.choice(n, int(n * 0.85), replace=False))  # gaps: days without a record
    order = rng.permutation(kept)  # arrival out of order, in several batches
    history = RecordHistory()
    derived = {}
    for part in np.array_split(order, 6):
        batch = batch_of(take(columns, part))
        stored = history.upsert(batch)
        entity, start, end = affected_ranges(history, stored.codes, stored.days)
        rows = derive_rows(history, entity, start, end)
        for i in range(len(rows)):
            derived[(int(rows.codes[i]), int(rows.days[i]))] = {k: v[i] for k, v in rows.features.items()}

    frame = pd.DataFrame(take(columns, kept))
    frame["day"] = timebase.parse_days(frame["business_day"])[0]
    assert len(derived) == len(frame)  # one row per record, after every recomputation
    for (store, medication), rows in frame.groupby(["store_id", "medication_id"]):
        rows = rows.set_index("day").sort_index()
        code = int(history.entity_codes([store], [medication])[0])
        for day in rows.index:
            got = derived[(code, int(day))]
            assert got["dispensed_sum_7d"] == pytest.approx(_direct(rows, day, 7, "units_dispensed"), nan_ok=True)
            assert got["dispensed_sum_28d"] == pytest.approx(_direct(rows, day, 28, "units_dispensed"), nan_ok=True)
            assert got["prescriptions_sum_7d"] == pytest.approx(
                _direct(rows, day, 7, "prescriptions_written"), nan_ok=True
            )
            window = rows[(rows.index > day - 28) & (rows.index <= day)]
            assert got["days_recorded_28d"] == len(window)
            assert got["stockout_days_28d"] == int(window["stock_out"].sum())
            dispensed = window["units_dispensed"].dropna()
            if len(dispensed):
                assert got["dispensed_mean_28d"] == pytest.approx(dispensed.mean())
                assert got["dispensed_max_28d"] == dispensed.max()
            assert got["units_on_hand"] == rows.loc[day, "units_on_hand"]
            date = pd.Timestamp(timebase.day_text(int(day)))
            assert (got["day_of_week"], got["day_of_year"], got["week_of_year"]) == (
                date.dayofweek, date.dayofyear, date.isocalendar()[1],
            )  # fmt: skip


def test_point_in_time_never_looks_ahead_and_never_drops_rows():
    codes = np.array([0, 0, 0, 1])
    times = np.array([100, 200, 300, 150])
    index, status = point_in_time(
        codes, times, np.array([0, 0, 0, 1, 1, 2, -1]), np.array([99, 200, 299, 149, 1000, 500, 500]), 0
    )
    assert index.tolist() == [-1, 1, 1, -1, 3, -1, -1]
    assert status.tolist() == [NOT_FOUND, PRESENT, PRESENT, NOT_FOUND, PRESENT, NOT_FOUND, NOT_FOUND]
    index, status = point_in_time(codes, times, np.array([0, 1]), np.array([350, 1000]), ttl_ms=100)
    assert index.tolist() == [2, 3] and status.tolist() == [PRESENT, OUTSIDE_TTL]


def test_record_log_compacts_without_losing_or_reordering_records(tmp_path):
    log = RecordLog(tmp_path / "records", compact_after=4)
    columns = world(1, 1, 10)
    for seq, day in enumerate(range(10), start=1):
        part = take(columns, [day])
        log.append(seq, batch_of(part))
        log.compact_if_needed()
    correction = take(columns, [3])
    correction["units_dispensed"] = [42.0]
    log.append(11, batch_of(correction))
    (tmp_path / "records" / "_batch-000000000012.parquet.1.tmp").write_bytes(b"partial")
    reopened = RecordLog(tmp_path / "records", compact_after=4)
    assert not list((tmp_path / "records").glob("_*"))
    history = RecordHistory()
    for _, batch in reopened.read():
        history.upsert(batch)
    assert history.record_count == 10
    code = history.entity_codes(["s000"], ["m000"])
    assert history.gather(code, np.array([START_DAY + 3]))["units_dispensed"][0] == 42.0
    assert len(list((tmp_path / "records").glob("*.parquet"))) < 11


def test_historical_retrieval_agrees_with_feast(tmp_path):
    """Where Feast's file-store join returns a row, rxcast's lookup returns the same values."""
    from rxcast.feature.config import FeatureConfig
    from rxcast.feature.store import InventoryFeatureStore

    store = InventoryFeatureStore.open(FeatureConfig(data_dir=str(tmp_path / "data")))
    try:
        columns = world(2, 3, 30, seed=3)
        assert store.ingest(columns).accepted == 180
        rng = np.random.default_rng(1)
        n = 40
        stores = np.array([f"s{i:03d}" for i in rng.integers(0, 2, n)], dtype=object)
        medications = np.array([f"m{i:03d}" for i in rng.integers(0, 3, n)], dtype=object)
        instants = day_end_ms(0) + rng.integers(0, 29 * 86_400_000, n)
        (chunk,) = store.historical(stores, medications, instants)
        ours = {c.name: c for c in chunk.columns}

        entity_df = pd.DataFrame(
            {
                "store_id": stores,
                "medication_id": medications,
                "event_timestamp": pd.to_datetime(instants, unit="ms", utc=True),
                "row": np.arange(n),
            }
        )
        service = store.feast.get_feature_service("demand_forecast")
        theirs = store.feast.get_historical_features(entity_df, features=service).to_df().set_index("row").sort_index()
        assert len(theirs) == n
        for name, column in ours.items():
            expected = theirs[name].to_numpy()
            present = column.statuses == PRESENT
            assert (present == ~pd.isna(expected)).all(), name
            assert (column.values[present] == expected[present]).all(), name
    finally:
        store.close()


def test_offline_files_compact_to_the_latest_copy_of_each_row(tmp_path):
    from rxcast.feature.definitions import STORE_FEATURES
    from rxcast.feature.offline import OfflineView

    view = OfflineView("store_attributes", tmp_path / "view", ("store_id",), STORE_FEATURES)
    for seq in range(1, 6):
        # Every batch restates s1 on day 1 (a replay) and adds a day of s2.
        view.write(
            seq, {"store_id": np.array(["s1", "s2"], dtype=object), "store_region": np.array([f"r{seq}", "x"], dtype=object)},
            np.array([day_end_ms(1), day_end_ms(seq)]), created_us=seq,
        )  # fmt: skip
    before = view.rows()
    assert not view.compact_if_needed(threshold=6)
    assert view.compact_if_needed(threshold=5)
    assert [p.name for p in (tmp_path / "view").glob("*.parquet")] == ["upto-000000000005.parquet"]
    after = view.rows()
    assert len(after) == len(before) == 6  # s1 once, s2 on five days
    index, _ = point_in_time(
        after.codes, after.event_ms, after.codes_of(np.array(["s1"], dtype=object)), np.array([day_end_ms(9)]), 0
    )
    assert after.columns["store_region"][index[0]] == "r5"
    assert view.has_batch(3) and not view.has_batch(6)
