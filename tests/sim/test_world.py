"""The simulated world without drift: determinism, shape, invariants, patterns,
targets, and enough signal for a model to beat the naive forecast."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from rxcast.runtime.errors import InvalidArgument
from rxcast.sim import simulate
from rxcast.sim.catalog import RECORD_COLUMNS
from tests.sim.conftest import SMALL, dense, trailing_sum


def test_same_seed_same_records_and_another_seed_differs(small_world):
    again = simulate(SMALL)
    pd.testing.assert_frame_equal(again.records, small_world.records)
    pd.testing.assert_frame_equal(again.stores, small_world.stores)
    other = simulate(dataclasses.replace(SMALL, seed=12))
    assert other.records.shape == small_world.records.shape
    assert not np.array_equal(other.records["units_dispensed"], small_world.records["units_dispensed"])
    assert not other.medications["medication_category"].equals(small_world.medications["medication_category"])


def test_records_have_the_inventory_record_columns_and_dtypes(small_world):
    r = small_world.records
    assert tuple(r.columns) == RECORD_COLUMNS
    assert len(r) == SMALL.n_stores * SMALL.n_medications * SMALL.n_days
    assert r["business_day"].dtype == "datetime64[ns]"
    for name in ("store_id", "medication_id", "medication_category", "store_region"):
        assert isinstance(r[name].dtype, pd.CategoricalDtype), name
    for name in ("units_dispensed", "units_received", "units_on_hand", "prescriptions_written", "unit_price"):
        assert r[name].dtype == np.float64, name
        assert not r[name].isna().any(), name
    assert r["on_promotion"].dtype == bool and r["stock_out"].dtype == bool
    # Ordered by day, then store, then medication; each key once.
    keys = r[["business_day", "store_id", "medication_id"]].astype({"store_id": str, "medication_id": str})
    assert not keys.duplicated().any()
    assert keys.equals(keys.sort_values(["business_day", "store_id", "medication_id"]))
    assert list(small_world.days) == list(pd.date_range("2025-01-01", periods=SMALL.n_days))
    assert (r["business_day"] == r["business_day"].dt.normalize()).all()


def test_attribute_tables_match_the_records(small_world):
    r, stores, meds = small_world.records, small_world.stores, small_world.medications
    assert len(stores) == SMALL.n_stores and len(meds) == SMALL.n_medications
    region = dict(zip(stores["store_id"], stores["store_region"]))
    category = dict(zip(meds["medication_id"], meds["medication_category"]))
    assert (r["store_region"].astype(str) == r["store_id"].astype(str).map(region)).all()
    assert (r["medication_category"].astype(str) == r["medication_id"].astype(str).map(category)).all()


def test_records_for_day_is_that_day_as_pushed(small_world):
    day = small_world.records_for_day("2025-03-01")
    assert len(day) == SMALL.n_stores * SMALL.n_medications
    assert (day["business_day"] == pd.Timestamp("2025-03-01")).all()
    pd.testing.assert_frame_equal(day, small_world.records.loc[day.index])
    pd.testing.assert_frame_equal(small_world.records_for_day(59), day)
    with pytest.raises(InvalidArgument, match="outside the simulated days"):
        small_world.records_for_day("2030-01-01")
    with pytest.raises(InvalidArgument, match="day: must be a day"):
        small_world.records_for_day("soon")


def test_inventory_invariants(small_world):
    r, truth = small_world.records, small_world.truth()
    counts = r[["units_dispensed", "units_received", "units_on_hand", "prescriptions_written"]]
    assert (counts >= 0).all().all()
    assert (counts == counts.round()).all().all()  # whole units
    assert (r["unit_price"] > 0).all()
    assert (r["units_dispensed"] <= truth["demand"]).all()
    # Stock balance: yesterday's close + received today - dispensed today = today's close.
    on_hand, received, dispensed = (
        dense(small_world, "units_on_hand"),
        dense(small_world, "units_received"),
        dense(small_world, "units_dispensed"),
    )
    np.testing.assert_array_equal(on_hand[:-1] + received[1:] - dispensed[1:], on_hand[1:])
    # A stock-out is exactly a day on which demand exceeded the stock available: censored.
    stock_out = r["stock_out"].to_numpy()
    np.testing.assert_array_equal(stock_out, truth["demand"].to_numpy() > r["units_dispensed"].to_numpy())
    assert (r.loc[stock_out, "units_on_hand"] == 0).all()
    assert 0.002 < stock_out.mean() < 0.05
    # Replenishment happens: most pairs receive stock several times.
    assert (received > 0).sum(axis=0).mean() > 5


def test_weekly_pattern_is_visible(default_world):
    r = default_world.records
    by_weekday = r.groupby(r["business_day"].dt.dayofweek)["units_dispensed"].mean()
    assert by_weekday[6] < 0.8 * by_weekday[:5].mean()  # Sunday
    rx = r.groupby(r["business_day"].dt.dayofweek)["prescriptions_written"].mean()
    assert rx[5:].mean() < 0.6 * rx[:5].mean()  # practices close at the weekend


def test_flu_season_is_visible_in_flu_categories_only(default_world):
    r = default_world.records
    month = r["business_day"].dt.month
    winter, summer = month.isin([1, 2]), month.isin([7, 8])
    mean = r.groupby([r["medication_category"], winter.rename("winter"), summer.rename("summer")], observed=True)[
        "units_dispensed"
    ].mean()

    def ratio(category: str) -> float:
        return mean[(category, True, False)] / mean[(category, False, True)]

    assert ratio("antiviral") > 1.8
    assert ratio("respiratory") > 1.3
    assert 0.8 < ratio("cardiovascular") < 1.25


def test_prescriptions_lead_dispensing(small_world):
    rx = dense(small_world, "prescriptions_written")
    dispensed = dense(small_world, "units_dispensed")
    rx, dispensed = rx - rx.mean(axis=0), dispensed - dispensed.mean(axis=0)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    lead = corr(rx[:-1], dispensed[1:])  # prescriptions today, dispensing tomorrow
    lag = corr(dispensed[:-1], rx[1:])  # dispensing today, prescriptions tomorrow
    assert lead > lag + 0.05


def test_actuals_sum_the_next_seven_days_dispensed(small_world):
    r = small_world.records
    y = small_world.actuals()
    assert y.name == "demand_next_7d" and y.index.equals(r.index)
    dispensed = dense(small_world, "units_dispensed")
    expected = trailing_sum(dispensed, 7)[7:]  # the window ending 7 days later
    np.testing.assert_array_equal(y.to_numpy().reshape(dispensed.shape)[:-7], expected)
    assert np.isnan(y.to_numpy().reshape(dispensed.shape)[-7:]).all()  # not realized yet
    # The same for explicit rows, given as strings.
    rows = pd.DataFrame(
        {
            "store_id": ["S0003", "S0001"],
            "medication_id": ["M0002", "M0030"],
            "business_day": ["2025-02-01", "2025-01-05"],
        }
    )
    picked = r[
        ((r["store_id"] == "S0003") & (r["medication_id"] == "M0002") & (r["business_day"] == "2025-02-01"))
        | ((r["store_id"] == "S0001") & (r["medication_id"] == "M0030") & (r["business_day"] == "2025-01-05"))
    ]
    got = small_world.actuals(rows)
    assert sorted(got.tolist()) == sorted(y.loc[picked.index].tolist())
    assert (
        small_world.actuals(rows, horizon=1).iloc[0]
        == r.loc[
            (r["store_id"] == "S0003") & (r["medication_id"] == "M0002") & (r["business_day"] == "2025-02-02"),
            "units_dispensed",
        ].item()
    )


def test_actuals_reject_unknown_entities_and_days(small_world):
    rows = pd.DataFrame({"store_id": ["S9999"], "medication_id": ["M0001"], "business_day": ["2025-02-01"]})
    with pytest.raises(InvalidArgument, match="rows.store_id: unknown id"):
        small_world.actuals(rows)
    with pytest.raises(InvalidArgument, match="rows.business_day"):
        small_world.actuals(rows.assign(store_id="S0001", business_day="2031-01-01"))
    with pytest.raises(InvalidArgument, match="missing column"):
        small_world.actuals(rows.drop(columns="business_day"))
    with pytest.raises(InvalidArgument, match="horizon"):
        small_world.actuals(horizon=0)


def _features(world) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Obvious features from the records (as the feature service would build them)."""
    r = world.records
    dispensed = dense(world, "units_dispensed")
    rx = dense(world, "prescriptions_written")
    features = pd.DataFrame(
        {
            "dispensed_7d": trailing_sum(dispensed, 7).ravel(),
            "dispensed_28d": trailing_sum(dispensed, 28).ravel() / 4,
            "prescriptions_3d": trailing_sum(rx, 3).ravel(),
            "prescriptions_7d": trailing_sum(rx, 7).ravel(),
            "on_promotion": r["on_promotion"].to_numpy(float),
            "on_hand": r["units_on_hand"].to_numpy(),
            "stock_outs_7d": trailing_sum(dense(world, "stock_out"), 7).ravel(),
        }
    )
    day = np.repeat(np.arange(len(world.days)), dispensed.shape[1])
    return features, world.actuals().to_numpy(), day


def test_features_carry_signal_beyond_the_trailing_mean(default_world):
    features, y, day = _features(default_world)
    usable = features.notna().all(axis=1).to_numpy() & ~np.isnan(y)
    train, test = usable & (day < 300), usable & (day >= 310) & (day < 360)
    x = np.column_stack(
        [np.ones(len(features)), features.to_numpy(), features["on_promotion"] * features["dispensed_7d"]]
    )
    coef, *_ = np.linalg.lstsq(x[train], y[train], rcond=None)
    model_error = np.abs(x[test] @ coef - y[test]).mean()
    baseline_error = np.abs(features["dispensed_7d"].to_numpy()[test] - y[test]).mean()
    # Clearly better than "next week is like last week", but far from perfect: noise matters.
    assert model_error < 0.93 * baseline_error
    assert model_error > 0.5 * baseline_error


def test_simulate_rejects_what_is_not_a_scenario():
    with pytest.raises(InvalidArgument, match="scenario: must be a Scenario"):
        simulate({"n_stores": 3})
