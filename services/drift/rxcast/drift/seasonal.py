"""Each segment's daily inputs judged against the same weekday a year before.

A demand shock and a flu season move a medication category's demand alike
against the weeks a model was trained on: in the calm world the antiviral
season reaches 2.44x the online reference's same weekdays, the default
demo's shock 2.28x in its first three days. Against the same weekday 52
weeks before, over the category's trend since then (the mean of days
`trend_first`..`trend_last` before each, the same span a year back), the
season is in the reference and the shock is not: the calm world's 126 days
stay within 0.74-1.49 in every category, and the shock reaches 1.67-1.90
in respiratory in its first three days. So the inputs are judged by day:

- a day's level in a segment is the mean of `field` (units dispensed) over
  its records, from the feature service's history (the drift service sees
  only what is served, never a year of it);
- like with like: only stores that held records of the segment in the
  year-ago trend span count, on every day the ratio reads (a store opened
  since, such as a new region's, would move a segment's mean by the level
  of its first days, not by a change in demand);
- a segment fires on a day when the ratio is beyond `ratio` (above it, or
  below its inverse) on that day and on the `confirm_days` - 1 days before,
  the same way: one day of noise fires nothing.

The ratio needs no state: each judged day reads the days it needs afresh.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from rxcast.model import timebase
from rxcast.runtime.errors import InvalidArgument

#: The family a segment's year-over-year change is named by in an incident: "yoy:respiratory".
YOY_PREFIX = "yoy:"


def yoy_feature(segment: str) -> str:
    return f"{YOY_PREFIX}{segment}"


@dataclasses.dataclass(frozen=True)
class SeasonalSettings:
    #: The record field a segment's daily level is the mean of.
    field: str = "units_dispensed"
    #: The record attribute that names a record's segment ("" judges none).
    by: str = "medication_category"
    #: A day fires when its ratio is at least this, or at most its inverse...
    ratio: float = 1.5
    #: ...on this many days in a row.
    confirm_days: int = 2
    #: Days back to the same weekday a year before.
    year_days: int = 364
    #: The trend's days before a judged day (and before its year-ago day).
    trend_first: int = 31
    trend_last: int = 4
    #: Fewest records a day is judged on (the day and its year-ago day each).
    min_count: int = 100

    def __post_init__(self) -> None:
        if self.ratio <= 1:
            raise InvalidArgument("seasonal: ratio must be > 1")
        if self.confirm_days < 1 or self.min_count < 1:
            raise InvalidArgument("seasonal: confirm_days and min_count must be >= 1")
        if not 0 < self.trend_last <= self.trend_first:
            raise InvalidArgument("seasonal: the trend needs 0 < trend_last <= trend_first")
        if self.year_days <= self.trend_first:
            raise InvalidArgument("seasonal: year_days must be > trend_first")

    def days_needed(self, day: int) -> np.ndarray:
        """The epoch days judging `day` reads: the confirming days, their year-ago
        days and the trend spans before each."""
        judged = np.arange(day - self.confirm_days + 1, day + 1)
        ends = np.concatenate([judged, judged - self.year_days])
        spans = ends[:, None] - np.arange(self.trend_last, self.trend_first + 1)[None, :]
        return np.unique(np.concatenate([ends, spans.ravel()]))


@dataclasses.dataclass(frozen=True)
class SeasonalDay:
    """One segment's judged day."""

    segment: str
    day: int
    #: The day's mean over the year-ago day's, over the trend's (since then).
    ratio: float
    mean: float
    year_mean: float
    #: The trend spans' means: before the day, and before its year-ago day.
    trend_mean: float
    year_trend_mean: float
    count: int
    #: The ratios of the confirming days, oldest first (this day's last).
    ratios: tuple[float, ...]
    fires: bool

    @property
    def start_ms(self) -> int:
        """The instant the day's records stand at (its end), as a window of rows of that day starts."""
        return int(timebase.day_end_ms(self.day))

    def describe(self, field: str, by: str, year_days: int) -> str:
        return (
            f"{field} of {by}={self.segment} on {timebase.day_text(self.day)}: mean {self.mean:.3g} against "
            f"{self.year_mean:.3g} on the same weekday {year_days} days before, {self.ratio:.2f}x the trend "
            f"since then ({self.trend_mean:.3g} against {self.year_trend_mean:.3g}); "
            f"{len(self.ratios)} days in a row: {', '.join(f'{r:.2f}x' for r in self.ratios)}"
        )

    def evidence(self, settings: SeasonalSettings) -> dict[str, Any]:
        """The day's numbers, and its ratio as a signal (the shape window evidence has)."""
        above = self.ratio >= 1
        return {
            "signals": [
                {
                    "name": "ratio to a year before",
                    "value": self.ratio,
                    "threshold": settings.ratio if above else 1.0 / settings.ratio,
                    "adjusted_p_value": None,
                    "fired": self.fires,
                }
            ],
            "business_day": timebase.day_text(self.day),
            "ratio": self.ratio,
            "mean": self.mean,
            "year_ago_mean": self.year_mean,
            "trend_mean": self.trend_mean,
            "year_ago_trend_mean": self.year_trend_mean,
            "count": self.count,
            "ratios": list(self.ratios),
        }


