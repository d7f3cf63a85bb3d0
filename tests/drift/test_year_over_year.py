"""Segments' inputs judged against the same weekday a year before: the judgement
(a season repeated from last year fires nothing, a shock fires on its second
day, a fall too, stores opened since are left out), the incidents it opens on
each model line and the window drift that joins them, and the whole path on
real processes: the drift service asks a real feature service for a year of
daily totals and opens one incident per line naming the shocked category."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from rxcast.clients import DriftClient, FeatureClient
from rxcast.drift.engine import DriftEngine, EngineSettings
from rxcast.drift.incidents import DATA_DRIFT, OPEN, RESOLVED, Firing, IncidentBook, WindowRef
from rxcast.drift.seasonal import SeasonalSettings, judge, yoy_feature
from rxcast.drift.seasonal_feed import YearOverYearFeed
from rxcast.drift.v1 import drift_pb2
from rxcast.model.profile import build_reference_profile
from rxcast.model.timebase import DAY_MS, day_text
from rxcast.runtime.errors import InvalidArgument
from rxcast.suite.launcher import ServiceProcess
from tests.feature.records import to_protos

SETTINGS = SeasonalSettings(min_count=10)
#: The judged day: late enough for a year and a trend before it.
DAY = 20_000
STORES = [f"s{i}" for i in range(6)]


def _totals(days: np.ndarray, level, stores=STORES, segments=("flu", "pain"), records: int = 5) -> pd.DataFrame:
    """Per (day, store, segment) totals of `records` records whose mean is level(day, segment)."""
    rows = [
        (int(d), store, segment, level(int(d), segment) * records, records)
        for d in days
        for store in stores
        for segment in segments
    ]
    return pd.DataFrame(rows, columns=["business_day", "store_id", "segment", "sum", "count"])


def _season(day: int, segment: str) -> float:
    """A yearly season (a flu wave in winter), 10% growth a year and a weekly cycle."""
    year = 1.1 ** (day / 364)
    wave = 1 + (0.8 if segment == "flu" else 0.2) * np.cos(2 * np.pi * day / 364)
    return 10 * year * wave * (1.2 if day % 7 < 2 else 1.0)


def _judged(level, day: int = DAY, **kwargs) -> dict[str, object]:
    frame = _totals(SETTINGS.days_needed(day), level, **kwargs)
    return {d.segment: d for d in judge(frame, day, SETTINGS)}


def test_a_season_repeated_from_a_year_before_fires_nothing_and_a_shock_fires_from_its_second_day():
    calm = _judged(_season)
    assert set(calm) == {"flu", "pain"}
    assert all(abs(d.ratio - 1) < 0.02 and not d.fires for d in calm.values())

    def shocked(first: int):
        return lambda day, segment: _season(day, segment) * (1.8 if segment == "flu" and day >= first else 1.0)

    first_day = _judged(shocked(DAY))
    assert first_day["flu"].ratio == pytest.approx(1.8, rel=0.02) and not first_day["flu"].fires
    second_day = _judged(shocked(DAY - 1))
    assert second_day["flu"].fires and second_day["flu"].ratios == pytest.approx((1.8, 1.8), rel=0.02)
    assert not second_day["pain"].fires
    fallen = _judged(lambda day, segment: _season(day, segment) * (0.5 if day >= DAY - 1 else 1.0))
    assert all(d.fires and d.ratio == pytest.approx(0.5, rel=0.02) for d in fallen.values())


def test_stores_opened_since_the_year_before_are_left_out_and_thin_days_are_not_judged():
    days = SETTINGS.days_needed(DAY)
    frame = pd.concat(
        [
            _totals(days, _season),
            # A new region's stores, open for the last two weeks only, at three times the level.
            _totals(days[days > DAY - 14], lambda d, s: 3 * _season(d, s), stores=["new1", "new2", "new3"]),
        ]
    )
    judged = {d.segment: d for d in judge(frame, DAY, SETTINGS)}
    assert all(abs(d.ratio - 1) < 0.02 and not d.fires for d in judged.values())
    assert judged["flu"].count == 5 * len(STORES)
    thin = _totals(days, _season, stores=STORES[:1])  # 5 records a day, under min_count
    assert judge(thin, DAY, SETTINGS) == []


def test_the_days_needed_are_the_confirming_days_their_year_ago_days_and_the_trend_spans():
    days = SETTINGS.days_needed(DAY)
    assert {DAY, DAY - 1, DAY - 364, DAY - 365} <= set(days.tolist())
    assert days.min() == DAY - 1 - 364 - 31 and days.max() == DAY
    assert DAY - 3 not in days  # the trend ends 4 days before
    with pytest.raises(InvalidArgument, match="ratio"):
        SeasonalSettings(ratio=1.0)
    with pytest.raises(InvalidArgument, match="trend"):
        SeasonalSettings(trend_first=3, trend_last=4)


def _w(day: int) -> WindowRef:
    return WindowRef(f"w{day}", day * DAY_MS, (day + 1) * DAY_MS - 1)


def test_each_line_gets_one_incident_and_window_drift_starting_within_the_follow_days_joins_it(tmp_path):
    engine = DriftEngine(EngineSettings(clean_windows=2), tmp_path)
    book = engine.incidents
    book.record_line(3, "batch")
    book.record_line(4, "online")
    book.supersede(3, 1)
    book.supersede(4, 2)
    shock = _judged(lambda day, segment: _season(day, segment) * (1.8 if segment == "flu" and day >= DAY - 1 else 1))
    opened = engine.observe_year_over_year(DAY, list(shock.values()))
    assert sorted((i.model_version, i.groups, i.kind) for i in opened) == [
        (3, ["yoy:flu"], DATA_DRIFT),
        (4, ["yoy:flu"], DATA_DRIFT),
    ]
    assert "units_dispensed of medication_category=flu" in opened[0].reason
    batch = next(i for i in opened if i.model_version == 3)
    assert batch.evidence["yoy:flu"]["ratio"] == pytest.approx(1.8, rel=0.02)
    (signal,) = batch.evidence["yoy:flu"]["signals"]  # as the dashboard lists a window's signals
    assert signal["name"] == "ratio to a year before" and signal["threshold"] == 1.5 and signal["fired"]
    # Six days later the batch model's windows show the shock's aggregates: the same event.
    book.observe(3, DATA_DRIFT, Firing({"dispensed_sum_7d": "ks"}), _w(DAY + 6), 3)
    assert book.observe(3, DATA_DRIFT, Firing({"dispensed_sum_7d": "ks"}), _w(DAY + 7), 4) == []
    assert book.get(batch.incident_id).groups == ["dispensed", "yoy:flu"]
    # Weeks after the change, drift of another family is news.
    book.observe(3, DATA_DRIFT, Firing({"prescriptions_1d": "ks"}), _w(DAY + 20), 5)
    (later,) = book.observe(3, DATA_DRIFT, Firing({"prescriptions_1d": "ks"}), _w(DAY + 21), 6)
    assert later.groups == ["prescriptions"]
    # Days back at last year's level are no clean days: a lasting change enters the trend the
    # ratio is divided by, whether or not the line's model learned it. The line's windows say.
    online = next(i for i in opened if i.model_version == 4)
    calm = list(_judged(_season, DAY + 22).values())
    for day in (DAY + 22, DAY + 23, DAY + 24):
        assert engine.observe_year_over_year(day, calm) == []
    assert book.get(online.incident_id).status == OPEN
    for day in (DAY + 22, DAY + 23):
        book.observe(4, DATA_DRIFT, Firing({}), _w(day), 7)
    assert book.get(online.incident_id).status == RESOLVED
    assert book.get(later.incident_id).status == OPEN
    engine.close()


def test_no_line_serving_yet_opens_nothing():
    book_engine = DriftEngine(EngineSettings())
    shock = _judged(lambda day, segment: _season(day, segment) * (2 if day >= DAY - 1 else 1))
    assert book_engine.observe_year_over_year(DAY, list(shock.values())) == []
    assert isinstance(book_engine.incidents, IncidentBook) and book_engine.incidents.list() == []


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    root = tmp_path_factory.mktemp("yoy")
    feature = ServiceProcess("feature", root, ["--data-dir", str(root / "feature")]).start().wait_ready(120)
    drift = None
    try:
        args = ["--data-dir", str(root / "drift"), "--feature-address", feature.address, "--collect-seconds", "0.3"]
        args += ["--yoy-min-count", "10", "--window-rows", "8"]
        drift = ServiceProcess("drift", root, args).start().wait_ready()
        yield feature, drift, root
    finally:
        if drift is not None:
            drift.stop()
        feature.stop()


def _world(days: int, shock_from: int) -> dict[str, list]:
    """Records of 6 stores x 4 medications (two categories) for `days` days
    with a yearly season; the flu medications' demand x1.8 from `shock_from` on."""
    first = DAY - days + 1
    rows = []
    for day in range(first, DAY + 1):
        for store in STORES:
            for m, segment in enumerate(("flu", "flu", "pain", "pain")):
                level = _season(day, segment) * (1.8 if segment == "flu" and day >= shock_from else 1.0)
                rows.append((store, f"m{m}", day_text(day), level, segment))
    return {
        "store_id": [r[0] for r in rows],
        "medication_id": [r[1] for r in rows],
        "business_day": [r[2] for r in rows],
        "units_dispensed": [r[3] for r in rows],
        "medication_category": [r[4] for r in rows],
        "store_region": ["north"] * len(rows),
    }


