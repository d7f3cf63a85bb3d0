"""Incidents: the book's lifecycle and dedupe (confirmation, one incident per
cause, updates, resolution by clean windows and by a newer version, data
quality left open, acknowledgement, a restart), model lines judged apart (the
book and the engine, books written before lines), and the four RPCs against
a real drift process."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from rxcast.clients import DriftClient
from rxcast.drift.incidents import (
    CONCEPT_DRIFT,
    CRITICAL,
    DATA_DRIFT,
    DATA_QUALITY,
    OPEN,
    PERFORMANCE,
    PREDICTION_DRIFT,
    RESOLVED,
    WARNING,
    Firing,
    IncidentBook,
    WindowRef,
    feature_group,
)
from rxcast.drift.scoring import Thresholds
from rxcast.drift.v1 import drift_pb2
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from tests.drift.test_service import (  # noqa: F401 (a fixture)
    DAY_MS,
    DAY_ROWS,
    _features,
    _log_windows,
    _start,
    profile_json,
)

NOW = 1_000


def _w(day: int) -> WindowRef:
    return WindowRef(f"v1-w{day}", day * DAY_MS, (day + 1) * DAY_MS - 1)


def _fire(*features: str) -> Firing:
    return Firing({f: f"drift: ks 0.{len(f)}" for f in features}, {f: {"signals": []} for f in features})


def test_feature_groups_are_families_of_aggregates():
    assert [feature_group(f) for f in ("prescriptions_1d", "prescriptions_sum_28d", "dispensed_max_28d")] == [
        "prescriptions",
        "prescriptions",
        "dispensed",
    ]
    assert [feature_group(f) for f in ("units_on_hand", "promotion_days_7d", "store_region")] == [
        "units_on_hand",
        "promotion",
        "store_region",
    ]


def test_one_window_of_noise_opens_nothing_and_two_in_a_row_open_one_incident():
    book = IncidentBook(None, confirm_windows=2, clean_windows=3)
    assert book.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(1), NOW) == []
    assert book.observe(1, DATA_DRIFT, Firing({}), _w(2), NOW) == []  # the candidate is reset
    assert book.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(3), NOW) == []
    (incident,) = book.observe(1, DATA_DRIFT, _fire("prescriptions_sum_28d", "units_on_hand"), _w(4), NOW + 1)
    # Both families that fired in the confirming window open one incident together,
    # dated from the first window of the cause that fired twice in a row.
    assert (incident.kind, incident.status, incident.severity) == (DATA_DRIFT, OPEN, WARNING)
    assert incident.groups == ["prescriptions", "units_on_hand"] == sorted(incident.groups)
    assert incident.changed_ms == _w(3).start_ms and incident.opened_data_ms == _w(4).end_ms
    assert [w.window_id for w in incident.windows] == ["v1-w3", "v1-w4"]
    assert book.list() == [incident]


def test_later_windows_of_the_cause_update_the_incident_and_never_open_another():
    book = IncidentBook(None, confirm_windows=1, clean_windows=2)
    (incident,) = book.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(1), NOW)
    revisions = [incident.revision]
    for day, features in ((2, ("prescriptions_sum_28d",)), (3, ("prescriptions_1d", "prediction"))):
        assert book.observe(1, DATA_DRIFT, _fire(*features), _w(day), NOW + day) == []
        revisions.append(book.get(incident.incident_id).revision)
    updated = book.get(incident.incident_id)
    assert updated.features == ["prediction", "prescriptions_1d", "prescriptions_sum_28d"]
    assert updated.severity == CRITICAL, "drift that reached the predictions is critical"
    assert [w.window_id for w in updated.windows] == ["v1-w1", "v1-w2", "v1-w3"]
    assert revisions == sorted(set(revisions))
    assert len(book.list()) == 1
    # Two clean windows resolve it; the next firing is a new incident.
    book.observe(1, DATA_DRIFT, Firing({}), _w(4), NOW + 4)
    assert book.get(incident.incident_id).status == OPEN
    book.observe(1, DATA_DRIFT, Firing({}), _w(5), NOW + 5)
    resolved = book.get(incident.incident_id)
    assert (resolved.status, resolved.resolved_ms) == (RESOLVED, NOW + 5)
    assert "2 windows in a row" in resolved.resolution
    (again,) = book.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(6), NOW + 6)
    assert again.incident_id != incident.incident_id


def test_prediction_drift_alone_is_its_own_kind_and_other_versions_and_kinds_are_other_causes():
    book = IncidentBook(None, confirm_windows=1)
    (alone,) = book.observe(1, PREDICTION_DRIFT, _fire("prediction"), _w(1), NOW)
    assert (alone.kind, alone.severity) == (PREDICTION_DRIFT, CRITICAL)
    (quality,) = book.observe(1, DATA_QUALITY, _fire("unit_price"), _w(1), NOW)
    (other,) = book.observe(2, DATA_DRIFT, _fire("unit_price"), _w(1), NOW)
    assert (quality.kind, quality.severity, other.model_version) == (DATA_QUALITY, CRITICAL, 2)
    assert len({alone.incident_id, quality.incident_id, other.incident_id}) == 3
    with pytest.raises(InvalidArgument, match="incident kind"):
        book.observe(1, "mood", _fire("x"), _w(1), NOW)


def test_a_newer_version_takes_the_open_incidents_over_and_resolves_them_when_its_windows_are_clean():
    book = IncidentBook(None, confirm_windows=1, clean_windows=2)
    (drift,) = book.observe(1, DATA_DRIFT, _fire("store_region"), _w(1), NOW)
    (quality,) = book.observe(1, DATA_QUALITY, _fire("unit_price"), _w(1), NOW)
    handed = book.supersede(2, NOW + 10)
    assert {i.incident_id for i in handed} == {drift.incident_id, quality.incident_id}
    assert all(book.get(i.incident_id).versions == [1, 2] for i in handed)
    # The old version's windows no longer open drift incidents: the new version is judged.
    assert book.observe(1, DATA_DRIFT, _fire("store_region", "units_on_hand"), _w(2), NOW + 11) == []
    # A model retrained on a few days of the change still sees it: the same incident, not a new one.
    assert book.observe(2, DATA_DRIFT, _fire("store_region"), _w(2), NOW + 12) == []
    assert book.get(drift.incident_id).windows[-1] == _w(2)
    for day in (3, 4):
        book.observe(2, DATA_DRIFT, Firing({}), _w(day), NOW + 10 + day)
    resolved = book.get(drift.incident_id)
    assert resolved.status == RESOLVED and resolved.resolution == "2 windows in a row without it on model version 2"
    # Broken data stays open while any version's windows show it, the superseded one's included.
    book.observe(1, DATA_QUALITY, _fire("unit_price"), _w(3), NOW + 13)
    assert book.get(quality.incident_id).status == OPEN
    assert [i.incident_id for i in book.list(open_only=True)] == [quality.incident_id]


def test_a_cause_seen_once_on_a_version_confirms_on_the_newer_one_that_takes_over():
    book = IncidentBook(None, confirm_windows=2)
    assert book.observe(1, DATA_DRIFT, _fire("store_region"), _w(1), NOW) == []
    book.supersede(2, NOW + 1)  # retrained the day after the change: one window each
    (incident,) = book.observe(2, DATA_DRIFT, _fire("store_region"), _w(2), NOW + 2)
    assert (incident.model_version, incident.changed_ms) == (2, _w(1).start_ms)
    assert [w.window_id for w in incident.windows] == ["v1-w1", "v1-w2"]


def test_a_family_confirming_weeks_later_is_another_cause_even_while_an_open_incident_fires():
    book = IncidentBook(None, confirm_windows=2, clean_windows=3)
    book.observe(1, DATA_DRIFT, _fire("store_region"), _w(1), NOW)
    (region,) = book.observe(1, DATA_DRIFT, _fire("store_region"), _w(2), NOW)
    for day in range(3, 22):  # the new region's stores keep drifting against the reference
        book.observe(1, DATA_DRIFT, _fire("store_region"), _w(day), NOW)
    # Three weeks after the region opened, a demand shock moves prescriptions: a second event.
    assert book.observe(1, DATA_DRIFT, _fire("store_region", "prescriptions_1d"), _w(22), NOW) == []
    (shock,) = book.observe(1, DATA_DRIFT, _fire("store_region", "prescriptions_1d"), _w(23), NOW)
    assert shock.groups == ["prescriptions"] and book.get(region.incident_id).groups == ["store_region"]
    assert shock.changed_ms == _w(22).start_ms


def test_a_family_starting_soon_after_an_incident_with_it_joins_it_as_the_same_events_lagging_effect():
    book = IncidentBook(None, confirm_windows=2, clean_windows=3, follow_ms=14 * DAY_MS)
    book.observe(1, DATA_DRIFT, _fire("dispensed_sum_7d"), _w(1), NOW)
    (shock,) = book.observe(1, DATA_DRIFT, _fire("dispensed_sum_7d"), _w(2), NOW)
    # A week later restocking follows the shock: received units drift in windows where dispensing still does.
    assert book.observe(1, DATA_DRIFT, _fire("dispensed_sum_7d", "received_sum_7d"), _w(8), NOW) == []
    joined = book.get(shock.incident_id)
    assert joined.groups == ["dispensed", "received"] and joined.features == ["dispensed_sum_7d", "received_sum_7d"]
    assert book.observe(1, DATA_DRIFT, _fire("received_sum_7d"), _w(9), NOW) == []
    assert len(book.list()) == 1
    # A family starting in a window where the incident does not fire is a candidate of its own.
    assert book.observe(1, DATA_DRIFT, _fire("unit_price"), _w(10), NOW) == []
    (other,) = book.observe(1, DATA_DRIFT, _fire("unit_price"), _w(11), NOW)
    assert other.groups == ["unit_price"] and book.get(shock.incident_id).groups == ["dispensed", "received"]
    # Past the follow window a family starting with it is news, not the shock's effect.
    book.observe(1, DATA_DRIFT, _fire("dispensed_sum_7d"), _w(16), NOW)
    assert book.observe(1, DATA_DRIFT, _fire("dispensed_sum_7d", "prescriptions_1d"), _w(17), NOW) == []
    (late,) = book.observe(1, DATA_DRIFT, _fire("dispensed_sum_7d", "prescriptions_1d"), _w(18), NOW)
    assert late.groups == ["prescriptions"]
    with pytest.raises(InvalidArgument, match="follow_ms"):
        IncidentBook(None, follow_ms=-1)


def test_a_rise_of_the_error_weeks_after_a_drift_incident_opened_is_its_own_incident():
    book = IncidentBook(None, confirm_windows=1, clean_windows=3, follow_ms=14 * DAY_MS)
    (region,) = book.observe(1, DATA_DRIFT, _fire("store_region"), _w(1), NOW)
    book.observe(1, DATA_DRIFT, _fire("store_region"), _w(30), NOW)  # still open, still firing
    (performance,) = book.observe(1, PERFORMANCE, _fire("estimated_error"), _w(30), NOW)
    assert performance.kind == PERFORMANCE and book.get(region.incident_id).groups == ["store_region"]
    # The labels a week later confirm the estimate: the same impact, not another page.
    assert book.observe(1, CONCEPT_DRIFT, _fire("errors"), _w(37), NOW, confirm_windows=1) == []
    assert book.get(performance.incident_id).groups == ["errors", "estimated_error"]
    (concept,) = book.observe(1, CONCEPT_DRIFT, _fire("errors"), _w(45), NOW, confirm_windows=1)
    assert concept.kind == CONCEPT_DRIFT and len(book.list()) == 3


def test_a_rise_of_the_error_joins_the_drift_that_explains_it_and_alone_is_its_own_incident():
    book = IncidentBook(None, confirm_windows=1, clean_windows=3)
    (region,) = book.observe(1, DATA_DRIFT, _fire("store_region"), _w(1), NOW)
    assert book.observe(1, CONCEPT_DRIFT, _fire("errors"), _w(2), NOW, confirm_windows=1) == []
    assert book.observe(1, PERFORMANCE, _fire("estimated_error"), _w(2), NOW) == []
    joined = book.get(region.incident_id)
    assert (joined.kind, joined.groups, joined.severity) == (
        DATA_DRIFT,
        ["errors", "estimated_error", "store_region"],
        CRITICAL,
    )
    # Clean error windows do not count against the drift incident.
    book.observe(1, PERFORMANCE, Firing({}), _w(3), NOW)
    assert book.get(region.incident_id).clean == 0
    (alone,) = book.observe(2, CONCEPT_DRIFT, _fire("errors"), _w(3), NOW, confirm_windows=1)
    assert (alone.kind, alone.model_version) == (CONCEPT_DRIFT, 2)
    (estimated,) = book.observe(3, PERFORMANCE, _fire("estimated_error"), _w(3), NOW)
    assert (estimated.kind, estimated.severity) == (PERFORMANCE, CRITICAL)


def test_drift_confirming_after_the_rise_of_the_error_it_explains_joins_that_rise_and_stays_with_it():
    book = IncidentBook(None, confirm_windows=2, clean_windows=3, follow_ms=14 * DAY_MS)
    assert book.observe(1, DATA_DRIFT, _fire("store_region"), _w(8), NOW) == []  # one window: a candidate
    (concept,) = book.observe(1, CONCEPT_DRIFT, _fire("errors"), _w(8), NOW, confirm_windows=1)
    for day in (9, 10, 30):  # the region keeps drifting for weeks: still the rise's cause
        assert book.observe(1, DATA_DRIFT, _fire("store_region", "prediction"), _w(day), NOW) == []
    incident = book.get(concept.incident_id)
    assert (incident.kind, incident.groups, incident.status) == (
        CONCEPT_DRIFT,
        ["errors", "prediction", "store_region"],
        OPEN,
    )
    # A family starting weeks after the rise is news, not its explanation.
    book.observe(1, DATA_DRIFT, _fire("store_region", "prescriptions_1d"), _w(31), NOW)
    (shock,) = book.observe(1, DATA_DRIFT, _fire("store_region", "prescriptions_1d"), _w(32), NOW)
    assert (shock.kind, shock.groups) == (DATA_DRIFT, ["prescriptions"])
    assert len(book.list()) == 2


def test_a_window_judging_some_families_leaves_incidents_of_others_alone_and_a_segments_rise_joins_the_streams():
    book = IncidentBook(None, confirm_windows=1, clean_windows=2)
    stream = frozenset({"errors"})
    (whole,) = book.observe(1, CONCEPT_DRIFT, _fire("errors"), _w(1), NOW, judged=stream)
    # Days of segments judged without a rise are not clean windows of the whole stream's rise.
    for day in (2, 3, 4):
        book.observe(1, CONCEPT_DRIFT, Firing({}), _w(day), NOW, judged=frozenset({"errors:respiratory"}))
    assert book.get(whole.incident_id).status == OPEN
    # A segment rising soon after is the same rise seen closer: it joins.
    assert (
        book.observe(1, CONCEPT_DRIFT, _fire("errors:antiviral"), _w(5), NOW, 1, frozenset({"errors:antiviral"})) == []
    )
    assert book.get(whole.incident_id).groups == ["errors", "errors:antiviral"]
    for day in (6, 7):
        book.observe(1, CONCEPT_DRIFT, Firing({}), _w(day), NOW, judged=stream)
    assert book.get(whole.incident_id).status == RESOLVED


def test_a_segments_rise_joining_input_drift_makes_it_critical():
    book = IncidentBook(None, confirm_windows=1, clean_windows=3)
    (region,) = book.observe(1, DATA_DRIFT, _fire("store_region"), _w(1), NOW)
    assert region.severity == WARNING
    book.observe(1, CONCEPT_DRIFT, _fire("errors:cardiovascular"), _w(3), NOW, 1, frozenset({"errors:cardiovascular"}))
    assert book.get(region.incident_id).severity == CRITICAL


def test_drift_of_a_broken_column_and_the_predictions_it_moves_join_the_data_quality_incident():
    book = IncidentBook(None, confirm_windows=2, clean_windows=3)
    for day in (1, 2):  # the engine observes data quality before drift in each window
        opened = book.observe(1, DATA_QUALITY, _fire("units_on_hand"), _w(day), NOW)
        assert book.observe(1, DATA_DRIFT, _fire("prediction"), _w(day), NOW) == []
    (quality,) = opened
    # A model retrained on some days of the new unit sees the column drift, not scaled: still broken data.
    book.supersede(2, NOW + 5)
    for day in (3, 4, 5):
        book.observe(2, DATA_QUALITY, Firing({}), _w(day), NOW)
        assert book.observe(2, DATA_DRIFT, _fire("units_on_hand", "prediction"), _w(day), NOW) == []
    incident = book.get(quality.incident_id)
    assert (incident.kind, incident.status, incident.groups) == (DATA_QUALITY, OPEN, ["prediction", "units_on_hand"])
    assert [i.kind for i in book.list()] == [DATA_QUALITY]


def test_acknowledge_records_who_and_refuses_a_second_operator():
    book = IncidentBook(None, confirm_windows=1)
    (incident,) = book.observe(1, DATA_DRIFT, _fire("units_on_hand"), _w(1), NOW)
    acked = book.acknowledge(incident.incident_id, "ana", "looking at the upstream feed", NOW + 5)
    assert (acked.acknowledged_by, acked.acknowledged_ms, acked.acknowledge_note) == (
        "ana",
        NOW + 5,
        "looking at the upstream feed",
    )
    assert book.acknowledge(incident.incident_id, "ana", "a units change", NOW + 6).acknowledge_note == "a units change"
    with pytest.raises(FailedPrecondition, match="already acknowledged by ana"):
        book.acknowledge(incident.incident_id, "bo", "", NOW + 7)
    with pytest.raises(InvalidArgument, match="who"):
        book.acknowledge(incident.incident_id, " ", "", NOW + 7)
    with pytest.raises(NotFound):
        book.acknowledge("inc-99", "ana", "", NOW)


def test_the_book_survives_a_restart_with_its_candidates(tmp_path):
    book = IncidentBook(tmp_path, confirm_windows=2)
    book.observe(1, DATA_DRIFT, _fire("units_on_hand"), _w(1), NOW)
    book.observe(1, DATA_DRIFT, _fire("units_on_hand"), _w(2), NOW)
    book.observe(1, DATA_QUALITY, _fire("unit_price"), _w(2), NOW)  # a candidate, not an incident yet
    before = book.list()
    again = IncidentBook(tmp_path, confirm_windows=2)
    assert again.list() == before
    (quality,) = again.observe(1, DATA_QUALITY, _fire("unit_price"), _w(3), NOW)
    assert quality.changed_ms == _w(2).start_ms and quality.incident_id == "inc-2"
    (tmp_path / "incidents.json").write_text("{not json")
    assert IncidentBook(tmp_path).list() == []
    assert list(tmp_path.glob("incidents.json.corrupt-*"))


def test_watch_replays_changes_after_a_revision_then_streams_live():
    book = IncidentBook(None, confirm_windows=1)
    (first,) = book.observe(1, DATA_DRIFT, _fire("units_on_hand"), _w(1), NOW)
    seen = []
    stop = threading.Event()

    def watch():
        for incident in book.watch(0, lambda: not stop.is_set(), poll_seconds=0.05):
            seen.append((incident.incident_id, incident.revision, incident.acknowledged_by))
            if len(seen) == 2:
                stop.set()

    reader = threading.Thread(target=watch)
    reader.start()
    book.acknowledge(first.incident_id, "ana", "", NOW + 1)
    reader.join(10)
    assert [s[0] for s in seen] == [first.incident_id, first.incident_id]
    assert seen[1][2] == "ana" and seen[1][1] > seen[0][1]


# ---------------------------------------------------------------- the RPCs, real process


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift-incidents")
    process = _start(root, root / "data")
    client = DriftClient(process.address, timeout=30.0)
    yield client
    client.close()
    process.stop()


def test_incident_rpcs(client, profile_json):  # noqa: F811
    client.stub.RegisterReference(drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=profile_json))
    watch = client.watch_incidents(after_revision=0, timeout=60)
    # Two quiet days, three drifted days (confirmed on the second), three clean days.
    _log_windows(client.stub, 1, [0, 0, 1, 1, 1, 0, 0, 0, 0], seed=42, first_day=20_000)
    (incident,) = client.list_incidents()
    assert incident.kind == drift_pb2.INCIDENT_KIND_DATA_DRIFT
    assert set(incident.features) == {"demand_7d", "prediction"}
    assert incident.severity == drift_pb2.INCIDENT_SEVERITY_CRITICAL
    assert incident.status == drift_pb2.INCIDENT_STATUS_RESOLVED and incident.resolution
    assert incident.changed_time.ToMilliseconds() == 20_002 * DAY_MS
    assert [w.window_id for w in incident.windows] == ["v1-w3", "v1-w4", "v1-w5"]
    evidence = json.loads(incident.evidence_json)
    assert any(s["name"] == "ks" and s["fired"] for s in evidence["demand_7d"]["signals"])
    assert len(evidence["demand_7d"]["histogram"]["current"]) == len(evidence["demand_7d"]["histogram"]["reference"])
    assert client.list_incidents(open_only=True) == []

    got = client.get_incident(incident.incident_id)
    assert got == incident
    acked = client.acknowledge_incident(incident.incident_id, "ana", "seen")
    assert (acked.acknowledged_by, acked.acknowledge_note) == ("ana", "seen") and acked.revision > incident.revision

    changes = []
    for change in watch:
        changes.append(change)
        if change.acknowledged_by:
            break
    watch.close()
    assert {c.incident_id for c in changes} == {incident.incident_id}
    assert changes[-1].revision == acked.revision

    # The shared client reports a rejected request as FAILED_PRECONDITION naming the service's code.
    with pytest.raises(FailedPrecondition, match="NOT_FOUND: incident 'inc-404'"):
        client.get_incident("inc-404")
    with pytest.raises(FailedPrecondition, match="FAILED_PRECONDITION: .*already acknowledged by ana"):
        client.acknowledge_incident(incident.incident_id, "bo")
    with pytest.raises(FailedPrecondition, match="INVALID_ARGUMENT: .*who"):
        client.acknowledge_incident(incident.incident_id, "")


def test_a_rise_of_the_estimated_error_before_any_label_joins_the_drift_that_explains_it():
    from rxcast.drift.engine import DriftEngine, EngineSettings
    from rxcast.model.error_estimator import fit_error_estimator
    from rxcast.model.profile import build_reference_profile
    from tests.model.test_error_estimator import _rows

    rng = np.random.default_rng(5)
    columns, predictions, actuals, days = _rows(rng, 7)
    profile = build_reference_profile(columns, (), predictions).to_dict()
    profile["error_estimator"] = fit_error_estimator(columns, predictions, actuals, days).to_dict()
    triggers = []
    engine = DriftEngine(EngineSettings(window_rows=100_000), on_incident=lambda i: triggers.append(i.kind) or "")
    engine.register_reference(1, profile)

    def day(index: int, volatile_share: float) -> None:
        cols, preds, _, _ = _rows(rng, 1, volatile_share=volatile_share)
        n = preds.size
        keys = np.array([f"k{i}" for i in range(n)], dtype=object)
        engine.log_predictions(1, keys, keys, np.full(n, index * DAY_MS, dtype=np.int64), cols, preds)
        engine.flush(1)

    for index in range(3):
        day(index, 0.2)
    assert engine.list_incidents() == []
    day(3, 0.45)  # the inputs move to where the model errs most; no actual has arrived
    day(4, 0.45)
    # The estimated error rose because the inputs moved: one incident, critical, the rise its impact.
    (incident,) = engine.list_incidents()
    assert (incident.kind, incident.features, incident.severity) == (
        DATA_DRIFT,
        ["estimated_error", "volatility"],
        CRITICAL,
    )
    assert "estimated MAE" in incident.reason and "above the band" in incident.reason
    evidence = incident.evidence["estimated_error"]
    assert evidence["estimated_mae"] > evidence["upper"] and len(evidence["calibration"]) == 7
    assert triggers == [DATA_DRIFT]


def test_drift_just_past_its_floors_starts_nothing_but_keeps_an_open_incident_open():
    book = IncidentBook(None, confirm_windows=2, clean_windows=2)
    minor = Firing({"prescriptions_1d": "drift: ks 0.05 with wasserstein 0.26"}, {}, frozenset({"prescriptions_1d"}))
    for day in range(1, 6):  # weeks of a seasonal rise just past the floors
        assert book.observe(1, DATA_DRIFT, minor, _w(day), NOW) == []
    assert book.list() == []
    book.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(6), NOW)
    (incident,) = book.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(7), NOW)
    for day in (8, 9, 10):  # the cause fades to minor drift: still the same cause, not clean
        book.observe(1, DATA_DRIFT, minor, _w(day), NOW)
    assert book.get(incident.incident_id).status == OPEN
    assert [w.window_id for w in book.get(incident.incident_id).windows][-1] == "v1-w10"


def test_a_unit_change_opens_a_data_quality_incident_and_retrains_nothing():
    from rxcast.drift.engine import DriftEngine, EngineSettings, unit_change
    from rxcast.drift.scoring import DRIFT, score
    from rxcast.model.profile import build_reference_profile

    rng = np.random.default_rng(13)

    def rows(n: int) -> dict[str, np.ndarray]:
        return {"units_on_hand": rng.gamma(4.0, 10.0, n), "prescriptions_1d": rng.poisson(6.0, n).astype(float)}

    reference = build_reference_profile(rows(20_000), (), rng.gamma(4.0, 2.0, 20_000))
    # Scaled values: mean and spread by one factor. A shock on a fifth of the rows: neither.
    scaled = score(reference, {k: v * (10.0 if k == "units_on_hand" else 1.0) for k, v in rows(3000).items()})
    shocked = rows(3000)
    shocked["prescriptions_1d"][:600] *= 1.8
    shock = score(reference, shocked)
    (units,) = [r for r in scaled.features if r.feature == "units_on_hand"]
    (demand,) = [r for r in shock.features if r.feature == "prescriptions_1d"]
    assert units.verdict == DRIFT and unit_change(units, Thresholds()).startswith("unit change: values scaled x10")
    assert demand.verdict == DRIFT and unit_change(demand, Thresholds()) == ""

    triggers = []
    engine = DriftEngine(EngineSettings(window_rows=100_000), on_incident=lambda i: triggers.append(i.kind) or "")
    engine.register_reference(1, reference.to_dict())
    for index in range(3):
        columns = rows(3000)
        columns["units_on_hand"] *= 10.0
        keys = np.array([f"k{i}" for i in range(3000)], dtype=object)
        engine.log_predictions(
            1, keys, keys, np.full(3000, index * DAY_MS, dtype=np.int64), columns, rng.gamma(4.0, 2.0, 3000)
        )
        engine.flush(1)
    (incident,) = engine.list_incidents()
    assert (incident.kind, incident.features, incident.severity) == (DATA_QUALITY, ["units_on_hand"], CRITICAL)
    assert "unit change: values scaled x10" in incident.reason
    assert triggers == [], "broken data pages, it does not retrain"


# ---------------------------------------------------------------- model lines


def test_a_newer_version_of_another_line_supersedes_nothing_and_one_of_the_same_line_does():
    book = IncidentBook(None, confirm_windows=2, clean_windows=2)
    book.record_line(1, "batch")
    book.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(1), NOW)
    for version in (2, 3):  # the online alias refitted daily, newer than the batch model
        book.record_line(version, "online")
        assert book.supersede(version, NOW + version) == []
        book.observe(version, DATA_DRIFT, Firing({}), _w(version), NOW + version)
    # The batch model keeps seeing the shock: its cause confirms on its own line.
    (incident,) = book.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(3), NOW + 4)
    assert (incident.model_version, incident.versions, incident.changed_ms) == (1, [1], _w(1).start_ms)
    book.record_line(4, "online")
    assert book.supersede(4, NOW + 5) == []
    # Clean windows of the online line do not count against the batch line's incident.
    for day in (4, 5, 6):
        book.observe(4, DATA_DRIFT, Firing({}), _w(day), NOW + 6)
    assert book.get(incident.incident_id).status == OPEN
    # The next batch version takes it over; the older batch version is judged no more.
    book.record_line(5, "batch")
    (handed,) = book.supersede(5, NOW + 7)
    assert handed.incident_id == incident.incident_id and handed.versions == [1, 5]
    assert book.observe(1, DATA_DRIFT, _fire("units_on_hand"), _w(7), NOW + 8) == []
    for day in (8, 9):
        book.observe(5, DATA_DRIFT, Firing({}), _w(day), NOW + 9)
    resolved = book.get(incident.incident_id)
    assert resolved.status == RESOLVED and resolved.resolution == "2 windows in a row without it on model version 5"


def test_an_incident_of_the_online_line_is_handed_within_it_while_the_batch_line_opens_its_own():
    book = IncidentBook(None, confirm_windows=1, clean_windows=3)
    book.record_line(1, "batch")
    book.record_line(2, "online")
    (online,) = book.observe(2, DATA_DRIFT, _fire("store_region"), _w(1), NOW)
    # The batch model is older but of another line: its window is its own line's cause.
    (batch,) = book.observe(1, DATA_DRIFT, _fire("store_region"), _w(1), NOW)
    assert batch.incident_id != online.incident_id
    book.record_line(3, "online")
    (handed,) = book.supersede(3, NOW + 1)
    assert handed.incident_id == online.incident_id and handed.versions == [2, 3]
    assert book.get(batch.incident_id).versions == [1]


def test_a_version_logged_by_both_lines_is_superseded_once_each_line_has_a_newer_one():
    book = IncidentBook(None, confirm_windows=1)
    for line in ("online", "batch"):
        book.record_line(1, line)
    assert book.lines(1) == {"online", "batch"} and book.lines(9) == {""}
    book.record_line(2, "online")
    book.supersede(2, NOW)
    (incident,) = book.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(1), NOW + 1)
    book.record_line(3, "batch")
    (handed,) = book.supersede(3, NOW + 2)
    assert handed.incident_id == incident.incident_id
    assert book.observe(1, DATA_DRIFT, _fire("units_on_hand"), _w(2), NOW + 3) == []


def test_broken_data_is_one_incident_whichever_line_reads_the_column():
    book = IncidentBook(None, confirm_windows=1, clean_windows=3)
    book.record_line(1, "batch")
    book.record_line(2, "online")
    book.supersede(2, NOW)
    (quality,) = book.observe(2, DATA_QUALITY, _fire("units_on_hand"), _w(1), NOW + 1)
    assert book.observe(1, DATA_QUALITY, _fire("units_on_hand"), _w(1), NOW + 1) == []
    assert book.observe(1, DATA_DRIFT, _fire("units_on_hand"), _w(1), NOW + 1) == []
    assert [i.incident_id for i in book.list()] == [quality.incident_id]


def test_model_lines_survive_a_restart_and_a_book_before_lines_loads_onto_one_line(tmp_path):
    book = IncidentBook(tmp_path, confirm_windows=2)
    book.record_line(1, "batch")
    book.record_line(2, "online")
    book.supersede(2, NOW)
    book.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(1), NOW)
    again = IncidentBook(tmp_path, confirm_windows=2)
    assert (again.lines(1), again.lines(2)) == ({"batch"}, {"online"})
    (incident,) = again.observe(1, DATA_DRIFT, _fire("prescriptions_1d"), _w(2), NOW)
    assert again.supersede(2, NOW) == []

    # incidents.json as the release before model lines wrote it: version 1 superseded by 2.
    doc = json.loads((tmp_path / "incidents.json").read_text())
    doc = {
        "format": "rxcast.drift.incidents/1",
        "revision": doc["revision"],
        "next": doc["next"],
        "superseded": {"1": 2},
        "incidents": [{**i, "versions": [1, 2]} for i in doc["incidents"]],
        "candidates": [],
    }
    (tmp_path / "incidents.json").write_text(json.dumps(doc))
    old = IncidentBook(tmp_path, confirm_windows=1)
    assert [i.incident_id for i in old.list()] == [incident.incident_id]
    assert not list(tmp_path.glob("incidents.json.corrupt-*"))
    # One line as before: version 1 is superseded, version 2 carries the incident.
    assert old.observe(1, DATA_DRIFT, _fire("units_on_hand"), _w(3), NOW) == []
    assert old.observe(2, DATA_DRIFT, _fire("prescriptions_1d"), _w(3), NOW) == []
    assert old.get(incident.incident_id).windows[-1] == _w(3)
    # Logged again with their sources, versions join those lines: the batch model is judged again.
    old.record_line(1, "batch")
    old.record_line(2, "online")
    old.record_line(3, "online")
    (handed,) = old.supersede(3, NOW + 1)
    assert handed.versions == [1, 2, 3]
    (units,) = old.observe(1, DATA_DRIFT, _fire("units_on_hand"), _w(4), NOW + 2)
    assert units.groups == ["units_on_hand"]
    assert json.loads((tmp_path / "incidents.json").read_text())["format"] == "rxcast.drift.incidents/2"


def test_the_engine_judges_the_batch_line_apart_from_the_online_refits(tmp_path, profile_json):  # noqa: F811
    from rxcast.drift.engine import DriftEngine

    rng = np.random.default_rng(3)
    profile = json.loads(profile_json)

    def engine() -> DriftEngine:
        started = DriftEngine(data_dir=tmp_path)
        for version in range(1, 12):
            started.register_reference(version, profile)
        return started

    def log(drift: DriftEngine, version: int, source: str, day: int, shift: float) -> None:
        features = _features(rng, DAY_ROWS, shift)
        keys = np.array([f"s{i % 20}" for i in range(DAY_ROWS)], dtype=object)
        event_ms = np.full(DAY_ROWS, day * DAY_MS, dtype=np.int64)
        drift.log_predictions(version, keys, keys, event_ms, features, features["demand_7d"] * 0.9 + 0.5, source)

    drift = engine()
    # The online alias is refitted every day and follows the change; the batch model, older, keeps showing it.
    for day in range(4):
        log(drift, 2 + day, "online", day, 0.0)
        log(drift, 1, "batch", day, 1.0)
    log(drift, 6, "online", 4, 0.0)
    (incident,) = drift.list_incidents()
    assert (incident.kind, incident.model_version, incident.versions) == ("data_drift", 1, [1])
    assert "demand_7d" in incident.features and incident.changed_ms == 0
    drift.close()

    drift = engine()
    assert (drift.incidents.lines(1), drift.incidents.lines(6)) == ({"batch"}, {"online"})
    # The next batch model takes the incident over, and its clean windows resolve it.
    for day in range(5, 9):
        log(drift, 7, "batch", day, 0.0)
        log(drift, 3 + day, "online", day, 0.0)
    (resolved,) = drift.list_incidents()
    assert (resolved.incident_id, resolved.versions, resolved.status) == (incident.incident_id, [1, 7], RESOLVED)
    assert resolved.resolution == "3 windows in a row without it on model version 7"
    drift.close()
