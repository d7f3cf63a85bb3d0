"""Scenarios and drift events: defaults, validation, JSON/YAML round trips."""

from __future__ import annotations

import pytest

from rxcast.runtime.errors import InvalidArgument
from rxcast.sim import DRIFT_KINDS, DriftEvent, Scenario, default_scenario


def test_default_scenario_is_a_year_of_history_and_120_days_to_play():
    s = default_scenario()
    assert (s.n_stores, s.n_medications, s.n_days, s.history_days, s.days_to_play) == (30, 100, 485, 365, 120)
    assert s.seed == 7 and s.start_day == "2025-01-01" and s.events == ()
    assert default_scenario(seed=3).seed == 3


def test_every_kind_round_trips_through_json_and_yaml():
    events = [DriftEvent(kind, 100 + i) for i, kind in enumerate(DRIFT_KINDS)]
    events.append(DriftEvent("demand_shock", "2025-06-01", {"multiplier": 3, "categories": ["antiviral"]}))
    s = default_scenario(seed=5, events=events)
    assert Scenario.from_dict(s.to_dict()) == s
    assert Scenario.from_json(s.to_json()) == s
    assert Scenario.from_yaml(s.to_yaml()) == s
    assert s.events[-1].day == 151  # a date resolves to its index from the start


def test_event_parse_reads_kind_day_and_yaml_values():
    e = DriftEvent.parse("demand_shock@400:multiplier=2.5,categories=[antiviral, respiratory],duration_days=30")
    assert e == DriftEvent(
        "demand_shock", 400, {"multiplier": 2.5, "categories": ["antiviral", "respiratory"], "duration_days": 30}
    )
    assert DriftEvent.parse("unit_change@2025-03-01").day == "2025-03-01"
    with pytest.raises(InvalidArgument, match="kind@day"):
        DriftEvent.parse("unit_change")


def test_resolved_params_fill_defaults():
    params = DriftEvent("unit_change", 10).resolved_params()
    assert params == {"field": "units_on_hand", "factor": 10.0, "stores": None}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (DriftEvent("meteor", 10), r"events\[0\].kind: must be one of"),
        (DriftEvent("unit_change", 485), r"events\[0\].day: must fall inside"),
        (DriftEvent("unit_change", -1), r"events\[0\].day"),
        (DriftEvent("unit_change", "2024-12-31"), r"events\[0\].day"),
        (DriftEvent("unit_change", 10, {"feild": "unit_price"}), r"unknown parameter\(s\) feild"),
        (DriftEvent("unit_change", 10, {"field": "store_id"}), r"params.field: must be one of"),
        (DriftEvent("missing_values", 10, {"rate": 1.5}), r"params.rate: must be <= 1.0"),
        (DriftEvent("demand_shock", 10, {"multiplier": "big"}), r"params.multiplier: must be a finite number"),
        (
            DriftEvent("demand_shock", 10, {"categories": ["cosmetics"]}),
            r"params.categories: unknown categories cosmetics",
        ),
        (DriftEvent("new_region", 10, {"region": "north"}), r"params.region: region 'north' exists already"),
        (DriftEvent("new_region", 10, {"weekly_pattern": [1, 2]}), r"params.weekly_pattern: must be 7"),
        (DriftEvent("concept_change", 10, {"mode": "vibes"}), r"params.mode: must be one of"),
    ],
)
def test_bad_events_are_rejected_naming_the_field(event, message):
    with pytest.raises(InvalidArgument, match=message):
        default_scenario(events=[event])


def test_events_may_name_categories_and_regions_that_other_events_create():
    s = default_scenario(
        events=[
            DriftEvent("new_medication", 300, {"category": "glp1_agonist"}),
            DriftEvent("new_region", 300, {"region": "islands"}),
            DriftEvent("demand_shock", 310, {"categories": ["glp1_agonist"], "regions": ["islands"]}),
        ]
    )
    assert len(s.events) == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n_stores": 0}, "scenario.n_stores"),
        ({"n_days": 3}, "scenario.n_days"),
        ({"start_day": "01/02/2025"}, "scenario.start_day"),
        ({"history_days": 1000}, "scenario.history_days"),
        ({"seed": -1}, "scenario.seed"),
    ],
)
def test_bad_scenarios_are_rejected_naming_the_field(fields, message):
    with pytest.raises(InvalidArgument, match=message):
        Scenario(**fields)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(InvalidArgument, match="unknown key"):
        Scenario.from_dict({"n_store": 3})
    with pytest.raises(InvalidArgument, match="event.day: required"):
        Scenario.from_dict({"events": [{"kind": "unit_change"}]})


def test_scenarios_are_hashable_and_equal_however_params_were_built():
    a = default_scenario(events=[DriftEvent("demand_shock", 10, {"categories": ("antiviral",)})])
    b = Scenario.from_json(a.to_json())
    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1