def test_the_drift_service_judges_complete_days_from_the_feature_services_history(processes):
    feature, drift, root = processes
    client = DriftClient(drift.address, timeout=30.0)
    stub = client.stub
    # A line serving: version 1 logged by the online predictor, its first window scored.
    rng = np.random.default_rng(5)
    profile = build_reference_profile({"x": rng.normal(size=500)}, [], rng.normal(size=500))
    stub.RegisterReference(
        drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=json.dumps(profile.to_dict()))
    )
    stub.LogPredictions(
        iter(
            [
                drift_pb2.LogPredictionsRequest(
                    model_version=1,
                    source="online",
                    keys=drift_pb2.EntityKeys(store_ids=["s0"] * 16, medication_ids=[f"m{i}" for i in range(16)]),
                    event_times_unix_ms=[DAY * DAY_MS] * 16,
                    predictions=[5.0] * 16,
                    features=[
                        drift_pb2.FeatureValues(
                            name="x", numeric=drift_pb2.DoubleList(values=rng.normal(size=16).tolist())
                        )
                    ],
                )
            ]
        )
    )
    deadline = time.monotonic() + 60
    while not stub.ListReports(drift_pb2.ListReportsRequest()).reports and time.monotonic() < deadline:
        time.sleep(0.2)
    # A year and six weeks of history, flu demand up 1.8x on the last two days: the first
    # judgement is of the newest day.
    with FeatureClient(feature.address, timeout=120.0) as features:
        assert not features.ingest(to_protos(_world(364 + 40, DAY - 1))).errors
    found = []
    while time.monotonic() < deadline and not found:
        answer = stub.ListIncidents(drift_pb2.ListIncidentsRequest())
        found = [i for i in answer.incidents if i.kind == drift_pb2.INCIDENT_KIND_DATA_DRIFT]
        time.sleep(0.3)
    assert [(i.model_version, list(i.features)) for i in found] == [(1, [yoy_feature("flu")])]
    (incident,) = found
    assert incident.changed_time.ToMilliseconds() == (DAY + 1) * DAY_MS  # when the day's records stand
    state = json.loads((root / "drift" / "yoy.json").read_text())
    assert state == {"format": "rxcast.drift.yoy/1", "judged": DAY}
    client.close()


