"""Errors judged within segments (medication categories) against their own recent days.

A demand shock in respiratory and antiviral medicines moves an eighth of the
chain's rows. The whole stream's scaled error rose by 0.02 of its level in the
default demo, inside the spread the calm world shows, while the mean scaled
loss of the two categories rose 1.6x for five days until the daily refits
caught up. Errors are therefore judged per (model line, segment) too:

- each matched loss goes to the day of its forecast's event time;
- a day is judged once losses of a later day reach its line (labels come in
  day by day), if it holds at least `min_count` losses;
- it rises when its mean is at least `rise` above the median of the
  segment's previous `baseline_days` judged days, and at least `z` spreads
  above it, the spread being the larger of those days' robust standard
  deviation (1.4826 MAD) and the day's own standard error;
- a rise fires from the `confirm_days`-th rising day in a row on (one day of
  noise fires nothing), every day it lasts.

The baseline rolls with the line: a season the refits follow moves it with
them, a shock stands out for the days before they catch up. Segments need no
reference from the trainer, so every version of a line adds to one baseline
(the online line is a new version every day).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from rxcast.drift.codec import StateError, integer, number, require
from rxcast.model.timebase import DAY_MS
from rxcast.runtime.errors import InvalidArgument

#: The family a segment's rise is named by in an incident: "errors:respiratory".
SEGMENT_PREFIX = "errors:"


@dataclasses.dataclass(frozen=True)
class SegmentSettings:
    #: The logged column that names a row's segment ("" judges no segments).
    by: str = "medication_category"
    #: A day rises when its mean loss is at least this fraction above its baseline's median...
    rise: float = 0.2
    #: ...and at least this many spreads above it.
    z: float = 4.0
    #: Judged days a segment's baseline holds, and the fewest it judges against.
    baseline_days: int = 28
    min_baseline_days: int = 7
    #: Fewest losses a day is judged on.
    min_count: int = 100
    #: Rising days in a row before a rise fires.
    confirm_days: int = 2

    def __post_init__(self) -> None:
        if self.rise <= 0 or self.z <= 0:
            raise InvalidArgument("segments: rise and z must be > 0")
        if min(self.min_baseline_days, self.min_count, self.confirm_days) < 1:
            raise InvalidArgument("segments: min_baseline_days, min_count and confirm_days must be >= 1")
        if self.baseline_days < self.min_baseline_days:
            raise InvalidArgument("segments: baseline_days must be >= min_baseline_days")


def segment_feature(segment: str) -> str:
    return f"{SEGMENT_PREFIX}{segment}"


@dataclasses.dataclass(frozen=True)
class SegmentDay:
    """One judged day of a segment on a line."""

    line: str
    segment: str
    day: int
    mean: float
    count: int
    baseline: float
    spread: float
    rising: bool
    #: Rising days in a row, this one included.
    streak: int
    fires: bool
    #: The newest version whose forecasts the day holds.
    model_version: int

    @property
    def start_ms(self) -> int:
        return self.day * DAY_MS

    def describe(self, by: str) -> str:
        ratio = self.mean / self.baseline if self.baseline > 0 else float("inf")
        return (
            f"errors of {by}={self.segment} on the {self.line or 'default'} line: mean scaled loss "
            f"{self.mean:.3f} ({self.count} forecasts of one day), {ratio:.2f}x the median {self.baseline:.3f} "
            f"of its previous days ({(self.mean - self.baseline) / self.spread:.1f} spreads), "
            f"{self.streak} days in a row"
        )

    def evidence(self) -> dict[str, Any]:
        return {
            "day_start_ms": self.start_ms,
            "mean_scaled_loss": self.mean,
            "count": self.count,
            "baseline_median": self.baseline,
            "spread": self.spread,
            "days_in_a_row": self.streak,
        }


@dataclasses.dataclass
class _Bucket:
    total: float = 0.0
    squares: float = 0.0
    count: int = 0
    version: int = 0


@dataclasses.dataclass
class _Track:
    means: list[float] = dataclasses.field(default_factory=list)
    buckets: dict[int, _Bucket] = dataclasses.field(default_factory=dict)
    judged: int = -1
    streak: int = 0


class SegmentErrors:
    """The per-(line, segment) day buckets and baselines; not thread-safe (the engine's lock guards it)."""

    def __init__(self, settings: SegmentSettings):
        self.settings = settings
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._newest: dict[str, int] = {}

    def update(
        self, line: str, segments: np.ndarray, event_ms: np.ndarray, losses: np.ndarray, versions: np.ndarray
    ) -> list[SegmentDay]:
        """Add a line's matched losses; the days this closes, judged, oldest first."""
        if not losses.size:
            return []
        days = np.asarray(event_ms, dtype=np.int64) // DAY_MS
        segments = np.asarray(segments, dtype=object)
        ok = np.isfinite(losses) & (segments != "")
        newest = max(self._newest.get(line, -1), int(days.max()))
        self._newest[line] = newest
        if ok.any():
            # One group per (segment, day): segment codes and day offsets as one integer key.
            names, named = np.unique(segments[ok].astype(str), return_inverse=True)
            first_day = int(days[ok].min())
            span = int(days[ok].max()) - first_day + 1
            keys, inverse = np.unique(named.reshape(-1) * span + (days[ok] - first_day), return_inverse=True)
            inverse = inverse.reshape(-1)
            total = np.bincount(inverse, losses[ok])
            squares = np.bincount(inverse, losses[ok] ** 2)
            count = np.bincount(inverse)
            version = np.zeros(keys.size, dtype=np.int64)
            np.maximum.at(version, inverse, versions[ok].astype(np.int64))
            for i, key in enumerate(keys.tolist()):
                segment, day = str(names[key // span]), first_day + key % span
                track = self._tracks.setdefault((line, segment), _Track())
                # A loss late for a judged day joins the oldest day not judged yet.
                bucket = track.buckets.setdefault(max(day, track.judged + 1), _Bucket())
                bucket.total += float(total[i])
                bucket.squares += float(squares[i])
                bucket.count += int(count[i])
                bucket.version = max(bucket.version, int(version[i]))
        judged = []
        for (track_line, segment), track in sorted(self._tracks.items()):
            if track_line != line:
                continue
            for day in sorted(d for d in track.buckets if d < newest):
                judged.extend(self._judge(line, segment, track, day, track.buckets.pop(day)))
        return sorted(judged, key=lambda d: (d.day, d.segment))

    def _judge(self, line: str, segment: str, track: _Track, day: int, bucket: _Bucket) -> list[SegmentDay]:
        s = self.settings
        track.judged = max(track.judged, day)
        if bucket.count < s.min_count:
            return []  # too few to judge: neither a rise nor a day of its baseline
        mean = bucket.total / bucket.count
        variance = max(bucket.squares / bucket.count - mean * mean, 0.0)
        standard_error = float(np.sqrt(variance / bucket.count))
        baseline = np.asarray(track.means, dtype=float)
        track.means = [*track.means, mean][-s.baseline_days :]
        if baseline.size < s.min_baseline_days:
            track.streak = 0
            return []
        median = float(np.median(baseline))
        spread = max(1.4826 * float(np.median(np.abs(baseline - median))), standard_error, 1e-12)
        rising = mean >= (1.0 + s.rise) * median and (mean - median) / spread >= s.z
        track.streak = track.streak + 1 if rising else 0
        return [
            SegmentDay(
                line=line,
                segment=segment,
                day=day,
                mean=mean,
                count=bucket.count,
                baseline=median,
                spread=spread,
                rising=rising,
                streak=track.streak,
                fires=rising and track.streak >= s.confirm_days,
                model_version=bucket.version,
            )
        ]

    # ------------------------------------------------------------ state

    def to_dict(self, line: str | None = None) -> dict[str, Any]:
        """The state (of one line, or all): plain JSON."""
        return {
            "newest": {k: v for k, v in self._newest.items() if line is None or k == line},
            "tracks": [
                {
                    "line": track_line,
                    "segment": segment,
                    "means": list(track.means),
                    "judged": track.judged,
                    "streak": track.streak,
                    "buckets": [
                        [day, b.total, b.squares, b.count, b.version] for day, b in sorted(track.buckets.items())
                    ],
                }
                for (track_line, segment), track in sorted(self._tracks.items())
                if line is None or track_line == line
            ],
        }

    def restore(self, doc: Mapping[str, Any]) -> None:
        """Take the state `to_dict` gave (of one line: that line's tracks replace its own)."""
        doc = require(doc, ("newest", "tracks"), "segment errors")
        tracks = {}
        for item in doc["tracks"]:
            item = require(item, ("line", "segment", "means", "judged", "streak", "buckets"), "segment track")
            if not isinstance(item["line"], str) or not isinstance(item["segment"], str):
                raise StateError("segment track: line and segment must be strings")
            track = _Track(
                means=[number(m, "segment track.means") for m in item["means"]][-self.settings.baseline_days :],
                judged=integer(item["judged"], "segment track.judged"),
                streak=integer(item["streak"], "segment track.streak"),
            )
            for row in item["buckets"]:
                if not isinstance(row, list) or len(row) != 5:
                    raise StateError("segment track.buckets: rows of [day, total, squares, count, version]")
                track.buckets[integer(row[0], "bucket day")] = _Bucket(
                    number(row[1], "bucket total"),
                    number(row[2], "bucket squares"),
                    integer(row[3], "bucket count"),
                    integer(row[4], "bucket version"),
                )
            tracks[(item["line"], item["segment"])] = track
        newest = {str(k): integer(v, "segment errors.newest") for k, v in doc["newest"].items()}
        for line in newest:
            self._tracks = {k: t for k, t in self._tracks.items() if k[0] != line}
        self._tracks.update(tracks)
        self._newest.update(newest)
