"""The demo's record of an incident: days in data time, an error incident's
in the time its labels were complete."""

from __future__ import annotations

import datetime as dt

import pytest

from rxcast.demo.player import _incident_log
from rxcast.drift.v1 import drift_pb2
from rxcast.sim import HORIZON_DAYS

FORECASTS = dt.datetime(2026, 2, 18, tzinfo=dt.UTC)


def _incident(kind: int) -> drift_pb2.Incident:
    incident = drift_pb2.Incident(incident_id="inc-1", kind=kind, model_version=7, features=["prediction"])
    incident.changed_time.FromDatetime(FORECASTS)
    incident.opened_data_time.FromDatetime(FORECASTS + dt.timedelta(days=1))
    return incident


@pytest.mark.parametrize(
    ("kind", "lag"),
    [(drift_pb2.INCIDENT_KIND_CONCEPT_DRIFT, HORIZON_DAYS), (drift_pb2.INCIDENT_KIND_DATA_DRIFT, 0)],
)
def test_an_error_incident_is_dated_when_its_labels_came(kind, lag):
    log = _incident_log(_incident(kind), seen_day=dt.date(2026, 3, 1))
    assert log.changed_day == FORECASTS.date() + dt.timedelta(days=lag)
    assert log.opened_day == FORECASTS.date() + dt.timedelta(days=1 + lag)
    assert log.day == log.opened_day


def test_an_incident_without_data_days_is_dated_when_seen():
    log = _incident_log(drift_pb2.Incident(incident_id="inc-2"), seen_day=dt.date(2026, 3, 1))
    assert log.changed_day is None and log.day == dt.date(2026, 3, 1)
