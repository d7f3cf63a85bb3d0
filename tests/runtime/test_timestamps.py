"""The one Timestamp converter: every malformed case is InvalidArgument naming
the field; valid instants convert exactly, both ways."""

from __future__ import annotations

import datetime as dt

import pytest

from rxcast.predictor.v1 import predictor_pb2
from rxcast.runtime import timestamps
from rxcast.runtime.errors import InvalidArgument


@pytest.mark.parametrize(
    ("seconds", "nanos", "problem"),
    [
        (timestamps.MAX_SECONDS + 1, 0, "outside 0001-01-01..9999-12-31"),
        (timestamps.MIN_SECONDS - 1, 0, "outside 0001-01-01..9999-12-31"),
        (2**62, 0, "outside 0001-01-01..9999-12-31"),
        (-(2**62), 0, "outside 0001-01-01..9999-12-31"),
        (0, -1, "nanos -1 is outside [0, 1e9)"),
        (0, 1_000_000_000, "nanos 1000000000 is outside [0, 1e9)"),
    ],
)
def test_an_invalid_timestamp_is_an_invalid_argument_naming_the_field(seconds, nanos, problem):
    stamp = timestamps.Timestamp(seconds=seconds, nanos=nanos)
    for convert in (timestamps.to_ms, timestamps.to_datetime):
        with pytest.raises(InvalidArgument, match=r"^as_of_time: .*" + problem.replace("[", r"\[").replace(")", r"\)")):
            convert(stamp, "as_of_time")


def test_the_range_ends_are_valid_and_convert_exactly():
    first = timestamps.Timestamp(seconds=timestamps.MIN_SECONDS)
    last = timestamps.Timestamp(seconds=timestamps.MAX_SECONDS, nanos=999_999_999)
    assert timestamps.to_datetime(first, "t") == dt.datetime(1, 1, 1, tzinfo=dt.UTC)
    assert timestamps.to_datetime(last, "t").year == 9999
    assert timestamps.to_ms(last, "t") == timestamps.MAX_SECONDS * 1000 + 999


def test_round_trips_in_every_unit():
    ms = 1_767_225_600_123
    assert timestamps.to_ms(timestamps.from_ms(ms), "t") == ms
    assert timestamps.to_ms(timestamps.from_seconds(1_767_225_600.5), "t") == 1_767_225_600_500
    when = dt.datetime(2026, 1, 1, 12, 30, tzinfo=dt.UTC)
    assert timestamps.to_datetime(timestamps.from_datetime(when), "t") == when
    assert timestamps.to_datetime(timestamps.from_text("2026-01-01T12:30:00+00:00"), "t") == when
    assert timestamps.from_text("") == timestamps.Timestamp()


def test_an_optional_field_is_none_when_unset_and_checked_when_set():
    request = predictor_pb2.PredictRequest()
    assert timestamps.optional_ms(request, "as_of_time") is None
    assert timestamps.optional_datetime(request, "as_of_time") is None
    request.as_of_time.CopyFrom(timestamps.from_ms(86_400_000))
    assert timestamps.optional_ms(request, "as_of_time") == 86_400_000
    request.as_of_time.seconds = timestamps.MAX_SECONDS + 1
    with pytest.raises(InvalidArgument, match="^as_of_time: "):
        timestamps.optional_ms(request, "as_of_time")
