"""Business days and the instants rows stand at: the suite's one time base.

A business day D is held as its epoch day number (days since 1970-01-01).
The feature service stamps a record of day D at the END of D, i.e. (D+1)
00:00 UTC: a row "as of" instant t sees exactly the records of the days that
ended by t, so the business day a row at t stands on is floor(t / 1 day) - 1,
and its label covers days D+1 .. D+horizon.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from rxcast.runtime.errors import InvalidArgument

DAY_MS = 86_400_000
EPOCH = dt.date(1970, 1, 1)


def day_end_ms(days):
    """The instant (ms since the epoch) at which business day(s) `days` end:
    the instant a row of those days stands at."""
    return (np.asarray(days, dtype=np.int64) + 1) * DAY_MS


def as_of_day(instants_ms) -> np.ndarray:
    """The last business day whose end is at or before each instant."""
    return np.floor_divide(np.asarray(instants_ms, dtype=np.int64), DAY_MS) - 1


def parse_days(texts) -> tuple[np.ndarray, np.ndarray]:
    """Strict "YYYY-MM-DD" strings → (epoch days, valid mask), vectorized.

    Anything but exactly that shape naming a real calendar date is invalid
    (its epoch day is then 0).
    """
    series = pd.Series(np.asarray(texts, dtype=object), dtype="string")
    valid = series.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy(dtype=bool)
    digits = series.where(valid, "1970-01-01")
    years = digits.str.slice(0, 4).astype(int).to_numpy()
    months = digits.str.slice(5, 7).astype(int).to_numpy()
    days_of_month = digits.str.slice(8, 10).astype(int).to_numpy()
    valid &= (months >= 1) & (months <= 12) & (days_of_month >= 1)
    months = np.clip(months, 1, 12)
    first = ((years - 1970) * 12 + months - 1).astype("datetime64[M]")
    month_length = ((first + 1).astype("datetime64[D]") - first.astype("datetime64[D]")).astype(np.int64)
    valid &= days_of_month <= month_length
    days = first.astype("datetime64[D]").astype(np.int64) + days_of_month - 1
    return np.where(valid, days, 0).astype(np.int64), valid


def day_text(day: int) -> str:
    """Epoch day → "YYYY-MM-DD"."""
    return (EPOCH + dt.timedelta(days=int(day))).isoformat()


def day_number(text: str, field: str) -> int:
    """One "YYYY-MM-DD" string → epoch day; InvalidArgument naming `field` otherwise."""
    if not isinstance(text, str) or len(text) != 10:
        raise InvalidArgument(f"{field}: must be a date as YYYY-MM-DD, got {str(text)[:40]!r}")
    days, valid = parse_days([text])
    if not valid[0]:
        raise InvalidArgument(f"{field}: must be a date as YYYY-MM-DD, got {text!r}")
    return int(days[0])


def day_date(day: int) -> dt.date:
    """Epoch day → datetime.date."""
    return EPOCH + dt.timedelta(days=int(day))


def today() -> int:
    """Today's epoch day (UTC)."""
    return (dt.datetime.now(dt.UTC).date() - EPOCH).days
