"""Windows, the prediction log and alert episodes, without a server."""

from __future__ import annotations

import numpy as np

from rxcast.drift.alerts import CONCEPT_DRIFT, DATA_DRIFT, AlertBook
from rxcast.drift.detectors import ErrorStreamMonitor
from rxcast.drift.engine import DriftEngine
from rxcast.drift.matching import PredictionLog, entity_time_keys
from rxcast.drift.windows import Batch, WindowBuffer
from rxcast.model.profile import build_reference_profile
from rxcast.model.residuals import UNITS_SCALE

DAY = 1000  # slot length in these tests


def _batch(times: list[int]) -> Batch:
    n = len(times)
    return Batch({"x": np.arange(n, dtype=float)}, np.zeros(n), np.array(times, dtype=np.int64))


def test_windows_close_by_count_and_carry_the_rest():
    buffer = WindowBuffer(1, {"x": "numeric"}, max_rows=4, slot_ms=DAY)
    closed = list(buffer.add(_batch([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), now_ms=0))
    assert [len(w.rows) for w in closed] == [4, 4]
    assert [w.window_id for w in closed] == ["v1-w1", "v1-w2"]
    assert buffer.rows == 2 and buffer.peek(0).window_id == "v1-w3"


def test_windows_close_when_a_later_slot_arrives_and_late_rows_join_the_open_one():
    buffer = WindowBuffer(1, {"x": "numeric"}, max_rows=100, slot_ms=DAY)
    assert list(buffer.add(_batch([10, 20]), now_ms=0)) == []
    closed = list(buffer.add(_batch([30, DAY + 5, 40, 2 * DAY + 1]), now_ms=0))
    assert [w.rows.event_times_ms.tolist() for w in closed] == [[10, 20, 30, 40], [DAY + 5]]
    assert list(buffer.add(_batch([50]), now_ms=0)) == []  # late for day 0: joins the open day-2 window
    assert sorted(buffer.peek(0).rows.event_times_ms.tolist()) == [50, 2 * DAY + 1]
    assert buffer.close().window_id == "v1-w3" and buffer.close() is None


def test_prediction_log_matches_keeps_the_newest_copy_and_stays_bounded():
    log = PredictionLog(max_rows=5)
    log.add(1, np.array(["s1", "s2"], object), np.array(["m", "m"], object), np.array([10, 10]), np.array([1.0, 2.0]))
    log.add(2, np.array(["s1"], object), np.array(["m"], object), np.array([10]), np.array([9.0]), np.array(["flu"]))
    found, versions, predictions, segments = log.match(
        np.array(["s1", "s2", "s3"], object), np.array(["m", "m", "m"], object), np.array([10, 10, 10])
    )
    assert found.tolist() == [True, True, False]
    assert versions[:2].tolist() == [2, 1] and predictions[:2].tolist() == [9.0, 2.0]
    assert segments.tolist() == ["flu", "", ""]  # the newest copy's segment; none logged with the first
    log.add(1, np.array([f"t{i}" for i in range(6)], object), np.full(6, "m", object), np.arange(6), np.ones(6))
    assert len(log) == 5
    assert not log.match(np.array(["s2"], object), np.array(["m"], object), np.array([10]))[0][0]


def test_prediction_log_hands_out_unmatched_rows_oldest_first_once_per_retry():
    log = PredictionLog(max_rows=100)
    log.add(1, np.array(["a", "b", "c"], object), np.full(3, "m", object), np.array([1, 2, 3]), np.ones(3))
    log.match(np.array(["b"], object), np.array(["m"], object), np.array([2]))
    first = log.unmatched(limit=10, asked_before_ms=0, now_ms=100)
    assert first["store_id"].tolist() == ["a", "c"]
    assert log.unmatched(limit=10, asked_before_ms=50, now_ms=200).empty  # asked at 100: not yet again
    assert log.unmatched(limit=1, asked_before_ms=150, now_ms=300)["store_id"].tolist() == ["a"]


def test_episodes_are_per_feature_and_end_after_clean_windows(tmp_path):
    book = AlertBook(tmp_path, clean_windows=2)
    first = book.observe(1, DATA_DRIFT, {"a": "a moved"})
    assert first is not None and first.features == ["a"]
    assert book.observe(1, DATA_DRIFT, {"a": "a moved"}) is None  # same episode
    second = book.observe(1, DATA_DRIFT, {"a": "still", "b": "b moved"})
    assert second is not None and second.features == ["b"] and second.reason == "b: b moved"
    assert book.observe(1, DATA_DRIFT, {"b": "b"}) is None  # a: one clean window
    assert book.observe(1, DATA_DRIFT, {"b": "b"}) is None  # a: two clean windows, its episode ends
    third = book.observe(1, DATA_DRIFT, {"a": "again", "b": "b"})
    assert third is not None and third.features == ["a"]
    assert book.observe(2, DATA_DRIFT, {"a": "other version"}) is not None
    # History and open episodes survive a new book on the same directory.
    again = AlertBook(tmp_path, clean_windows=2)
    assert [a.alert_id for a in again.list()] == [4, 3, 2, 1]
    assert set(again.open_episodes(1, DATA_DRIFT)) == {"a", "b"}
    assert again.observe(1, DATA_DRIFT, {"a": "x"}) is None


def test_a_concept_episode_lasts_while_the_errors_stay_high():
    # Forecasts of 100 units; residuals (actual - 100) / 10 have sd 1 on the holdout.
    rng = np.random.default_rng(61)
    profile = build_reference_profile({"x": rng.normal(size=2000)}, [], np.full(2000, 100.0), rng.normal(size=4000))
    engine = DriftEngine()
    engine.register_reference(1, profile.to_dict())
    logged = 0

    def errors(sd: float, n: int) -> list:
        nonlocal logged
        raised = []
        for start in range(0, n, 2000):
            keys = np.array([f"s{i}" for i in range(logged, logged + 2000)], dtype=object)
            times = np.full(2000, 1_000, dtype=np.int64)
            engine.log_predictions(1, keys, keys, times, {"x": rng.normal(size=2000)}, np.full(2000, 100.0))
            raised += engine.log_actuals(keys, keys, times, 100.0 + 10.0 * rng.normal(0.0, sd, 2000)).alerts
            logged += 2000
        return raised

    assert errors(1.0, 6000) == []
    first = errors(1.5, 20_000)
    # Errors growing further while they are still high: the same episode, no new alert;
    # it stays open while they stay high, though the detectors, adapted to the new
    # level, have been silent for longer than concept_clean_samples.
    worse = errors(2.5, 20_000)
    assert [a.kind for a in first] == [CONCEPT_DRIFT] and worse == []
    assert engine.alerts.open_episodes(1, CONCEPT_DRIFT)
    # Errors back to the holdout's: the episode ends, and a new rise is a new alert.
    assert errors(1.0, 30_000) == []
    assert not engine.alerts.open_episodes(1, CONCEPT_DRIFT)
    again = errors(1.5, 20_000)
    assert [a.kind for a in again] == [CONCEPT_DRIFT] and again[0].episode_id != first[0].episode_id


def test_holdout_errors_in_units_give_way_to_the_first_served_losses():
    # Forecasts of 100 units: holdout errors in units (sd 10) are ten times
    # the served losses the engine computes, (actual - 100) / 10. Judged
    # against them, errors grown by half would look small; the first served
    # losses stand in for the holdout instead, and the rise is found.
    rng = np.random.default_rng(62)
    profile = build_reference_profile({"x": rng.normal(size=2000)}, [], np.full(2000, 100.0), rng.normal(0, 10, 4000))
    engine = DriftEngine()
    engine.register_reference(1, {**profile.to_dict(), "error_scale": UNITS_SCALE})
    raised = []
    for batch, sd in enumerate([1.0] * 3 + [1.5] * 10):
        keys = np.array([f"s{batch}-{i}" for i in range(2000)], dtype=object)
        times = np.full(2000, 1_000, dtype=np.int64)
        engine.log_predictions(1, keys, keys, times, {"x": rng.normal(size=2000)}, np.full(2000, 100.0))
        outcome = engine.log_actuals(keys, keys, times, 100.0 + 10.0 * rng.normal(0.0, sd, 2000))
        raised += [(batch, a.kind) for a in outcome.alerts]
    assert raised and raised[0][0] >= 3 and {kind for _, kind in raised} == {CONCEPT_DRIFT}


def test_a_saved_monitor_judging_against_holdout_errors_in_units_starts_over_and_others_are_kept(tmp_path):
    # A release before `error_scale` was read built monitors on the holdout
    # errors whatever their scale; restored, such a monitor would keep
    # judging served losses against errors ten times larger.
    rng = np.random.default_rng(63)
    profile = build_reference_profile({"x": rng.normal(size=2000)}, [], np.full(2000, 100.0), rng.normal(0, 10, 4000))
    engine = DriftEngine(data_dir=tmp_path)
    engine.register_reference(1, {**profile.to_dict(), "error_scale": UNITS_SCALE})
    engine.register_reference(2, profile.to_dict())
    for version in (1, 2):
        engine._monitors[version] = ErrorStreamMonitor(engine.settings.detectors, profile.error.sketch, seed=version)
        engine._monitors[version].update(np.abs(rng.normal(0, 1, 100)))
    engine.close()
    again = DriftEngine(data_dir=tmp_path)
    assert again._monitors[1].warming_up and again._monitors[1].samples == 0
    assert not again._monitors[2].warming_up and again._monitors[2].samples == 100
    again.close()


def test_a_replaced_versions_last_window_closes_when_the_newer_version_logs_a_later_day(tmp_path):
    day_ms = 86_400_000
    rng = np.random.default_rng(8)
    profile = build_reference_profile({"x": rng.normal(size=2000)}, [], rng.normal(size=2000)).to_dict()
    engine = DriftEngine(data_dir=tmp_path)
    for version in (1, 2):
        engine.register_reference(version, profile)

    def log(version: int, day: int) -> list[str]:
        keys = np.array([f"k{i}" for i in range(200)], dtype=object)
        times = np.full(200, day * day_ms + 1, dtype=np.int64)
        outcome = engine.log_predictions(version, keys, keys, times, {"x": rng.normal(size=200)}, rng.normal(size=200))
        return [r.window_id for r in outcome.reports]

    assert log(1, 0) == [] and log(1, 1) == ["v1-w1"]
    # Version 2 replaces version 1 after day 1: version 1 logs nothing more,
    # and its window of day 1 is judged once a later day's rows arrive.
    assert log(2, 2) == ["v1-w2"]
    assert log(2, 3) == ["v2-w1"]
    # A version logging rows of the same day closes nothing of the other.
    assert log(1, 3) == [] and log(2, 3) == []
    # After a restart the journal gives the same windows back.
    engine.close()
    again = DriftEngine(data_dir=tmp_path)
    assert [r.window_id for r in again.list_reports(1)] == ["v1-w2", "v1-w1"]
    again.close()


def test_prediction_log_counts_the_rows_awaiting_actuals_without_merging():
    log = PredictionLog(max_rows=100)
    log.add(1, np.array(["a", "b", "c"], object), np.full(3, "m", object), np.array([1, 2, 3]), np.ones(3))
    assert log.awaiting_actuals() == 3
    log.match(np.array(["b"], object), np.array(["m"], object), np.array([2]))
    assert log.awaiting_actuals() == 2
    log.add(1, np.array(["d"], object), np.array(["m"], object), np.array([4]), np.ones(1))
    assert log.awaiting_actuals() == 3
    log.mark_matched(entity_time_keys(np.array(["a", "d"], object), np.array(["m", "m"], object), np.array([1, 4])))
    assert log.awaiting_actuals() == 1
