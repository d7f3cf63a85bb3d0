"""The drift incidents of a demo run, judged against the events it injected.

    .venv/bin/python -m rxcast.demo --plan calm --out /tmp/inc-calm --work-dir /tmp/inc-calm-work
    .venv/bin/python bench/demo_incidents.py --plan calm --work-dir /tmp/inc-calm-work

Reads the drift service's incident book (`<work-dir>/state/drift/incidents.json`)
and prints each incident with the event it follows (the latest event whose day
is at or before the day its data changed) and the days from that event to the
window that opened it, then per event: incidents, kinds, features, first
incident day. An error incident (concept drift) is judged on actuals, which
arrive a horizon after the forecasts they match: its data days are those of
the forecasts, so it is placed and timed a horizon later, when its labels
came. `--scenario FILE` names the events of a run of another
scenario (JSON, `Scenario.to_json`) than the plan's. Event time, not wall-clock time: the demo plays simulated days.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from rxcast.demo.ledger import labels_lag
from rxcast.demo.plan import PLANS
from rxcast.sim import Scenario


def _day(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date()


def _data_days(incident: dict) -> tuple[dt.date, dt.date]:
    """The day its data changed and the day it opened, in data time (labels' time for error incidents)."""
    lag = labels_lag(incident["kind"])
    return _day(incident["changed_ms"]) + lag, _day(incident["opened_data_ms"]) + lag


def _versions(incident: dict) -> str:
    """The version it opened on, and the newest it was handed to (books before handover have none)."""
    versions = incident.get("versions") or [incident["model_version"]]
    return f"v{versions[0]}" + (f"..v{versions[-1]} ({len(versions)})" if len(versions) > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", choices=sorted(PLANS), required=True)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--scenario", type=Path, help="the scenario played (JSON), when it was not the plan's")
    args = parser.parse_args()
    scenario = Scenario.from_json(args.scenario.read_text()) if args.scenario else PLANS[args.plan]().scenario
    start = dt.date.fromisoformat(scenario.start_day)
    events = sorted((start + dt.timedelta(days=int(e.day)), e.kind) for e in scenario.events)
    book = json.loads((args.work_dir / "state" / "drift" / "incidents.json").read_text())
    incidents = sorted(book["incidents"], key=lambda i: int(i["incident_id"].rsplit("-", 1)[-1]))
    first_played = start + dt.timedelta(days=scenario.history_days or 0)
    print(f"plan {args.plan}: {len(events)} events, played from {first_played}\n")
    print(
        "| incident | kind | versions | severity | features | data changed | opened (data) | event | days after | status |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    per_event: dict[str, list[dict]] = {f"{day} {kind}": [] for day, kind in events}
    before = 0
    for incident in incidents:
        changed, opened = _data_days(incident)
        event = next((e for e in reversed(events) if e[0] <= changed), None)
        label = "-" if event is None else f"{event[0]} {event[1]}"
        after = "-" if event is None else str((opened - event[0]).days)
        if event is None:
            before += 1
        else:
            per_event[label].append(incident)
        print(
            f"| {incident['incident_id']} | {incident['kind']} | {_versions(incident)} | {incident['severity']} "
            f"| {', '.join(incident['features'][:6])} | {changed} | {opened} | {label} | {after} "
            f"| {incident['status']}{': ' + incident['resolution'] if incident['resolution'] else ''} |"
        )
    print(f"\n**{len(incidents)} incidents**; before the first event (or with none): {before}\n")
    if events:
        print("| event | incidents | kinds | features (first incident) | first opened (days after) |")
        print("|---|---|---|---|---|")
        for label, found in per_event.items():
            day = dt.date.fromisoformat(label.split()[0])
            first = min(found, key=lambda i: _data_days(i)[1], default=None)
            after = "-" if first is None else str((_data_days(first)[1] - day).days)
            kinds = ", ".join(sorted({i["kind"] for i in found})) or "-"
            features = "-" if first is None else ", ".join(first["features"][:6])
            print(f"| {label} | {len(found)} | {kinds} | {features} | {after} |")


if __name__ == "__main__":
    main()
