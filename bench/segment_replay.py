"""A demo run's served forecasts judged again by segment, as the drift service judges them.

    .venv/bin/python -m rxcast.demo --plan calm --out /tmp/calm --work-dir /tmp/calm-work
    .venv/bin/python bench/segment_replay.py --plan calm --work-dir /tmp/calm-work [--rise 0.2 --z 4]

Reads the forecasts the drift service matched with actuals (its prediction
log, `<work-dir>/state/drift/state/predictions.npz`) and the line of each
version (its incident book), takes their actuals from the plan's world (the
units dispensed over the horizon after each forecast's as-of day, as the
feature service sums them) and feeds the losses, one forecast day at a time
per line, to `rxcast.drift.segments.SegmentErrors` with the given settings.
Prints the days that rose and the rises that would fire, each with the event
before it. A run recorded before segments were judged replays as well: the
segment of a row is its medication's category in the world.

What it answers: whether settings other than the run's would have fired on
the same served stream. Where nothing fires, the run's closed loop would have
been the same; a firing would have triggered retraining and changed the
forecasts after it, which a replay cannot show.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from rxcast.demo.ledger import labels_lag
from rxcast.demo.plan import PLANS
from rxcast.drift.incidents import IncidentBook
from rxcast.drift.segments import SegmentErrors, SegmentSettings
from rxcast.model.residuals import forecast_residuals
from rxcast.model.timebase import DAY_MS
from rxcast.sim import Scenario, simulate


def _date(day: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=day)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", choices=sorted(PLANS), required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--scenario", type=Path, help="the scenario played (JSON), when it was not the plan's")
    parser.add_argument("--rise", type=float, default=SegmentSettings.rise)
    parser.add_argument("--z", type=float, default=SegmentSettings.z)
    args = parser.parse_args()
    settings = SegmentSettings(rise=args.rise, z=args.z)
    scenario = Scenario.from_json(args.scenario.read_text()) if args.scenario else PLANS[args.plan]().scenario
    drift = args.work_dir / "state" / "drift"
    logged = np.load(drift / "state" / "predictions.npz", allow_pickle=False)
    book = IncidentBook(drift)

    print(f"simulating the {args.plan} world ...", flush=True)
    world = simulate(scenario)
    matched = logged["matched"]
    stores = logged["store_id_values"][logged["store_id_codes"]][matched]
    medications = logged["medication_id_values"][logged["medication_id_codes"]][matched]
    event_ms = logged["event_ms"][matched]
    versions = logged["model_version"][matched]
    # The as-of day of a forecast asked for in the morning is the business day before it.
    as_of = pd.to_datetime(event_ms, unit="ms").normalize() - pd.Timedelta(days=1)
    actuals = np.asarray(
        world.actuals(pd.DataFrame({"store_id": stores, "medication_id": medications, "business_day": as_of})),
        dtype=float,
    )
    losses = np.abs(forecast_residuals(actuals, logged["prediction"][matched]))
    category = world.medications.set_index("medication_id")["medication_category"]
    segments = category.reindex(medications).to_numpy(dtype=object)
    known, row_version = np.unique(versions, return_inverse=True)
    row_lines = np.array([book.line(int(v)) for v in known.tolist()], dtype=object)[row_version.reshape(-1)]
    days = event_ms // DAY_MS

    tracker = SegmentErrors(settings)
    judged = []
    for day in np.unique(days):
        for line in sorted(set(row_lines[days == day])):
            rows = (days == day) & (row_lines == line) & np.isfinite(losses)
            judged += tracker.update(line, segments[rows], event_ms[rows], losses[rows], versions[rows])

    start = dt.date.fromisoformat(scenario.start_day)
    events = sorted((start + dt.timedelta(days=int(e.day)), e.kind) for e in scenario.events)
    lag = labels_lag("concept_drift")

    def event_before(day: dt.date) -> str:
        before = [f"{d} {kind}" for d, kind in events if d <= day]
        return before[-1] if before else "-"

    print(
        f"\n{len(judged)} segment-days judged on {len({d.line for d in judged})} lines, "
        f"{len({d.segment for d in judged})} segments (rise {settings.rise}, z {settings.z})\n"
    )
    print("| line | segment | forecast day | labels in | mean / median | spreads | in a row | fires | event before |")
    print("|---|---|---|---|---|---|---|---|---|")
    for d in (d for d in judged if d.rising):
        day = _date(d.day)
        print(
            f"| {d.line} | {d.segment} | {day} | {day + lag} | {d.mean / d.baseline:.2f} | "
            f"{(d.mean - d.baseline) / d.spread:.1f} | {d.streak} | {'yes' if d.fires else 'no'} | "
            f"{event_before(day + lag)} |"
        )
    fired = [d for d in judged if d.fires]
    print(f'\n**{len(fired)} firing segment-days**; per event ("-": before any):')
    for event in ["-", *(f"{d} {kind}" for d, kind in events)]:
        after = [d for d in fired if event_before(_date(d.day) + lag) == event]
        first = min(after, key=lambda d: d.day, default=None)
        shown = "" if first is None else f"; first {first.segment} ({first.line}), labels in {_date(first.day) + lag}"
        print(f"- {event}: {len(after)} firing days{shown}")


if __name__ == "__main__":
    main()
