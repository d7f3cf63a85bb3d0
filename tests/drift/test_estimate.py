"""Each scored window's report carries the MAE its version's error estimator
estimates from the window's inputs, with the band's upper bound at the
window's forecast level: kept across a restart and returned by ListReports
from a real process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rxcast.clients import DriftClient
from rxcast.drift.engine import DriftEngine, EngineSettings
from rxcast.drift.v1 import drift_pb2
from rxcast.model.error_estimator import ErrorEstimator, fit_error_estimator
from rxcast.model.profile import build_reference_profile
from tests.drift.test_service import DAY_MS, _request, _start
from tests.model.test_error_estimator import _rows


@pytest.fixture(scope="module")
def profile() -> dict:
    columns, predictions, actuals, days = _rows(np.random.default_rng(5), 7)
    profile = build_reference_profile(columns, (), predictions).to_dict()
    profile["error_estimator"] = fit_error_estimator(columns, predictions, actuals, days).to_dict()
    return profile


def _day(engine: DriftEngine, index: int, volatile_share: float, seed: int) -> tuple[dict, np.ndarray]:
    columns, predictions, _, _ = _rows(np.random.default_rng(seed), 1, volatile_share=volatile_share)
    keys = np.array([f"k{i}" for i in range(predictions.size)], dtype=object)
    engine.log_predictions(
        1, keys, keys, np.full(predictions.size, index * DAY_MS, dtype=np.int64), columns, predictions
    )
    return columns, predictions


def test_a_scored_window_carries_its_estimated_error_and_the_band(profile, tmp_path):
    estimator = ErrorEstimator.from_dict(profile["error_estimator"])
    engine = DriftEngine(EngineSettings(window_rows=100_000), data_dir=tmp_path)
    engine.register_reference(1, profile)
    calm = _day(engine, 0, 0.2, seed=1)
    open_report = engine.score_window(1)
    calm_report = engine.flush(1)
    volatile = _day(engine, 1, 0.6, seed=2)
    volatile_report = engine.flush(1)

    assert calm_report.estimated_mae == pytest.approx(float(estimator.estimate(*calm).mean()))
    assert volatile_report.estimated_mae == pytest.approx(float(estimator.estimate(*volatile).mean()))
    assert open_report.estimated_mae == pytest.approx(calm_report.estimated_mae), "the open window is estimated too"
    assert calm_report.estimated_mae_upper == pytest.approx(estimator.upper * calm[1].mean())
    assert volatile_report.estimated_mae_upper == pytest.approx(estimator.upper * volatile[1].mean())
    assert calm_report.estimated_mae <= calm_report.estimated_mae_upper
    assert volatile_report.estimated_mae > volatile_report.estimated_mae_upper

    restarted = DriftEngine(EngineSettings(window_rows=100_000), data_dir=tmp_path)
    kept = {r.report_id: r.estimated_mae for r in restarted.list_reports(1)}
    assert kept == {r.report_id: r.estimated_mae for r in (calm_report, volatile_report)}


def test_a_window_without_an_estimator_has_no_estimate(profile):
    plain = {k: v for k, v in profile.items() if k != "error_estimator"}
    engine = DriftEngine(EngineSettings(window_rows=100_000))
    engine.register_reference(1, plain)
    _day(engine, 0, 0.2, seed=1)
    report = engine.flush(1)
    assert report.estimated_mae is None and report.estimated_mae_upper is None


def test_list_reports_returns_each_windows_estimate(profile, tmp_path):
    process = _start(tmp_path, tmp_path / "data")
    try:
        with DriftClient(process.address, timeout=30.0) as client:
            client.stub.RegisterReference(
                drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=json.dumps(profile))
            )
            rng = np.random.default_rng(3)
            requests, levels = [], {}
            for day, share in enumerate((0.2, 0.2, 0.6)):
                columns, predictions, _, _ = _rows(rng, 1, volatile_share=share)
                rows = slice(0, 300)  # fewer rows than the window's count: each day closes its window
                requests.append(_request(1, {k: v[rows] for k, v in columns.items()}, predictions[rows], day * DAY_MS))
                levels[day * DAY_MS] = predictions[rows].mean()
            client.stub.LogPredictions(iter(requests))
            reports = client.list_reports(model_version=1)
    finally:
        process.stop()
    assert len(reports) == 2, "two days closed; the third is open"
    upper = profile["error_estimator"]["upper"]
    for report in reports:
        assert report.HasField("estimated_mae") and 0 < report.estimated_mae
        level = levels[report.window_start_time.ToMilliseconds()]
        assert report.estimated_mae_upper == pytest.approx(upper * level)


def test_a_band_of_zero_still_judges_the_window(profile):
    """A holdout the model forecast without error calibrates a band of 0:
    every window with an estimated error is above it, and says by how much."""
    exact = {**profile, "error_estimator": {**profile["error_estimator"], "upper": 0.0}}
    engine = DriftEngine(EngineSettings(window_rows=100_000))
    engine.register_reference(1, exact)
    for index in range(2):
        _, predictions = _day(engine, index, 0.2, seed=index)
        report = engine.flush(1)
        assert report.estimated_mae_upper == 0.0 < report.estimated_mae
    (incident,) = engine.list_incidents()
    evidence = incident.evidence["estimated_error"]
    assert evidence["mean_forecast"] == pytest.approx(predictions.mean())
    assert evidence["relative_error"] == pytest.approx(report.estimated_mae / predictions.mean())
