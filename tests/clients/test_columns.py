"""The feature column codec: wire columns to arrays, strict for training,
lenient for serving, and back."""

from __future__ import annotations

import numpy as np
import pytest

from rxcast.clients.columns import decode_columns, encode_column
from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.runtime.errors import FailedPrecondition

PRESENT, NULL, NOT_FOUND = pb.FEATURE_STATUS_PRESENT, pb.FEATURE_STATUS_NULL_VALUE, pb.FEATURE_STATUS_NOT_FOUND


def _columns():
    return [
        encode_column("sales", "DOUBLE", np.array([1.5, 0.0, 3.0]), np.array([PRESENT, NULL, PRESENT]), [5, 0, 7]),
        encode_column("count", "INT64", np.array([4, 5, 6]), np.array([PRESENT] * 3), [1, 2, 3]),
        encode_column(
            "promo", "BOOL", np.array([True, False, True]), np.array([PRESENT, PRESENT, NOT_FOUND]), [9, 9, 0]
        ),
        encode_column("region", "STRING", np.array(["n", "", "s"]), np.array([PRESENT, NOT_FOUND, PRESENT]), [2, 0, 8]),
    ]


def test_encoded_columns_decode_to_the_same_values_blanked_unless_present():
    decoded = decode_columns(_columns(), 3, ["region", "sales", "count", "promo"], strict=True)
    np.testing.assert_array_equal(decoded.values["sales"], [1.5, np.nan, 3.0])
    np.testing.assert_array_equal(decoded.values["count"], [4.0, 5.0, 6.0])
    np.testing.assert_array_equal(decoded.values["promo"], [1.0, 0.0, np.nan])
    assert decoded.values["region"].tolist() == ["n", "", "s"]
    assert decoded.present["sales"].tolist() == [True, False, True]
    # Newest event time among present values only.
    assert decoded.newest_ms().tolist() == [9, 9, 8]
    assert decoded.stamped_after(np.array([9, 9, 7])) == {"region": 1}


def test_lenient_decoding_serves_absent_and_malformed_columns_as_missing():
    broken = encode_column("broken", "DOUBLE", np.array([1.0]), np.array([PRESENT]), [1])
    decoded = decode_columns([*_columns(), broken], 3, ["sales", "broken", "absent"])
    assert np.isnan(decoded.values["broken"]).all() and not decoded.present["broken"].any()
    assert np.isnan(decoded.values["absent"]).all() and not decoded.present["absent"].any()
    assert decoded.values["sales"][0] == 1.5


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (encode_column("sales", "DOUBLE", np.array([1.0]), np.array([PRESENT]), [1]), "'sales' has 1 statuses"),
        (pb.FeatureColumn(name="sales", statuses=[PRESENT] * 3, event_times_unix_ms=[1, 2, 3]), "0 values for 3 rows"),
        (
            pb.FeatureColumn(
                name="sales",
                statuses=[PRESENT] * 3,
                event_times_unix_ms=[1],
                double_values=pb.DoubleList(values=[1, 2, 3]),
            ),
            "1 event times",
        ),
    ],
)
def test_strict_decoding_refuses_a_malformed_column_naming_it(column, message):
    with pytest.raises(FailedPrecondition, match=message):
        decode_columns([column], 3, ["sales"], strict=True)


def test_strict_decoding_refuses_an_absent_feature():
    with pytest.raises(FailedPrecondition, match=r"lacks feature\(s\) \['absent'\]"):
        decode_columns(_columns(), 3, ["sales", "absent"], strict=True)
