"""Incidents end to end: the short plan played through the whole suite, with
its event (stores open in a new region) and without it. The drift service's
incident book, read from its data dir after the run, must hold an incident
of the event in time and none before it, and none at all in the calm world."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace

import pytest

from rxcast.demo.ledger import labels_lag
from rxcast.demo.plan import short_plan
from rxcast.demo.run import run_demo
from rxcast.drift.incidents import DATA_DRIFT, IncidentBook

os.environ.setdefault("FEAST_USAGE", "False")

#: The calm fixture plays the short plan through the suite: minutes, more on a busy machine.
pytestmark = pytest.mark.timeout(1800)


def _incidents(work_dir):
    return IncidentBook(work_dir / "state" / "drift").list(limit=1000)


def _day(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date()


def _opened(incident) -> dt.date:
    """The data day it could open: an error incident's forecasts' day plus the labels' horizon."""
    return _day(incident.opened_data_ms) + labels_lag(incident.kind)


@pytest.fixture(scope="module")
def with_event(played):
    """The package's play of the short plan (conftest), whose incident book is
    only read here: its file is replaced whole on every change."""
    return played.work_dir


@pytest.fixture(scope="module")
def calm(tmp_path_factory):
    work = tmp_path_factory.mktemp("short-calm")
    plan = short_plan()
    run_demo(replace(plan, name="short-calm", scenario=replace(plan.scenario, events=())), work, say=lambda line: None)
    return work


def test_the_new_region_opens_a_data_drift_incident_within_3_days_and_nothing_before(with_event):
    scenario = short_plan().scenario
    (event,) = scenario.events
    event_day = dt.date.fromisoformat(scenario.start_day) + dt.timedelta(days=int(event.day))
    incidents = sorted(_incidents(with_event), key=_opened)
    assert incidents, "the event opened no incident"
    assert all(_day(i.changed_ms) >= event_day for i in incidents), "an incident before the event"
    first = incidents[0]
    # The online alias is refreshed daily, so the version serving on the event
    # day was fitted shortly before it (on pre-event rows only).
    assert first.kind == DATA_DRIFT and first.model_version >= 1
    assert (_opened(first) - event_day).days <= 3
    # The new stores have few recorded days and small aggregates: the features that name them.
    assert "days_recorded_28d" in first.features
    assert first.evidence["days_recorded_28d"]["histogram"]["current"]


def test_the_same_world_without_its_event_opens_no_incident(calm):
    assert [(i.kind, i.features, i.reason) for i in _incidents(calm)] == []