def test_a_restarted_feed_judges_the_days_it_missed_in_order_and_an_unreadable_state_starts_at_the_latest(
    processes, tmp_path
):
    feature, _, _ = processes  # its store holds the world of the test above
    engine = DriftEngine(EngineSettings(seasonal=SeasonalSettings(min_count=10)), tmp_path)
    engine.incidents.record_line(1, "online")
    engine.incidents.supersede(1, 1)
    (tmp_path / "yoy.json").write_text(json.dumps({"format": "rxcast.drift.yoy/1", "judged": DAY - 3}))
    feed = YearOverYearFeed(engine, feature.address, interval=60)
    (opened,) = feed.judge_once()  # DAY - 2 and DAY - 1 judged firing nothing, DAY the second flu day
    assert opened.groups == ["yoy:flu"] and feed.judged == DAY
    assert feed.judge_once() == [] and feed.judged == DAY
    feed.stop()

    (tmp_path / "yoy.json").write_text("{not json")
    again = YearOverYearFeed(engine, feature.address, interval=60)
    assert again.judged is None and list(tmp_path.glob("yoy.json.corrupt-*"))
    assert again.judge_once() == [] and again.judged == DAY  # the open incident takes the day
    again.stop()
    engine.close()


def test_days_before_any_model_serves_are_passed_over(processes, tmp_path):
    feature, _, _ = processes
    engine = DriftEngine(EngineSettings(seasonal=SeasonalSettings(min_count=10)), tmp_path)
    feed = YearOverYearFeed(engine, feature.address, interval=60)
    assert feed.judge_once() == [] and feed.judged == DAY
    assert json.loads((tmp_path / "yoy.json").read_text())["judged"] == DAY
    feed.stop()
    engine.close()
