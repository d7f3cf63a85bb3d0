"""Feature service answers → FeatureFrames: statuses, types, malformed columns."""

from __future__ import annotations

import numpy as np

from rxcast.feature.v1 import feature_pb2 as fpb
from rxcast.predictor.features import frame_from_columns
from rxcast.predictor.frame import EntityBatch

PRESENT, NULL, NOT_FOUND, OLD = (
    fpb.FEATURE_STATUS_PRESENT, fpb.FEATURE_STATUS_NULL_VALUE, fpb.FEATURE_STATUS_NOT_FOUND, fpb.FEATURE_STATUS_OUTSIDE_TTL
)  # fmt: skip


def _column(name, statuses, times, **values):
    return fpb.FeatureColumn(name=name, statuses=statuses, event_times_unix_ms=times, **values)


def test_values_are_read_by_name_blanked_unless_present_and_aged_by_present_values():
    keys = EntityBatch(np.array(["S0", "S1", "S2"]), np.array(["M0", "M1", "M2"]))
    columns = [
        _column(
            "category", [PRESENT, NOT_FOUND, PRESENT], [5, 0, 9], string_values=fpb.StringList(values=["a", "", "b"])
        ),
        _column("sales", [PRESENT, NULL, OLD], [7, 8, 30], double_values=fpb.DoubleList(values=[1.5, 0, 3.0])),
        _column(
            "promo", [PRESENT, PRESENT, NOT_FOUND], [6, 4, 0], bool_values=fpb.BoolList(values=[True, False, False])
        ),
        _column("count", [PRESENT, PRESENT, PRESENT], [1, 2, 3], int64_values=fpb.Int64List(values=[4, 5, 6])),
        _column("broken", [PRESENT], [1], double_values=fpb.DoubleList(values=[1.0])),  # wrong length
    ]
    frame = frame_from_columns(keys, columns, ["sales", "promo", "count", "category", "broken", "absent"])
    np.testing.assert_array_equal(frame.columns["sales"], [1.5, np.nan, np.nan])
    np.testing.assert_array_equal(frame.columns["promo"], [1.0, 0.0, np.nan])
    np.testing.assert_array_equal(frame.columns["count"], [4.0, 5.0, 6.0])
    assert frame.columns["category"].tolist() == ["a", "", "b"]
    assert np.isnan(frame.columns["broken"]).all() and np.isnan(frame.columns["absent"]).all()
    # Newest event time among present values only (the OUTSIDE_TTL value at 30 does not count).
    assert frame.newest_event_ms.tolist() == [7, 4, 9]
