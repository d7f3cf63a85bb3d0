"""The dashboard's pure parts: sample history, change detection for the event
stream, latency quantiles from Prometheus buckets, contract views."""

from __future__ import annotations

import numpy as np
from prometheus_client.samples import Sample as PromSample

from rxcast.dashboard.app import Snapshots
from rxcast.dashboard.forecasts import Sample, SampleCache, business_day
from rxcast.dashboard.sources import histogram_quantile
from rxcast.dashboard.views import flag_names
from rxcast.model.timebase import day_end_ms
from rxcast.predictor.v1 import predictor_pb2


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
