"""No leakage: a training row of day D sees only values stamped by D's end,
and its label is demand on the days after D only.

Checked against the simulator's records (the oracle) for rows loaded from a
real feature service through the trainer's production source, with the
store holding data well past the window, so any look-ahead would show.
"""

from __future__ import annotations

import numpy as np
import pytest

from rxcast.clients import FeatureClient
from rxcast.clients.columns import decode_columns
from rxcast.feature.v1 import feature_pb2
from rxcast.model.timebase import day_end_ms, day_number
from rxcast.runtime.errors import FailedPrecondition
from rxcast.trainer.dataset import LoadRequest
from rxcast.trainer.feature_source import FeatureServiceSource

START, END = "2025-01-15", "2025-03-31"  # the world runs on to 2025-04-20
HORIZON = 7


@pytest.fixture(scope="module")
def loaded(feature):
    source = FeatureServiceSource(feature.address)
    try:
        request = LoadRequest(day_number(START, "start"), day_number(END, "end"), ("dispensed_sum_7d",), HORIZON)
        yield source.load(request, lambda done, total: None)
    finally:
        source.close()


@pytest.fixture(scope="module")
def cube(sim_world):
    """Units dispensed and on hand per (store, medication, epoch day), from the simulator's records."""
    records = sim_world.records
    days = records["business_day"].to_numpy().astype("datetime64[D]").astype(np.int64)
    stores = records["store_id"].astype(str).to_numpy()
    medications = records["medication_id"].astype(str).to_numpy()
    store_levels, s = np.unique(stores, return_inverse=True)
    medication_levels, m = np.unique(medications, return_inverse=True)
    first = days.min()
    shape = (store_levels.size, medication_levels.size, days.max() - first + 1)
    dispensed, on_hand = np.full(shape, np.nan), np.full(shape, np.nan)
    dispensed[s, m, days - first] = records["units_dispensed"].to_numpy()
    on_hand[s, m, days - first] = records["units_on_hand"].to_numpy()
    return store_levels, medication_levels, first, dispensed, on_hand


def test_features_use_only_days_up_to_the_row_and_labels_only_days_after(loaded, cube):
    store_levels, medication_levels, first, dispensed, on_hand = cube
    s = np.searchsorted(store_levels, loaded.store_ids)
    m = np.searchsorted(medication_levels, loaded.medication_ids)
    d = loaded.row_days - first
    assert loaded.rows > 1000 and d.min() > 7 and d.max() + HORIZON < dispensed.shape[2]

    np.testing.assert_array_equal(loaded.columns["dispensed_1d"], dispensed[s, m, d])
    np.testing.assert_array_equal(loaded.columns["units_on_hand"], on_hand[s, m, d])
    trailing = sum(dispensed[s, m, d - k] for k in range(7))
    np.testing.assert_allclose(loaded.columns["dispensed_sum_7d"], trailing)
    following = sum(dispensed[s, m, d + k] for k in range(1, HORIZON + 1))
    np.testing.assert_allclose(loaded.labels, following)
    # A label shifted by one day (including day D itself) would not match.
    shifted = sum(dispensed[s, m, d + k] for k in range(HORIZON))
    assert not np.allclose(loaded.labels, shifted)
    assert set(loaded.row_days.tolist()) == set(range(day_number(START, "s"), day_number(END, "e") + 1))


def test_every_value_served_for_training_is_stamped_by_its_rows_instant(feature):
    with FeatureClient(feature.address) as client:
        features = [f.name for f in client.list_features().features]
        chunks = list(client.historical(features, grid=(START, END), strict=True))
    freshest = 0
    for chunk in chunks:
        assert chunk.columns.stamped_after(chunk.event_ms) == {}
        for name in features:
            stamped = chunk.columns.event_ms[name][chunk.columns.present[name]]
            freshest += int(np.count_nonzero(stamped == chunk.event_ms[chunk.columns.present[name]]))
    # Values of the row's own day are there (stamped at its end): the check is not vacuous.
    assert freshest > 0


def test_the_source_refuses_values_stamped_after_their_row():
    row_instants = day_end_ms([100, 100, 101])
    column = feature_pb2.FeatureColumn(
        name="dispensed_sum_7d",
        double_values=feature_pb2.DoubleList(values=[1.0, 2.0, 3.0]),
        statuses=[feature_pb2.FEATURE_STATUS_PRESENT] * 2 + [feature_pb2.FEATURE_STATUS_NOT_FOUND],
        event_times_unix_ms=[int(row_instants[0]), int(row_instants[1]) + 1, 0],
    )
    decoded = decode_columns([column], 3, [column.name], strict=True)
    assert decoded.stamped_after(row_instants) == {"dispensed_sum_7d": 1}
    values = decoded.values[column.name]
    assert values[0] == 1.0 and values[1] == 2.0 and np.isnan(values[2])
    # A value that is not PRESENT never counts, whatever its stamp.
    column.statuses[1] = feature_pb2.FEATURE_STATUS_OUTSIDE_TTL
    decoded = decode_columns([column], 3, [column.name], strict=True)
    assert decoded.stamped_after(row_instants) == {} and np.isnan(decoded.values[column.name][1])


def test_a_leak_fails_the_load_naming_the_feature(feature, monkeypatch):
    """The guard is wired into the load: a served value from the future refuses the whole set."""
    source = FeatureServiceSource(feature.address)
    real = source._client.stub.GetHistoricalFeatures

    def shifted(request, **kwargs):
        for chunk in real(request, **kwargs):
            column = next(c for c in chunk.columns if c.name == "dispensed_1d")
            column.event_times_unix_ms[0] = chunk.rows.event_times_unix_ms[0] + 1
            column.statuses[0] = feature_pb2.FEATURE_STATUS_PRESENT
            yield chunk

    monkeypatch.setattr(source._client.stub, "GetHistoricalFeatures", shifted)
    request = LoadRequest(day_number(START, "start"), day_number(END, "end"), (), HORIZON)
    with pytest.raises(FailedPrecondition, match=r"point-in-time leak.*dispensed_1d"):
        source.load(request, lambda done, total: None)
    source.close()
