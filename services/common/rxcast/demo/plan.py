"""What a demo run plays: the simulated world, its drift events, the batch
schedule and the suite's settings. Training is the trainer's own business
(its policies, rxcast.suite.topology.POLICIES unless a plan sets others)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from rxcast.sim import DriftEvent, Scenario
from rxcast.suite.topology import POLICIES

#: The hour of the next morning at which the inventory app asks for forecasts
#: of the demand after a business day (the feature service stamps a day's
#: record at the day's end, so online features are this many hours old).
REQUEST_HOUR = 8


def policies(window_days: int) -> str:
    """The suite's policies (online: every new business day; batch: every 7)
    over `window_days` days of rows."""
    return json.dumps([{**p, "window_days": window_days} for p in json.loads(POLICIES)])


@dataclass(frozen=True)
class DemoPlan:
    """A scenario to play plus how the app and the suite run around it."""

    name: str
    scenario: Scenario
    #: Days between scheduled batch runs (simulated days; run on the first played day too).
    batch_every_days: int = 7
    #: Keys per online Predict call (the inventory app asks store by store).
    keys_per_call: int = 100
    #: Extra command-line settings per suite process.
    service_args: dict[str, list[str]] = field(default_factory=dict)

    @property
    def days_to_play(self) -> int:
        return self.scenario.days_to_play


def default_plan() -> DemoPlan:
    """30 stores x 100 medications, a year of history, 18 weeks played with
    three drift events five weeks apart: six stores open in a new region, a
    respiratory demand shock, and an upstream unit change in stock on hand."""
    history = 365
    scenario = Scenario(
        n_stores=30,
        n_medications=100,
        start_day="2025-01-01",
        n_days=history + 126,
        seed=7,
        history_days=history,
        events=(
            DriftEvent("new_region", history + 14, {"region": "coastal", "n_stores": 6}),
            DriftEvent(
                "demand_shock",
                history + 49,
                {"multiplier": 1.8, "categories": ["respiratory", "antiviral"], "ramp_days": 3},
            ),
            DriftEvent("unit_change", history + 84, {"field": "units_on_hand", "factor": 10.0}),
        ),
    )
    # The online alias trains every played day: 120 rounds of 31 leaves over 60
    # days keep a job near ten seconds on two cores (300 of 63 over 90: ~50 s).
    trainer = [
        "--default-holdout-days", "7", "--policies", policies(60),
        "--default-num-boost-round", "120", "--default-learning-rate", "0.1", "--default-num-leaves", "31",
    ]  # fmt: skip
    return DemoPlan("default", scenario, service_args={"trainer": trainer})


def short_plan() -> DemoPlan:
    """A small chain that opens stores in a new region with its own demand
    profile: the loop closes in a few minutes (the end-to-end test's scenario)."""
    history = 150
    scenario = Scenario(
        n_stores=8,
        n_medications=25,
        start_day="2025-01-01",
        n_days=history + 56,
        seed=11,
        history_days=history,
        events=(DriftEvent("new_region", history + 7, {"region": "coastal", "n_stores": 4}),),
    )
    return DemoPlan(
        "short",
        scenario,
        service_args={
            "trainer": [
                "--policies",
                policies(window_days=60),
                "--default-num-boost-round",
                "80",
                "--default-num-leaves",
                "15",
                "--default-holdout-days",
                "7",
                "--min-train-rows",
                "500",
                "--min-holdout-rows",
                "100",
            ],
        },
    )


def calm_plan() -> DemoPlan:
    """The default world with its events removed: a drift service that cries
    wolf shows here (the aim is no incident at all)."""
    plan = default_plan()
    return replace(plan, name="calm", scenario=replace(plan.scenario, events=()))


PLANS = {"default": default_plan, "short": short_plan, "calm": calm_plan}
