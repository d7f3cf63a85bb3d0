"""Business days as epoch day numbers, and the instants rows stand at.

The feature service stamps a business day's record at the END of that day:
a row of day D (a DailyGrid row, a training row) is "as of" (D+1) 00:00 UTC,
so it sees exactly the records of the days up to D, and its label covers
days D+1 .. D+horizon.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from rxcast.runtime.errors import InvalidArgument

DAY_MS = 86_400_000
_EPOCH = dt.date(1970, 1, 1)


def parse_day(text: str, field: str) -> int:
    """"YYYY-MM-DD" → epoch day; InvalidArgument naming `field` otherwise."""
    try:
        if len(text) != 10:
            raise ValueError
        return (dt.date.fromisoformat(text) - _EPOCH).days
    except ValueError:
        raise InvalidArgument(f"{field}: must be a date as YYYY-MM-DD, got {text!r}") from None


def day_text(day: int) -> str:
    """Epoch day → "YYYY-MM-DD"."""
    return (_EPOCH + dt.timedelta(days=int(day))).isoformat()


def as_of_ms(days) -> np.ndarray:
    """The instant (ms since the epoch) a row of business day(s) `days` stands at."""
    return (np.asarray(days, dtype=np.int64) + 1) * DAY_MS


def row_day(instants_ms) -> np.ndarray:
    """The business day a row standing at each instant describes."""
    return np.floor_divide(np.asarray(instants_ms, dtype=np.int64), DAY_MS) - 1
