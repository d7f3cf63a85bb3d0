"""The feature value codecs: wire columns and packed arrays to arrays, strict
for training, lenient for serving, and back."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from rxcast.clients.columns import decode_columns, decode_packed, encode_column, encode_packed
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


def _server_columns():
    """The feature service's columns (name, value_type and arrays) behind `_columns()`."""
    return [
        SimpleNamespace(
            name=c.name,
            value_type={"double_values": "DOUBLE", "int64_values": "INT64", "bool_values": "BOOL"}.get(
                c.WhichOneof("values"), "STRING"
            ),
            values=np.asarray(getattr(c, c.WhichOneof("values")).values),
            statuses=np.asarray(c.statuses, dtype=np.int8),
            event_ms=np.asarray(c.event_times_unix_ms, dtype=np.int64),
        )
        for c in _columns()
    ]


def test_packed_features_decode_to_what_the_columns_decode_to():
    wanted = ["region", "sales", "count", "promo"]
    packed = pb.PackedFeatures.FromString(encode_packed(_server_columns()).SerializeToString())
    assert list(packed.numeric_names) == ["sales", "count", "promo"] and list(packed.string_names) == ["region"]
    # Values that are not PRESENT travel blanked, not as the store's placeholders.
    assert np.isnan(np.frombuffer(packed.numeric_values, "<f8")[1]) and packed.string_values[1] == ""
    expected = decode_columns(_columns(), 3, wanted, strict=True)
    decoded = decode_packed(packed, 3, wanted, strict=True)
    assert list(decoded.values) == wanted
    for name in wanted:
        np.testing.assert_array_equal(decoded.values[name], expected.values[name])
        np.testing.assert_array_equal(decoded.present[name], expected.present[name])
        np.testing.assert_array_equal(decoded.event_ms[name], expected.event_ms[name])
    assert decoded.newest_ms().tolist() == [9, 9, 8]
    # Decoded values are the caller's to change; the message stays as it was.
    decoded.values["sales"][0] = 99.0
    assert np.frombuffer(packed.numeric_values, "<f8")[0] == 1.5


def test_packed_decoding_is_lenient_or_strict_like_columns():
    packed = encode_packed(_server_columns())
    decoded = decode_packed(packed, 3, ["sales", "absent"])
    assert decoded.values["sales"][0] == 1.5
    assert np.isnan(decoded.values["absent"]).all() and not decoded.present["absent"].any()
    with pytest.raises(FailedPrecondition, match=r"lacks feature\(s\) \['absent'\]"):
        decode_packed(packed, 3, ["sales", "absent"], strict=True)


@pytest.mark.parametrize(
    ("field", "broken", "message"),
    [
        ("rows", 4, "rows 4 .expected 3."),
        ("numeric_values", b"\0" * 8, r"numeric_values bytes 8 \(expected 72\)"),
        ("statuses", b"\1" * 11, r"statuses bytes 11 \(expected 12\)"),
        ("event_times_unix_ms", b"", r"event_times_unix_ms bytes 0 \(expected 96\)"),
    ],
)
def test_a_malformed_packed_answer_is_missing_or_refused_naming_the_field(field, broken, message):
    packed = encode_packed(_server_columns())
    setattr(packed, field, broken)
    decoded = decode_packed(packed, 3, ["sales", "region"])
    for name in ("sales", "region"):  # as a feature the answer lacks (decode_columns)
        assert not decoded.present[name].any() and np.isnan(decoded.values[name]).all()
    with pytest.raises(FailedPrecondition, match=message):
        decode_packed(packed, 3, ["sales"], strict=True)
