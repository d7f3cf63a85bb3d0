"""The drift service through gRPC against a real process: client-streamed
logs scored in windows, one alert per episode, WatchAlerts replay and live,
concept drift from actuals, bad-input statuses, and state across a restart."""

from __future__ import annotations

import json
import queue
import threading

import grpc
import numpy as np
import pytest

from rxcast.clients import DriftClient
from rxcast.drift.v1 import drift_pb2
from rxcast.model.profile import build_reference_profile
from rxcast.model.residuals import forecast_residuals
from rxcast.suite.launcher import ServiceProcess

WINDOW = 400  # rows that close a window by count
DAY_ROWS = 300  # rows logged per day: fewer, so days close windows by time
REGIONS = np.array(["north", "south", "east"], dtype=object)
DAY_MS = 86_400_000


def _features(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    return {
        "demand_7d": rng.poisson(6.0, n).astype(float) + shift * 6,
        "unit_price": rng.lognormal(1.0, 0.3, n),
        "region": rng.choice(REGIONS, n, p=[0.5, 0.3, 0.2]),
    }


@pytest.fixture(scope="module")
def profile_json() -> str:
    rng = np.random.default_rng(41)
    features = _features(rng, 5000)
    predictions = features["demand_7d"] * 0.9 + 0.5
    # Holdout errors of forecasts of 10 units with noise of sd 2, as the trainer profiles them.
    errors = forecast_residuals(10.0 + rng.normal(0.0, 2.0, 2000), np.full(2000, 10.0))
    return json.dumps(build_reference_profile(features, ["region"], predictions, errors).to_dict())


def _start(tmp_path, data_dir) -> ServiceProcess:
    return (
        ServiceProcess(
            "drift",
            tmp_path,
            [
                "--data-dir",
                str(data_dir),
                "--window-rows",
                str(WINDOW),
                "--clean-windows",
                "2",
                "--access-log",
                "false",
            ],
        )
        .start()
        .wait_ready()
    )


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    process = _start(root, root / "data")
    yield process, root
    process.stop()


@pytest.fixture(scope="module")
def stub(service):
    client = DriftClient(service[0].address, timeout=30.0)
    yield client.stub
    client.close()


def _request(
    version: int,
    features: dict[str, np.ndarray],
    predictions: np.ndarray,
    start_ms: int,
    stores: list[str] | None = None,
) -> drift_pb2.LogPredictionsRequest:
    n = predictions.size
    columns = []
    for name, values in features.items():
        if values.dtype == object:
            columns.append(drift_pb2.FeatureValues(name=name, categorical=drift_pb2.StringList(values=values.tolist())))
        else:
            columns.append(drift_pb2.FeatureValues(name=name, numeric=drift_pb2.DoubleList(values=values.tolist())))
    stores = stores or [f"s{i % 20}" for i in range(n)]
    return drift_pb2.LogPredictionsRequest(
        model_version=version,
        keys=drift_pb2.EntityKeys(store_ids=stores, medication_ids=[f"m{i}" for i in range(n)]),
        event_times_unix_ms=[start_ms + i for i in range(n)],
        features=columns,
        predictions=predictions.tolist(),
        source="online",
    )


def _log_windows(
    stub, version: int, shifts: list[float], seed: int, first_day: int
) -> drift_pb2.LogPredictionsResponse:
    """One day per shift, sent as two batches per day on one stream."""
    rng = np.random.default_rng(seed)
    requests = []
    for day, shift in enumerate(shifts, first_day):
        features = _features(rng, DAY_ROWS, shift)
        predictions = features["demand_7d"] * 0.9 + 0.5
        half = DAY_ROWS // 2
        for part in (slice(0, half), slice(half, DAY_ROWS)):
            requests.append(
                _request(
                    version, {k: v[part] for k, v in features.items()}, predictions[part], day * DAY_MS + part.start
                )
            )
    return stub.LogPredictions(iter(requests))


def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code()


def test_register_and_get_reference(stub, profile_json):
    summary = stub.RegisterReference(drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=profile_json))
    assert summary.reference.rows == 5000
    assert list(summary.reference.numeric_features) == ["demand_7d", "unit_price"]
    assert list(summary.reference.categorical_features) == ["region"]
    assert summary.reference.has_predictions
    again = stub.RegisterReference(drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=profile_json))
    assert again == summary
    got = stub.GetReference(drift_pb2.GetReferenceRequest(model_version=1))
    assert got.reference == summary.reference