def judge(totals: pd.DataFrame, day: int, settings: SeasonalSettings) -> list[SeasonalDay]:
    """Judge `day` for every segment from per-(business day, store, segment)
    totals (columns business_day as epoch days, store_id, segment, sum,
    count) covering `settings.days_needed(day)`; segments lacking a day or
    records are left out."""
    s = settings
    if totals.empty:
        return []
    first = day - s.confirm_days + 1
    population_days = first - s.year_days - np.arange(s.trend_last, s.trend_first + 1)
    held = totals[totals.business_day.isin(population_days) & (totals["count"] > 0)]
    population = held[["store_id", "segment"]].drop_duplicates()
    rows = totals.merge(population, on=["store_id", "segment"])
    grouped = rows.groupby(["business_day", "segment"])[["sum", "count"]].sum()
    counts = grouped["count"].unstack()
    means = (grouped["sum"] / grouped["count"]).unstack()
    judged_days = np.arange(first, day + 1)
    span = np.arange(s.trend_last, s.trend_first + 1)

    def on(frame: pd.DataFrame, days: np.ndarray, back: int = 0) -> pd.DataFrame:
        """The frame's rows of `days` - `back`, indexed by `days` (NaN where none)."""
        return frame.reindex(index=days - back).set_axis(days, axis=0)

    trend = pd.DataFrame({t: on(means, t - span).mean() for t in judged_days}).T
    year_trend = pd.DataFrame({t: on(means, t - span, s.year_days).mean() for t in judged_days}).T
    now, year = on(means, judged_days), on(means, judged_days, s.year_days)
    ratios = (now / year) / (trend / year_trend)
    enough = (on(counts, judged_days) >= s.min_count) & (on(counts, judged_days, s.year_days) >= s.min_count)
    judged = []
    for segment in sorted(ratios.columns):
        series = ratios[segment].where(enough[segment])
        if not np.isfinite(series.loc[day]):
            continue
        values = series.to_numpy(dtype=float)
        rising = bool(np.all(values >= s.ratio))
        falling = bool(np.all(values <= 1.0 / s.ratio))
        judged.append(
            SeasonalDay(
                segment=str(segment),
                day=day,
                ratio=float(series.loc[day]),
                mean=float(now.loc[day, segment]),
                year_mean=float(year.loc[day, segment]),
                trend_mean=float(trend.loc[day, segment]),
                year_trend_mean=float(year_trend.loc[day, segment]),
                count=int(counts.at[day, segment]),
                ratios=tuple(float(v) for v in values),
                fires=rising or falling,
            )
        )
    return judged
