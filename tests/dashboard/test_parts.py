"""The dashboard's pure parts: sample history, change detection for the event
stream, latency quantiles from Prometheus buckets, contract views, errors
per day, queue depths and the last error from the services' metrics."""

from __future__ import annotations

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample as PromSample

from rxcast.dashboard.app import Snapshots
from rxcast.dashboard.forecasts import Sample, SampleCache, business_day, mean_errors
from rxcast.dashboard.health import last_error, queue_depths
from rxcast.dashboard.sources import histogram_quantile
from rxcast.dashboard.views import drift_report, estimated_errors, flag_names
from rxcast.drift.v1 import drift_pb2
from rxcast.model.timebase import day_end_ms
from rxcast.predictor.v1 import predictor_pb2
from rxcast.runtime import timestamps
from rxcast.runtime.metrics import record_last_error


def _sample(day: int, value: float) -> Sample:
    meds = np.array(["M1", "M2"])
    return Sample(day_end_ms(day), meds, np.array([value, value]), np.zeros(2, np.uint32), np.ones(2, np.int64))


def test_samples_keep_one_per_day_newest_winning_and_are_bounded():
    cache = SampleCache(points=3)
    assert cache.add("S1", _sample(100, 1.0))
    assert not cache.add("S1", _sample(100, 1.0)), "the same forecasts again change nothing"
    assert cache.add("S1", _sample(100, 2.0)), "a model promoted during the day replaces the day's sample"
    for day in (101, 102, 103):
        cache.add("S1", _sample(day, 3.0))
    kept = cache.samples("S1")
    assert [business_day(s.as_of_ms) for s in kept] == [business_day(day_end_ms(d)) for d in (101, 102, 103)]
    assert cache.samples("S2") == []


def test_a_row_at_the_end_of_a_day_stands_on_that_day():
    assert business_day(day_end_ms(20_000)) == "2024-10-04"


def test_snapshots_report_only_parts_that_changed():
    snapshots = Snapshots()
    assert snapshots.put("health", {"a": 1})
    assert not snapshots.put("health", {"a": 1})
    seen = {name: number for name, number, _ in snapshots.newer_than({})}
    assert snapshots.newer_than(seen) == []
    assert snapshots.put("health", {"a": 2})
    assert [name for name, _, _ in snapshots.newer_than(seen)] == ["health"]


def _bucket(method: str, le: str, count: float) -> PromSample:
    return PromSample(
        "rxcast_rpc_duration_seconds_bucket", {"method": f"/svc/{method}", "le": le, "service": "predictor"}, count
    )


def test_latency_quantiles_come_from_the_methods_buckets():
    samples = [
        _bucket("Predict", "0.001", 10),
        _bucket("Predict", "0.005", 90),
        _bucket("Predict", "0.025", 100),
        _bucket("Predict", "+Inf", 100),
        _bucket("ModelInfer", "0.001", 1000),
        _bucket("ModelInfer", "+Inf", 1000),
    ]
    assert histogram_quantile(samples, "rxcast_rpc_duration_seconds", "Predict", 0.5) == 5.0
    assert histogram_quantile(samples, "rxcast_rpc_duration_seconds", "Predict", 0.99) == 25.0
    assert histogram_quantile(samples, "rxcast_rpc_duration_seconds", "GetBatchPredictions", 0.5) is None


def test_flag_names_follow_the_contract():
    flags = predictor_pb2.PREDICTION_FLAG_STALE_FEATURES | predictor_pb2.PREDICTION_FLAG_COLD_START_STORE
    assert flag_names(flags) == ["cold start store", "stale features"]
    assert flag_names(0) == []


def test_errors_are_paired_per_day_and_over_all_days():
    by_day = {
        "2025-07-02": {"online": [np.array([1.0, 3.0])], "batch": [np.array([2.0, 4.0])]},
        "2025-07-01": {"online": [np.array([2.0]), np.array([4.0])], "batch": [np.array([6.0]), np.array([6.0])]},
        "2025-07-03": {"online": [np.array([])], "batch": [np.array([])]},  # no actual elapsed yet
    }
    errors = mean_errors(by_day)
    assert (errors["rows"], errors["online"], errors["batch"]) == (4, 2.5, 4.5)
    assert errors["by_day"] == [
        {"day": "2025-07-01", "rows": 2, "online": 3.0, "batch": 6.0},
        {"day": "2025-07-02", "rows": 2, "online": 2.0, "batch": 3.0},
    ]
    assert mean_errors({}) == {"rows": 0, "online": None, "batch": None, "by_day": []}


def _report(window: str, end_day: int, version: int, estimate: float | None) -> drift_pb2.DriftReport:
    report = drift_pb2.DriftReport(report_id=window, window_id=window, model_version=version, current_rows=10)
    report.window_end_time.CopyFrom(timestamps.from_ms(day_end_ms(end_day)))
    if estimate is not None:
        report.estimated_mae, report.estimated_mae_upper = estimate, 5.0
    return report


def test_estimated_errors_stand_on_the_day_their_window_ends_oldest_first():
    reports = [_report("v2-w1", 20_001, 2, 4.5), _report("v1-w9", 20_000, 1, 6.0), _report("v1-w8", 19_999, 1, None)]
    assert estimated_errors(reports) == [
        {"day": "2024-10-04", "window_id": "v1-w9", "model_version": 1, "rows": 10, "estimated_mae": 6.0, "upper": 5.0},
        {"day": "2024-10-05", "window_id": "v2-w1", "model_version": 2, "rows": 10, "estimated_mae": 4.5, "upper": 5.0},
    ]
    assert drift_report(reports[0])["estimated_mae"] == 4.5
    assert drift_report(reports[2])["estimated_mae"] is None and drift_report(reports[2])["estimated_mae_upper"] is None


def _scraped(registry: CollectorRegistry) -> list[PromSample]:
    text = generate_latest(registry).decode()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def test_queue_depths_are_read_from_the_services_gauges():
    registry = CollectorRegistry()
    in_flight = Gauge("rxcast_rpc_in_flight", "", ["service"], registry=registry)
    in_flight.labels("a").set(2)
    in_flight.labels("b").set(1)
    window = Gauge("rxcast_drift_open_window_rows", "", ["model_version"], registry=registry)
    window.labels("3").set(100)
    window.labels("4").set(20)
    Gauge("rxcast_drift_predictions_awaiting_actuals", "", registry=registry).set_function(lambda: 7)
    Gauge("rxcast_feature_entities", "", registry=registry).set(99)  # not a queue
    assert queue_depths(_scraped(registry)) == {
        "calls in flight": 3.0,
        "open window rows": 120.0,
        "predictions awaiting actuals": 7.0,
    }


def test_the_last_error_a_service_logged_reaches_the_page_through_its_metrics():
    record_last_error(None, "info", {"level": "info", "event": "ingested"})
    record_last_error(None, "warning", {"level": "warning", "event": "drift log send failed", "reason": 'a "b"\nc'})
    record_last_error(None, "info", {"level": "info", "event": "ingested"})  # an info line keeps the warning
    seen = last_error(_scraped(REGISTRY))
    assert seen["level"] == "warning" and seen["message"] == 'drift log send failed: a "b"\nc'
    assert seen["time"].endswith("Z")
    record_last_error(None, "error", {"level": "error", "event": "x" * 500})
    seen = last_error(_scraped(REGISTRY))
    assert seen["level"] == "error" and seen["message"] == "x" * 300