def test_reference_errors_have_clear_statuses(stub, profile_json):
    other = json.loads(profile_json)
    other["numeric"]["unit_price"]["mean"] += 1.0
    assert (
        _code(
            lambda: stub.RegisterReference(
                drift_pb2.RegisterReferenceRequest(model_version=1, profile_json=json.dumps(other))
            )
        )
        == grpc.StatusCode.ALREADY_EXISTS
    )
    assert (
        _code(
            lambda: stub.RegisterReference(
                drift_pb2.RegisterReferenceRequest(model_version=2, profile_json="{not json")
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        _code(
            lambda: stub.RegisterReference(
                drift_pb2.RegisterReferenceRequest(model_version=2, profile_json=json.dumps({"format": "x"}))
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        _code(lambda: stub.GetReference(drift_pb2.GetReferenceRequest(model_version=99))) == grpc.StatusCode.NOT_FOUND
    )
    assert (
        _code(lambda: stub.GetReference(drift_pb2.GetReferenceRequest(model_version=0)))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_windows_are_scored_and_one_alert_is_raised_per_episode(stub):
    watched: queue.Queue = queue.Queue()
    stream = stub.WatchAlerts(drift_pb2.WatchAlertsRequest(after_alert_id=-1), timeout=120)

    def read():
        try:
            for response in stream:
                watched.put(response.alert)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.CANCELLED

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    # Two quiet days, three drifted days, two clean days (the episode ends), one drifted day.
    response = _log_windows(stub, 1, [0, 0, 1, 1, 1, 0, 0, 1, 0], seed=42, first_day=20_000)
    assert (response.accepted_rows, response.rejected_rows) == (9 * DAY_ROWS, 0)

    reports = stub.ListReports(drift_pb2.ListReportsRequest(model_version=1, limit=20)).reports
    # The ninth day's window stays open: rows of a later day have not arrived.
    assert [r.window_id for r in reports] == [f"v1-w{i}" for i in range(8, 0, -1)]
    verdicts = [r.verdict for r in reversed(reports)]
    no, yes = drift_pb2.VERDICT_NO_DRIFT, drift_pb2.VERDICT_DRIFT
    assert verdicts == [no, no, yes, yes, yes, no, no, yes]
    drifted = next(r for r in reports if r.window_id == "v1-w3")
    demand = next(f for f in drifted.features if f.feature == "demand_7d")
    assert demand.verdict == yes and demand.reason.startswith("drift: ks")
    assert {s.name for s in demand.signals} >= {"ks", "psi", "js", "wasserstein", "mean_ratio", "null_rate_delta"}
    assert drifted.prediction.feature == "prediction" and drifted.prediction.verdict == yes
    assert drifted.current_rows == DAY_ROWS and drifted.reference_rows == 5000
    assert drifted.window_start_time.ToMilliseconds() == 20_002 * DAY_MS

    alerts = stub.ListAlerts(drift_pb2.ListAlertsRequest(model_version=1)).alerts
    by_kind = {}
    for alert in alerts:
        by_kind.setdefault(alert.kind, []).append(alert)
    data = by_kind[drift_pb2.ALERT_KIND_DATA_DRIFT]
    assert len(data) == 2, "one alert per episode: days 3-5, then day 8 after two clean days"
    assert data[1].report_id == drifted.report_id and list(data[1].features) == ["demand_7d"]
    assert data[0].episode_id != data[1].episode_id
    assert len(by_kind[drift_pb2.ALERT_KIND_PREDICTION_DRIFT]) == 2
    assert drift_pb2.ALERT_KIND_DATA_QUALITY not in by_kind

    live = [watched.get(timeout=30) for _ in alerts]
    assert [a.alert_id for a in live] == sorted(a.alert_id for a in alerts)
    stream.cancel()

    first_id = min(a.alert_id for a in alerts)
    replay = stub.WatchAlerts(drift_pb2.WatchAlertsRequest(after_alert_id=first_id), timeout=60)
    replayed = [next(replay).alert.alert_id for _ in range(len(alerts) - 1)]
    replay.cancel()
    assert replayed == sorted(a.alert_id for a in alerts)[1:]


def test_score_window_and_score_data(stub):
    window = stub.ScoreWindow(drift_pb2.ScoreWindowRequest(model_version=1)).report
    assert window.window_id == "v1-w9" and window.current_rows == DAY_ROWS
    closed = stub.ScoreWindow(drift_pb2.ScoreWindowRequest(model_version=1, window_id="v1-w3")).report
    assert closed.verdict == drift_pb2.VERDICT_DRIFT
    assert (
        _code(lambda: stub.ScoreWindow(drift_pb2.ScoreWindowRequest(model_version=1, window_id="v1-w999")))
        == grpc.StatusCode.NOT_FOUND
    )

    rng = np.random.default_rng(43)
    features = _features(rng, 1000)
    features["unit_price"] = features["unit_price"] * 10  # a unit change
    features["region"][:200] = "coastal"  # a new region
    request = _request(1, features, features["demand_7d"] * 0.9 + 0.5, 0)
    report = stub.ScoreData(
        drift_pb2.ScoreDataRequest(model_version=1, features=request.features, predictions=request.predictions)
    ).report
    results = {f.feature: f for f in report.features}
    assert results["unit_price"].verdict == drift_pb2.VERDICT_DRIFT and "scale change" in results["unit_price"].reason
    assert results["region"].verdict == drift_pb2.VERDICT_DRIFT and "unseen_mass" in results["region"].reason
    assert results["demand_7d"].verdict == drift_pb2.VERDICT_NO_DRIFT
    assert report.window_id == "" and report.verdict == drift_pb2.VERDICT_DRIFT


@pytest.mark.parametrize(
    "request_, code",
    [
        (drift_pb2.ScoreDataRequest(model_version=77, predictions=[1.0]), grpc.StatusCode.NOT_FOUND),
        (drift_pb2.ScoreDataRequest(model_version=1), grpc.StatusCode.INVALID_ARGUMENT),
        (
            drift_pb2.ScoreDataRequest(
                model_version=1,
                features=[drift_pb2.FeatureValues(name="nope", numeric=drift_pb2.DoubleList(values=[1.0]))],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            drift_pb2.ScoreDataRequest(
                model_version=1,
                features=[drift_pb2.FeatureValues(name="region", numeric=drift_pb2.DoubleList(values=[1.0]))],
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            drift_pb2.ScoreDataRequest(model_version=1, features=[drift_pb2.FeatureValues(name="unit_price")]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
def test_bad_score_requests_have_clear_statuses(stub, request_, code):
    assert _code(lambda: stub.ScoreData(request_)) == code


def test_empty_and_null_data_get_a_clear_result_not_an_error(stub):
    request = drift_pb2.ScoreDataRequest(
        model_version=1,
        features=[
            drift_pb2.FeatureValues(name="unit_price", numeric=drift_pb2.DoubleList(values=[float("nan")] * 100)),
            drift_pb2.FeatureValues(name="demand_7d", numeric=drift_pb2.DoubleList(values=[float("inf")] * 100)),
        ],
    )
    report = stub.ScoreData(request).report
    results = {f.feature: f for f in report.features}
    assert results["unit_price"].verdict == drift_pb2.VERDICT_DATA_QUALITY
    assert results["demand_7d"].verdict == drift_pb2.VERDICT_DATA_QUALITY
    assert results["region"].verdict == drift_pb2.VERDICT_INSUFFICIENT_DATA
    assert "absent from the data" in results["region"].reason
    assert all(np.isfinite(s.value) for f in report.features for s in f.signals)


def test_unusable_prediction_logs_are_rejected_and_counted(stub):
    rng = np.random.default_rng(44)
    good = _features(rng, 10)
    unknown_feature = _request(1, {**good, "extra": np.zeros(10)}, np.zeros(10), 0)
    short = _request(1, good, np.zeros(10), 0)
    del short.event_times_unix_ms[5:]
    unknown_version = _request(99, good, np.zeros(10), 0)
    wrong_kind = _request(1, {**good, "region": np.zeros(10)}, np.zeros(10), 0)
    response = stub.LogPredictions(iter([unknown_feature, short, unknown_version, wrong_kind]))
    assert (response.accepted_rows, response.rejected_rows) == (0, 40)
    assert (
        _code(lambda: stub.LogPredictions(iter([_request(0, good, np.zeros(10), 0)])))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_growing_errors_raise_one_concept_drift_alert(stub):
    rng = np.random.default_rng(45)
    n = 6000
    features = _features(rng, n)
    predictions = np.full(n, 10.0)
    stores = [f"c{i}" for i in range(n)]
    start = 30_000 * DAY_MS
    response = stub.LogPredictions(iter([_request(1, features, predictions, start, stores)]))
    assert response.accepted_rows == n
    # One day of 6000 rows: windows close by count, 6000 // WINDOW of them.
    windows = [r.window_id for r in stub.ListReports(drift_pb2.ListReportsRequest(model_version=1)).reports]
    assert windows[: n // WINDOW] == [f"v1-w{i}" for i in range(9 + n // WINDOW, 9, -1)]

    def actuals(rows: slice, scale: float) -> drift_pb2.LogActualsRequest:
        index = np.arange(n)[rows]
        return drift_pb2.LogActualsRequest(
            keys=drift_pb2.EntityKeys(store_ids=[stores[i] for i in index], medication_ids=[f"m{i}" for i in index]),
            event_times_unix_ms=[start + int(i) for i in index],
            actuals=(10.0 + rng.normal(0.0, 2.0 * scale, index.size)).tolist(),
        )

    calm = stub.LogActuals(iter([actuals(slice(0, 1000), 1.0)]))
    assert (calm.matched_rows, calm.unmatched_rows) == (1000, 0)
    before = {
        a.alert_id
        for a in stub.ListAlerts(drift_pb2.ListAlertsRequest()).alerts
        if a.kind == drift_pb2.ALERT_KIND_CONCEPT_DRIFT
    }
    assert before == set()
    stormy = stub.LogActuals(iter([actuals(slice(1000, 3500), 3.0), actuals(slice(3500, 6000), 3.0)]))
    assert stormy.matched_rows == 5000
    unmatched = drift_pb2.LogActualsRequest(
        keys=drift_pb2.EntityKeys(store_ids=["nobody"], medication_ids=["m0"]), event_times_unix_ms=[1], actuals=[1.0]
    )
    assert stub.LogActuals(iter([unmatched])).unmatched_rows == 1
    concept = [
        a for a in stub.ListAlerts(drift_pb2.ListAlertsRequest()).alerts if a.kind == drift_pb2.ALERT_KIND_CONCEPT_DRIFT
    ]
    assert len(concept) == 1
    assert concept[0].detector in ("adwin", "page_hinkley") and "samples after the detection" in concept[0].reason
    assert concept[0].data_time.ToMilliseconds() >= start + 1000
    bad = drift_pb2.LogActualsRequest(
        keys=drift_pb2.EntityKeys(store_ids=["a", "b"], medication_ids=["m"]), event_times_unix_ms=[1], actuals=[1.0]
    )
    assert _code(lambda: stub.LogActuals(iter([bad]))) == grpc.StatusCode.INVALID_ARGUMENT


def test_windows_are_kept_per_model_version_and_non_finite_values_are_counted(stub, profile_json):
    for version in (2, 3):
        stub.RegisterReference(drift_pb2.RegisterReferenceRequest(model_version=version, profile_json=profile_json))
    rng = np.random.default_rng(48)
    start = 50_000 * DAY_MS

    def logs(version: int, rows: int, offset_ms: int) -> drift_pb2.LogPredictionsRequest:
        features = _features(rng, rows)
        return _request(
            version,
            features,
            features["demand_7d"] * 0.9 + 0.5,
            start + offset_ms,
            [f"v{version}-{offset_ms}-{i}" for i in range(rows)],
        )

    # Infinite prices, no demand values at all and no usable forecasts, on the next day.
    broken = logs(2, 150, DAY_MS)
    for column in broken.features:
        if column.name == "unit_price":
            column.numeric.values[:] = [float("inf")] * 150
        elif column.name == "demand_7d":
            column.numeric.values[:] = [float("nan")] * 150
    broken.predictions[:] = [float("nan")] * 75 + [float("-inf")] * 75
    # Interleaved on one stream: each version fills its own window.
    response = stub.LogPredictions(iter([logs(2, 150, 0), logs(3, 150, 0), logs(3, 250, 1000), broken]))
    assert (response.accepted_rows, response.rejected_rows) == (700, 0)

    v2 = stub.ListReports(drift_pb2.ListReportsRequest(model_version=2)).reports
    v3 = stub.ListReports(drift_pb2.ListReportsRequest(model_version=3)).reports
    # v2's first day closed by time (150 rows) when its next day arrived; v3's by count (400 rows).
    assert [(r.window_id, r.current_rows) for r in v2] == [("v2-w1", 150)]
    assert [(r.window_id, r.current_rows) for r in v3] == [("v3-w1", WINDOW)]
    assert v2[0].verdict == drift_pb2.VERDICT_NO_DRIFT

    report = stub.ScoreWindow(drift_pb2.ScoreWindowRequest(model_version=2)).report
    results = {f.feature: f for f in [*report.features, report.prediction]}
    assert report.current_rows == 150 and report.window_start_time.ToMilliseconds() == start + DAY_MS
    assert results["unit_price"].verdict == drift_pb2.VERDICT_DATA_QUALITY
    assert results["demand_7d"].verdict == drift_pb2.VERDICT_DATA_QUALITY
    assert results["prediction"].verdict == drift_pb2.VERDICT_DATA_QUALITY
    assert results["region"].verdict == drift_pb2.VERDICT_NO_DRIFT
    assert all(np.isfinite(s.value) for f in results.values() for s in f.signals)

    # Actuals that are not numbers match their forecasts but feed no detector.
    first_day = logs(2, 150, 0)
    actuals = drift_pb2.LogActualsRequest(
        keys=first_day.keys,
        event_times_unix_ms=first_day.event_times_unix_ms,
        actuals=[float("nan")] * 100 + [float("inf")] * 50,
    )
    assert stub.LogActuals(iter([actuals])).matched_rows == 150


def test_state_survives_a_restart(service, stub, profile_json, tmp_path):
    process, root = service
    # A drifted day opens an episode (and raises its alert) before the restart.
    _log_windows(stub, 1, [1, 1], seed=46, first_day=40_000)
    alerts_before = stub.ListAlerts(drift_pb2.ListAlertsRequest()).alerts
    assert alerts_before[0].kind in (drift_pb2.ALERT_KIND_DATA_DRIFT, drift_pb2.ALERT_KIND_PREDICTION_DRIFT)
    reports_before = stub.ListReports(drift_pb2.ListReportsRequest(limit=100)).reports
    open_before = stub.ScoreWindow(drift_pb2.ScoreWindowRequest(model_version=1)).report
    assert process.stop() == 0

    restarted = _start(tmp_path, root / "data")
    try:
        client = DriftClient(restarted.address, timeout=30.0)
        again = client.stub
        assert again.GetReference(drift_pb2.GetReferenceRequest(model_version=1)).reference.rows == 5000
        assert again.ListAlerts(drift_pb2.ListAlertsRequest()).alerts == alerts_before
        assert [r.report_id for r in again.ListReports(drift_pb2.ListReportsRequest(limit=100)).reports] == [
            r.report_id for r in reports_before
        ]
        reopened = again.ScoreWindow(drift_pb2.ScoreWindowRequest(model_version=1)).report
        assert (reopened.window_id, reopened.current_rows) == (open_before.window_id, open_before.current_rows)
        # The episode is still open: more drifted days raise nothing new.
        _log_windows(again, 1, [1, 0], seed=47, first_day=40_002)
        after = again.ListAlerts(drift_pb2.ListAlertsRequest()).alerts
        new = [a for a in after if a.alert_id > max(a.alert_id for a in alerts_before)]
        assert [a.kind for a in new if a.kind == drift_pb2.ALERT_KIND_DATA_DRIFT] == []
        replay = again.WatchAlerts(drift_pb2.WatchAlertsRequest(after_alert_id=0), timeout=30)
        assert next(replay).alert == min(alerts_before, key=lambda a: a.alert_id)
        replay.cancel()
        client.close()
    finally:
        restarted.stop()
