"""Errors judged within segments: a rise confined to one medication category
fires once it lasts, noise and a steady world fire nothing, and the engine
turns a segment's rise into a concept-drift incident of the line, across a
restart."""

from __future__ import annotations

import numpy as np
import pytest

from rxcast.drift.engine import DriftEngine
from rxcast.drift.incidents import CONCEPT_DRIFT, OPEN
from rxcast.drift.segments import SegmentErrors, SegmentSettings
from rxcast.model.profile import build_reference_profile
from rxcast.model.timebase import DAY_MS
from rxcast.runtime.errors import InvalidArgument

CATEGORIES = ("respiratory", "cardiovascular", "analgesic")


def _day(rng, day: int, scale: dict[str, float], n: int = 200) -> tuple[np.ndarray, ...]:
    """One day's losses per category (|N(0, scale)|), with their segments, times and versions."""
    segments = np.repeat(np.array(CATEGORIES, dtype=object), n)
    losses = np.abs(rng.normal(0.0, [scale.get(c, 1.0) for c in segments]))
    return segments, np.full(segments.size, day * DAY_MS + 8 * 3_600_000), losses, np.full(segments.size, 1 + day)


def test_a_rise_confined_to_one_segment_fires_from_its_second_day_and_noise_fires_nothing():
    rng = np.random.default_rng(5)
    tracker = SegmentErrors(SegmentSettings())
    judged = []
    plan = [{}] * 12 + [{"analgesic": 1.4}] + [{}] * 3 + [{"respiratory": 2.0}] * 3 + [{}]
    for day, scale in enumerate(plan):
        judged += tracker.update("online", *_day(rng, day, scale))
    # Each day is judged once a later day's losses arrive; the first seven build the baseline.
    assert sorted({d.day for d in judged}) == list(range(7, len(plan) - 1))
    rising = [(d.day, d.segment, d.streak, d.fires) for d in judged if d.rising]
    # One day of a 40% rise is seen, and fires nothing; two days in a row do.
    assert rising == [
        (12, "analgesic", 1, False),
        (16, "respiratory", 1, False),
        (17, "respiratory", 2, True),
        (18, "respiratory", 3, True),
    ]
    fired = next(d for d in judged if d.fires)
    assert fired.model_version == 18 and fired.mean > 1.9 * fired.baseline
    assert "medication_category=respiratory" in fired.describe("medication_category")


def test_a_steady_world_and_days_too_small_to_judge_fire_nothing_and_late_losses_join_an_open_day():
    rng = np.random.default_rng(6)
    tracker = SegmentErrors(SegmentSettings())
    judged = []
    for day in range(60):
        judged += tracker.update("batch", *_day(rng, day, {}))
    assert judged and not any(d.rising for d in judged)
    # A day of 50 losses per segment is below min_count: not judged, not part of any baseline.
    tracker.update("batch", *_day(rng, 60, {"respiratory": 3.0}, n=50))
    assert tracker.update("batch", *_day(rng, 61, {})) == []
    # Losses late for a judged day join the oldest day still open (61).
    segments, times, losses, versions = _day(rng, 30, {}, n=150)
    assert tracker.update("batch", segments, times, losses, versions) == []
    (respiratory,) = [d for d in tracker.update("batch", *_day(rng, 62, {})) if d.segment == "respiratory"]
    assert (respiratory.day, respiratory.count) == (61, 350)


def test_the_tracker_state_round_trips_and_another_lines_state_is_left_alone():
    rng = np.random.default_rng(7)
    tracker, copy = SegmentErrors(SegmentSettings()), SegmentErrors(SegmentSettings())
    for day in range(10):
        tracker.update("online", *_day(rng, day, {}))
        copy.update("batch", *_day(rng, day, {}))
    copy.restore(tracker.to_dict("online"))
    assert copy.to_dict("online") == tracker.to_dict("online") and copy.to_dict("batch")["tracks"]
    following = _day(rng, 10, {"respiratory": 2.0})
    assert copy.update("online", *following) == tracker.update("online", *following)
    with pytest.raises(InvalidArgument):
        SegmentSettings(baseline_days=3, min_baseline_days=7)


def test_the_engine_opens_one_concept_incident_of_the_line_naming_the_segment_across_a_restart(tmp_path):
    # Ten categories of 100 forecasts a day.
    rng = np.random.default_rng(8)
    n = 1000
    ten = np.repeat(np.array([*CATEGORIES, *(f"other{i}" for i in range(7))], dtype=object), n // 10)
    profile = build_reference_profile(
        {"x": rng.normal(size=n), "medication_category": ten},
        ["medication_category"],
        np.full(n, 100.0),
        rng.normal(0.0, 1.0, 4000),
    ).to_dict()
    engine = DriftEngine(data_dir=tmp_path)
    engine.register_reference(1, profile)

    def day(engine: DriftEngine, d: int, respiratory_sd: float) -> None:
        categories = rng.permutation(ten)  # a day's forecasts come in no order of category
        keys = np.array([f"s{i}" for i in range(n)], dtype=object)
        meds = np.array([f"m{i}" for i in range(n)], dtype=object)
        times = np.full(n, d * DAY_MS + 1, dtype=np.int64)
        features = {"x": rng.normal(size=n), "medication_category": categories}
        engine.log_predictions(1, keys, meds, times, features, np.full(n, 100.0), source="online")
        # The other nine categories' errors shrink as much as respiratory's grow: the whole stream's mean stays.
        sd = np.where(categories == "respiratory", respiratory_sd, (10.0 - respiratory_sd) / 9.0)
        engine.log_actuals(keys, meds, times, 100.0 + 10.0 * rng.normal(0.0, sd))

    for d in range(12):
        day(engine, d, 1.0)
    day(engine, 12, 1.8)  # one rising day: nothing yet
    assert engine.incidents.list() == []
    engine.close()
    engine = DriftEngine(data_dir=tmp_path)  # the baseline and the day in a row survive
    day(engine, 13, 1.8)
    day(engine, 14, 1.0)  # judges day 13: the second rising day fires
    (incident,) = engine.incidents.list()
    assert (incident.kind, incident.status, incident.model_version) == (CONCEPT_DRIFT, OPEN, 1)
    assert incident.groups == ["errors:respiratory"]  # the whole stream's monitor saw nothing
    assert incident.changed_ms == 13 * DAY_MS
    assert "medication_category=respiratory" in incident.reason
    for d in range(15, 19):
        day(engine, d, 1.0)
    # Days without the rise resolve it (clean_windows in a row).
    assert engine.incidents.get(incident.incident_id).status != OPEN
    engine.close()
