"""A seeded, deterministic pharmacy world: the demo data and the test oracle.

    from rxcast.sim import DriftEvent, Scenario, default_scenario, simulate

    scenario = default_scenario(seed=7)          # 30 stores × 100 medications,
                                                 # 365 days of history + 120 to play
    scenario = scenario.with_events(
        DriftEvent("demand_shock", day=400, params={"multiplier": 2.5, "categories": ["antiviral"]}),
        DriftEvent("unit_change", day="2026-03-01", params={"field": "units_on_hand", "factor": 10}),
    )
    world = simulate(scenario)                   # same scenario, same world

    world.records                 # one row per (store, medication, business day), InventoryRecord
                                  # columns; business_day is datetime64 (midnight), ids and labels
                                  # are categoricals of str, optional numbers float64 with NaN
    world.records_for_day("2026-02-05")          # one day's records, as the app pushes them
    world.days, world.stores, world.medications  # calendar and attribute tables
    world.events                  # ground-truth log: kind, day, business_day, resolved params
                                  # (plus the ids that new_medication / new_region added)
    world.actuals(rows)           # realized target: units dispensed over (t, t+7] per row
    world.truth()                 # latent demand and the true values behind reporting changes

    from rxcast.sim.export import record_dicts
    InventoryRecord(**d) for d in record_dicts(world.records_for_day(day))   # protos, NaN left unset

Drift kinds (`DRIFT_KINDS`), each from its day on and never before:
new_medication, demand_shock, new_region (real-world and entity changes),
unit_change, missing_values, constant_column (reporting changes: the world is
unchanged, one recorded field is not), concept_change (prescriptions stop
leading dispensing, or promotions stop lifting demand; inputs keep their
distribution). `DriftEvent(kind, day).resolved_params()` lists each kind's
parameters with their defaults.

Scenarios round-trip through `to_dict`/`from_dict`, `to_json`/`from_json` and
`to_yaml`/`from_yaml`. The CLI, `python -m rxcast.sim --help`, writes records
to parquet or CSV, prints per-day or per-event summaries and takes
`--event kind@day[:name=value,...]`.
"""

from rxcast.sim.scenario import DRIFT_KINDS, DriftEvent, Scenario, default_scenario
from rxcast.sim.world import HORIZON_DAYS, EventLogEntry, World, simulate

__all__ = [
    "DRIFT_KINDS",
    "HORIZON_DAYS",
    "DriftEvent",
    "EventLogEntry",
    "Scenario",
    "World",
    "default_scenario",
    "simulate",
]
