"""The prediction log queue: bounded, batched, never blocking a request, drops counted."""

from __future__ import annotations

import time

import numpy as np
import pytest
from prometheus_client import REGISTRY

from rxcast.model import ModelBundle
from rxcast.predictor.driftlog import DriftSink, LogEntry, PredictionLogQueue, to_requests
from rxcast.predictor.serving import ServingModel
from tests.predictor.models import FEATURES
from tests.predictor.standins import wait_for


@pytest.fixture(scope="module")
def model(first_model):
    return ServingModel.build(ModelBundle.from_bytes(first_model.model_text, first_model.manifest))


def _dropped(outcome: str) -> float:
    return REGISTRY.get_sample_value("rxcast_predictor_drift_log_rows_total", {"outcome": outcome}) or 0.0


def _entry(model, rows: int) -> LogEntry:
    columns = {name: np.arange(rows, dtype=float) for name in FEATURES}
    columns["medication_category"] = np.full(rows, "statin")
    columns["store_region"] = np.full(rows, "north")
    return LogEntry(model, np.ones(rows), 1_000, "online", columns=columns,
                    store_ids=np.full(rows, "S0"), medication_ids=np.full(rows, "M0"))  # fmt: skip


def test_a_stalled_drift_service_never_blocks_submitters_and_overflow_is_counted(standins, model):
    standins.drift.open.clear()
    queue = PredictionLogQueue(
        DriftSink(standins.addresses["drift"], timeout=30), capacity_rows=50, batch_rows=10, linger_seconds=0.05
    )
    queue.start()
    try:
        before = _dropped("dropped_full")
        started = time.perf_counter()
        accepted = [queue.submit(_entry(model, 10)) for _ in range(20)]
        elapsed = time.perf_counter() - started
        # The sender holds one batch in the stalled call; the queue holds up to 50 more rows.
        assert accepted[:5] == [True] * 5 and not all(accepted)
        assert _dropped("dropped_full") - before == 10 * accepted.count(False)
        assert elapsed < 10.0, "submit waited on the stalled drift service (30 s)"
    finally:
        standins.drift.open.set()
        queue.stop()
    sent = sum(len(r.predictions) for r in standins.drift.requests)
    assert sent == 10 * accepted.count(True)


def test_failed_sends_are_dropped_and_counted(model):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    queue = PredictionLogQueue(DriftSink(f"127.0.0.1:{port}", timeout=1), capacity_rows=100, batch_rows=10)
    before = _dropped("dropped_send_failed")
    assert queue.submit(_entry(model, 7))
    assert queue.flush() == 0
    assert _dropped("dropped_send_failed") - before == 7


def test_batches_carry_features_by_manifest_name(model):
    matrix = model.bundle.encode(_entry(model, 3).columns).matrix
    matrix[1, 4] = np.nan
    (request,) = to_requests([LogEntry(model, np.array([1.0, 2.0, 3.0]), 5, "online", matrix=matrix)])
    by_name = {f.name: f for f in request.features}
    assert list(by_name) == list(FEATURES)
    assert list(by_name["medication_category"].categorical.values) == ["statin", "", "statin"]
    assert list(by_name["dispensed_sum_7d"].numeric.values) == [0.0, 1.0, 2.0]
    assert list(request.event_times_unix_ms) == [5, 5, 5] and request.model_version == 1


def test_batch_runs_may_wait_for_room(standins, model):
    queue = PredictionLogQueue(
        DriftSink(standins.addresses["drift"]), capacity_rows=10, batch_rows=10, linger_seconds=0.05
    )
    queue.start()
    try:
        before = sum(len(r.predictions) for r in standins.drift.requests)
        assert all(queue.submit(_entry(model, 10), wait_seconds=5) for _ in range(5))
        assert wait_for(lambda: sum(len(r.predictions) for r in standins.drift.requests) - before == 50, 10)
    finally:
        queue.stop()
