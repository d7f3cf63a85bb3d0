"""Feeds the engine each complete business day's inputs against a year before:
asks the feature service for the daily totals a day's judgement reads
(rxcast.drift.seasonal) and hands the judged day to the engine's incidents.

A day is judged once the feature service holds records of it, in order, at
most `catch_up_days` back (after downtime); the first start judges from the
latest day on, not the history, and days before any model serves are passed
over (there is no line to hand them to). A day's records come in one ingest call (the
trainer's data clock reads the latest business day the same way). The last
judged day is kept in `yoy.json` under the data dir, written after the
engine took the day: a crash in between judges that day again, which opens
nothing twice (the incident it opened takes the same day's window again),
though a day on which its cause did not fire may count twice as clean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rxcast.clients import FeatureClient
from rxcast.drift.codec import StateError, integer, require
from rxcast.drift.engine import DriftEngine
from rxcast.drift.incidents import Incident
from rxcast.drift.polling import Poller
from rxcast.drift.seasonal import SeasonalSettings, judge
from rxcast.model import timebase
from rxcast.runtime.durable import quarantine, read_json, write_json
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.seasonal_feed")

YOY_FORMAT = "rxcast.drift.yoy/1"


class YearOverYearFeed(Poller):
    """Judges complete days against a year before every `interval` seconds, on a thread."""

    def __init__(
        self,
        engine: DriftEngine,
        address: str,
        interval: float,
        *,
        catch_up_days: int = 31,
        timeout: float = 30.0,
    ):
        super().__init__("yoy", interval)
        self.engine = engine
        self.settings: SeasonalSettings = engine.settings.seasonal
        self.catch_up_days = catch_up_days
        self._client = FeatureClient(address, timeout=timeout)
        self._path = None if engine.data_dir is None else Path(engine.data_dir) / "yoy.json"
        self.judged = self._load()

    def close(self) -> None:
        self._client.close()

    def poll_once(self) -> list[Incident]:
        return self.judge_once()

    def judge_once(self) -> list[Incident]:
        """Judge the complete days not judged yet; the incidents opened."""
        s = self.settings
        latest_text = self._client.daily_totals(s.field, [], []).latest_business_day
        if not latest_text:
            return []
        latest = timebase.day_number(latest_text, "latest_business_day")
        if not self.engine.incidents.serving_lines():
            # No model serves yet (the history is being seeded): nothing to hand a day to.
            if self.judged != latest:
                self._save(latest)
            return []
        first = latest if self.judged is None else max(self.judged + 1, latest - self.catch_up_days)
        opened: list[Incident] = []
        for day in range(first, latest + 1):
            if self.stopping:
                break
            days = [timebase.day_text(d) for d in s.days_needed(day)]
            frame = self._client.daily_totals(s.field, ["store_id", s.by], days).frame
            judged = judge(_totals(frame, s.by), day, s)
            opened += self.engine.observe_year_over_year(day, judged)
            self._save(day)
            log.info(
                "year-over-year day judged",
                business_day=timebase.day_text(day),
                segments=len(judged),
                firing=[d.segment for d in judged if d.fires],
                highest=max((round(d.ratio, 3) for d in judged), default=None),
            )
        return opened

    def _load(self) -> int | None:
        if self._path is None:
            return None
        try:
            doc = require(read_json(self._path, default={"format": YOY_FORMAT, "judged": None}), ("judged",), "yoy")
            if doc.get("format") != YOY_FORMAT:
                raise StateError(f"yoy: format {doc.get('format')!r}, not {YOY_FORMAT!r}")
            return None if doc["judged"] is None else integer(doc["judged"], "yoy.judged")
        except (StateError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
            quarantine(self._path, f"year-over-year state unreadable, judging from the latest day on: {exc}")
            return None

    def _save(self, day: int) -> None:
        self.judged = day
        if self._path is not None:
            write_json(self._path, {"format": YOY_FORMAT, "judged": day})


def _totals(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """The client's daily totals as `judge` reads them (epoch days, a segment column)."""
    days, _ = timebase.parse_days(frame["business_day"].to_numpy(dtype=object))
    return pd.DataFrame(
        {
            "business_day": days.astype(np.int64),
            "store_id": frame["store_id"].to_numpy(dtype=object),
            "segment": frame[by].to_numpy(dtype=object),
            "sum": frame["sum"].to_numpy(dtype=np.float64),
            "count": frame["count"].to_numpy(dtype=np.int64),
        }
    )
