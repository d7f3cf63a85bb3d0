"""A seeded, deterministic pharmacy world: the demo data and the test oracle."""

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
