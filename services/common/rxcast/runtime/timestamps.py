"""google.protobuf.Timestamp to and from the suite's units, validated once.

Instants travel as Timestamps in scalar fields and as int64 milliseconds since
the epoch in columns. A Timestamp outside the range the protobuf spec allows
(0001-01-01 to 9999-12-31, nanos in [0, 1e9)) is the caller's error, reported
as InvalidArgument naming the field, never a crash deeper down.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from google.protobuf.message import Message

from rxcast.runtime.errors import InvalidArgument

Timestamp = timestamp_pb2.Timestamp

MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


def checked(stamp: Timestamp, field: str) -> Timestamp:
    """`stamp`, if it is a valid Timestamp; InvalidArgument naming `field` otherwise."""
    if not MIN_SECONDS <= stamp.seconds <= MAX_SECONDS:
        raise InvalidArgument(f"{field}: seconds {stamp.seconds} is outside 0001-01-01..9999-12-31")
    if not 0 <= stamp.nanos < 1_000_000_000:
        raise InvalidArgument(f"{field}: nanos {stamp.nanos} is outside [0, 1e9)")
    return stamp


def to_ms(stamp: Timestamp, field: str) -> int:
    """Milliseconds since the epoch (floored), validated."""
    return checked(stamp, field).ToMilliseconds()


def to_datetime(stamp: Timestamp, field: str) -> dt.datetime:
    """A timezone-aware UTC datetime, validated."""
    return checked(stamp, field).ToDatetime(tzinfo=dt.UTC)


def optional_ms(message: Message, field: str) -> int | None:
    """`message.<field>` in ms, or None when the field is not set."""
    return to_ms(getattr(message, field), field) if message.HasField(field) else None


def optional_datetime(message: Message, field: str) -> dt.datetime | None:
    """`message.<field>` as a UTC datetime, or None when the field is not set."""
    return to_datetime(getattr(message, field), field) if message.HasField(field) else None


def from_ms(ms: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(int(ms))
    return stamp


def from_seconds(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def from_datetime(when: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def from_text(value: str) -> Timestamp:
    """An ISO 8601 instant as a Timestamp; the empty Timestamp for ""."""
    if not value:
        return Timestamp()
    return from_datetime(dt.datetime.fromisoformat(value))
