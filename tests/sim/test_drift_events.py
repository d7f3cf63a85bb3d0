"""Each drift kind has the effect it claims from its day on, and none before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rxcast.sim import DRIFT_KINDS, DriftEvent, Scenario, simulate
from tests.sim.conftest import dense, plain, trailing_sum

BASE = Scenario(n_stores=10, n_medications=40, n_days=240, start_day="2025-09-01", seed=5)
DAY = 150
DAY_STAMP = pd.Timestamp("2025-09-01") + pd.Timedelta(days=DAY)
FIELDS = [
    "units_dispensed",
    "units_received",
    "units_on_hand",
    "prescriptions_written",
    "unit_price",
    "on_promotion",
    "stock_out",
]


@pytest.fixture(scope="module")
def base_world():
    return simulate(BASE)


def with_event(kind: str, **params):
    return simulate(BASE.with_events(DriftEvent(kind, DAY, params)))


def split(world):
    r = world.records
    before = r["business_day"] < DAY_STAMP
    return r[before], r[~before]


@pytest.mark.parametrize("kind", DRIFT_KINDS)
def test_nothing_changes_before_the_event_day_and_the_log_records_it(base_world, kind):
    world = with_event(kind)
    before, after = split(world)
    pd.testing.assert_frame_equal(plain(before), plain(split(base_world)[0]))
    pd.testing.assert_frame_equal(plain(world.truth().loc[before.index]), plain(base_world.truth().loc[before.index]))
    assert len(world.events) == 1
    logged = world.events[0]
    assert (logged.kind, logged.day, logged.business_day) == (kind, DAY, f"{DAY_STAMP:%Y-%m-%d}")
    assert logged.params == DriftEvent(kind, DAY).resolved_params() | {
        k: v for k, v in logged.params.items() if k in ("medication_ids", "store_ids")
    }
    # ...and something does change from the day on.
    base_after = split(base_world)[1]
    assert len(after) != len(base_after) or not plain(after).equals(plain(base_after))


def test_new_medications_appear_from_their_day_in_a_new_category(base_world):
    world = with_event("new_medication", n=4, category="glp1_agonist", adoption_days=21)
    new_ids = world.events[0].params["medication_ids"]
    assert new_ids == ["M0041", "M0042", "M0043", "M0044"]
    r = world.records
    is_new = r["medication_id"].isin(new_ids)
    assert r.loc[is_new, "business_day"].min() == DAY_STAMP
    assert is_new.sum() == 4 * BASE.n_stores * (BASE.n_days - DAY)
    assert set(r.loc[is_new, "medication_category"]) == {"glp1_agonist"}
    assert "glp1_agonist" not in set(base_world.records["medication_category"])
    meds = world.medications.set_index("medication_id")
    assert (meds.loc[new_ids, "first_day"] == DAY_STAMP).all()
    # Launch uptake: the first week sells less than the weeks after adoption.
    launched = r[is_new]
    week = (launched["business_day"] - DAY_STAMP).dt.days // 7
    by_week = launched.groupby(week)["units_dispensed"].mean()
    assert by_week[0] < 0.6 * by_week[[5, 6, 7]].mean()
    assert world.truth().loc[is_new[is_new].index, "demand"].sum() > 0


def test_new_region_opens_stores_with_a_different_profile(base_world):
    world = with_event("new_region", region="islands", n_stores=4)
    new_ids = world.events[0].params["store_ids"]
    assert new_ids == ["S0011", "S0012", "S0013", "S0014"]
    r = world.records
    is_new = r["store_id"].isin(new_ids)
    assert r.loc[is_new, "business_day"].min() == DAY_STAMP
    assert set(r.loc[is_new, "store_region"]) == {"islands"}
    assert is_new.sum() == 4 * BASE.n_medications * (BASE.n_days - DAY)
    new, old = r[is_new], r[~is_new & (r["business_day"] >= DAY_STAMP)]

    def share(frame: pd.DataFrame, category: str) -> float:
        return (
            frame.loc[frame["medication_category"] == category, "units_dispensed"].sum()
            / frame["units_dispensed"].sum()
        )

    assert share(new, "allergy") > 1.3 * share(old, "allergy")

    def weekend_lift(frame: pd.DataFrame) -> float:
        by_day = frame.groupby(frame["business_day"].dt.dayofweek)["units_dispensed"].mean()
        return by_day[5] / by_day[0]

    assert weekend_lift(new) > 1.25 * weekend_lift(old)


def test_demand_shock_multiplies_demand_of_its_categories_after_the_ramp(base_world):
    categories = ["antiviral", "respiratory", "analgesic"]
    world = with_event("demand_shock", multiplier=2.0, categories=categories, ramp_days=14)
    truth, base_truth = world.truth(), base_world.truth()
    r = world.records
    hit = r["medication_category"].isin(categories).to_numpy()
    day = (r["business_day"] - DAY_STAMP).dt.days.to_numpy()

    def ratio(rows: np.ndarray) -> float:
        return truth.loc[rows, "demand"].sum() / base_truth.loc[rows, "demand"].sum()

    assert 1.7 < ratio(hit & (day >= 14)) < 2.3
    assert ratio(hit & (day >= 0) & (day < 3)) < 1.3  # ramping up
    assert 0.93 < ratio(~hit & (day >= 14)) < 1.07


@pytest.mark.parametrize(("field", "factor"), [("units_on_hand", 10.0), ("prescriptions_written", 1 / 28)])
def test_unit_change_scales_exactly_one_field(base_world, field, factor):
    world = with_event("unit_change", field=field, factor=factor)
    after = split(world)[1]
    base_after = split(base_world)[1]
    np.testing.assert_allclose(after[field].to_numpy(), base_after[field].to_numpy() * factor, rtol=1e-12)
    others = [f for f in FIELDS if f != field]
    pd.testing.assert_frame_equal(plain(after[others]), plain(base_after[others]))
    pd.testing.assert_frame_equal(world.truth(), base_world.truth())  # the world itself is unchanged


def test_unit_change_can_hit_some_stores_only(base_world):
    world = with_event("unit_change", field="units_received", factor=12, stores=["S0002", "S0005"])
    after, base_after = split(world)[1], split(base_world)[1]
    hit = after["store_id"].isin(["S0002", "S0005"]).to_numpy()
    np.testing.assert_array_equal(
        after["units_received"].to_numpy()[hit], 12 * base_after["units_received"].to_numpy()[hit]
    )
    np.testing.assert_array_equal(
        after["units_received"].to_numpy()[~hit], base_after["units_received"].to_numpy()[~hit]
    )
    with pytest.raises(Exception, match="unknown store id"):
        with_event("unit_change", stores=["S0999"])


def test_missing_values_blank_one_field_at_the_rate(base_world):
    world = with_event("missing_values", field="units_on_hand", rate=0.2)
    before, after = split(world)
    base_after = split(base_world)[1]
    assert not before["units_on_hand"].isna().any()
    gaps = after["units_on_hand"].isna().to_numpy()
    assert 0.18 < gaps.mean() < 0.22
    np.testing.assert_array_equal(
        after["units_on_hand"].to_numpy()[~gaps], base_after["units_on_hand"].to_numpy()[~gaps]
    )
    others = [f for f in FIELDS if f != "units_on_hand"]
    pd.testing.assert_frame_equal(plain(after[others]), plain(base_after[others]))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [("unit_price", None, 1.0), ("on_promotion", None, False), ("units_on_hand", 5, 5.0)],
)
def test_constant_column_pins_one_field(base_world, field, value, expected):
    world = with_event("constant_column", field=field, value=value)
    before, after = split(world)
    base_after = split(base_world)[1]
    assert (after[field] == expected).all()
    assert before[field].nunique() > 1
    others = [f for f in FIELDS if f != field]
    pd.testing.assert_frame_equal(plain(after[others]), plain(base_after[others]))


def _rx_regression(world, first_day: int) -> np.ndarray:
    """Coefficients of next week's dispensing on [1, last week's dispensing,
    prescriptions of the last 3 days], over rows from `first_day`."""
    dispensed, rx = dense(world, "units_dispensed"), dense(world, "prescriptions_written")
    y = world.actuals().to_numpy().reshape(dispensed.shape)
    x = np.stack([np.ones_like(dispensed), trailing_sum(dispensed, 7), trailing_sum(rx, 3)], axis=-1)[first_day:]
    y = y[first_day:]
    usable = ~np.isnan(y) & ~np.isnan(x).any(axis=-1)
    coef, *_ = np.linalg.lstsq(x[usable], y[usable], rcond=None)
    return coef


def test_concept_change_decouples_prescriptions_from_dispensing(base_world):
    world = with_event("concept_change", mode="decouple_prescriptions")
    after, base_after = split(world)[1], split(base_world)[1]
    # Demand and what is dispensed are as before ...
    pd.testing.assert_frame_equal(
        world.truth()[["demand", "units_dispensed"]], base_world.truth()[["demand", "units_dispensed"]]
    )
    unchanged = [f for f in FIELDS if f != "prescriptions_written"]
    pd.testing.assert_frame_equal(plain(after[unchanged]), plain(base_after[unchanged]))
    # ... the prescriptions recorded keep their distribution ...
    rx, base_rx = after["prescriptions_written"], base_after["prescriptions_written"]
    assert abs(rx.mean() / base_rx.mean() - 1) < 0.05
    assert abs(rx.std() / base_rx.std() - 1) < 0.1
    assert not rx.equals(base_rx)
    # ... but no longer tell where dispensing goes.
    rx_weight_before = _rx_regression(base_world, DAY)[2]
    rx_weight_after = _rx_regression(world, DAY + 7)[2]
    assert rx_weight_before > 0.3
    assert rx_weight_after < 0.5 * rx_weight_before


def test_concept_change_can_end_the_promotion_lift(base_world):
    world = with_event("concept_change", mode="promotion_effect", promo_lift=1.0, categories=["allergy", "analgesic"])
    after, base_after = split(world)[1], split(base_world)[1]
    # Promotions still run at the same prices...
    for name in ("on_promotion", "unit_price"):
        np.testing.assert_array_equal(after[name].to_numpy(), base_after[name].to_numpy())
    truth = world.truth().loc[after.index, "demand"].to_numpy()
    base_truth = base_world.truth().loc[base_after.index, "demand"].to_numpy()
    otc = after["medication_category"].isin(["allergy", "analgesic"]).to_numpy()
    promo = after["on_promotion"].to_numpy()
    assert promo[otc].sum() > 100
    # ...but no longer lift demand, which they did before.
    assert truth[otc & promo].sum() < 0.85 * base_truth[otc & promo].sum()
    assert 0.95 < truth[otc & ~promo].sum() / base_truth[otc & ~promo].sum() < 1.05


def test_actuals_are_the_true_target_unless_asked_for_the_reported_one(base_world):
    world = with_event("unit_change", field="units_dispensed", factor=10)
    pd.testing.assert_series_equal(world.actuals(), base_world.actuals())
    day = (world.records["business_day"] - DAY_STAMP).dt.days.to_numpy()
    reported, true = world.actuals(observed=True).to_numpy(), world.actuals().to_numpy()
    np.testing.assert_array_equal(reported[day >= 0], 10 * true[day >= 0])  # whole window after the change
    np.testing.assert_array_equal(reported[day < -7], true[day < -7])  # whole window before it
    gappy = with_event("missing_values", field="units_dispensed", rate=0.05)
    reported = gappy.actuals(observed=True).to_numpy()
    assert np.isnan(reported[(day >= 0) & ~np.isnan(true)]).mean() > 0.2  # any gap in the 7 days blanks the sum
    np.testing.assert_array_equal(reported[day < -7], true[day < -7])


def test_actuals_are_missing_before_an_entity_exists():
    world = with_event("new_medication", n=1)
    rows = pd.DataFrame(
        {
            "store_id": ["S0001", "S0001"],
            "medication_id": ["M0041", "M0041"],
            "business_day": [DAY_STAMP - pd.Timedelta(days=1), DAY_STAMP],
        }
    )
    got = world.actuals(rows)
    assert np.isnan(got.iloc[0]) and got.iloc[1] >= 0
