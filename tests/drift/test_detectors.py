"""Concept-drift detectors: scale-free input, calibrated quiet under the null,
and detection of growing errors by both detectors."""

from __future__ import annotations

import numpy as np
import pytest
from river import drift as river_drift
from scipy import stats as scipy_stats

from rxcast.drift import synthetic
from rxcast.drift.calibrate import false_alarms_per_10k
from rxcast.drift.detectors import (
    ADWIN,
    PAGE_HINKLEY,
    TARGET_FALSE_ALARMS_PER_10K,
    DetectorSettings,
    ErrorStreamMonitor,
    LossTransform,
)
from rxcast.runtime.errors import InvalidArgument


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: rng.normal(0, 1, n),
        lambda rng, n: 1000.0 * rng.standard_t(3, n),
        lambda rng, n: rng.poisson(3.0, n) - 3.0,  # integer errors: many ties
        lambda rng, n: (rng.random(n) < 0.1).astype(float),  # 0/1 misclassification
    ],
)
def test_the_transform_is_uniform_under_the_null_whatever_the_errors(draw):
    # Uniform up to the reference's own sampling error, O(1 / sqrt(reference size)).
    rng = np.random.default_rng(31)
    transform = LossTransform(np.abs(draw(rng, 200_000)), seed=1)
    u = transform(np.abs(draw(rng, 20_000)))
    assert scipy_stats.kstest(u, "uniform").pvalue > 0.001


def test_detections_do_not_depend_on_the_error_scale():
    rng = np.random.default_rng(32)
    reference = rng.normal(size=3000)
    stream = np.concatenate([rng.normal(size=3000), rng.normal(0, 2.0, 3000)])
    small = ErrorStreamMonitor(reference_errors=reference, seed=7).update(np.abs(stream))
    large = ErrorStreamMonitor(reference_errors=reference * 1e4, seed=7).update(np.abs(stream * 1e4))
    assert [(d.detector, d.sample) for d in small] == [(d.detector, d.sample) for d in large]
    assert small


def test_the_default_settings_meet_the_target_false_alarm_rate():
    # A shorter run than the calibration's; it must stay within the target.
    rates = false_alarms_per_10k(DetectorSettings(), 300_000, seed=3)
    assert rates[ADWIN] <= TARGET_FALSE_ALARMS_PER_10K
    assert rates[PAGE_HINKLEY] <= TARGET_FALSE_ALARMS_PER_10K


def test_a_stream_like_the_holdout_raises_no_alarm():
    rng = np.random.default_rng(33)
    monitor = ErrorStreamMonitor(reference_errors=rng.gamma(2.0, 5.0, 4000))
    assert monitor.update(rng.gamma(2.0, 5.0, 30_000)) == []
    assert monitor.samples == 30_000


@pytest.mark.parametrize("change", ["scale", "bias"])
def test_growing_errors_are_detected_by_both_detectors(change):
    rng = np.random.default_rng(34)
    monitor = ErrorStreamMonitor(reference_errors=rng.normal(size=4000))
    before = monitor.update(np.abs(rng.normal(size=5000)))
    after_errors = rng.normal(0, 1.5, 5000) if change == "scale" else rng.normal(1.0, 1.0, 5000)
    after = monitor.update(np.abs(after_errors))
    assert before == []
    first = {}
    for detection in after:
        first.setdefault(detection.detector, detection)
    assert set(first) == {ADWIN, PAGE_HINKLEY}
    assert all(d.sample - 5000 < 2000 for d in first.values())
    assert all(d.level_after > d.level_before for d in first.values())
    assert "samples after the detection" in first[ADWIN].describe()


def test_a_stream_larger_than_the_holdout_from_its_first_sample_is_detected():
    # A version refitted every day serves only after the world changed: its
    # stream holds no change point, only errors above the holdout's.
    rng = np.random.default_rng(39)
    reference = rng.normal(size=4000)
    shocked = rng.random(3000) < 0.15
    stream = np.abs(rng.normal(size=3000)) * np.where(shocked, 3.0, 1.0)
    detections = ErrorStreamMonitor(reference_errors=reference, seed=2).update(stream)
    assert [d.detector for d in detections][:1] == [PAGE_HINKLEY]
    assert detections[0].sample < 2000
    assert detections[0].level_before == pytest.approx(0.5, abs=0.02)
    assert detections[0].level_after >= 0.53  # the floor: null level + min_rise
    # The same losses in a stream like the holdout's raise nothing.
    assert ErrorStreamMonitor(reference_errors=reference, seed=2).update(np.abs(rng.normal(size=3000))) == []


def test_shrinking_errors_are_not_an_alarm():
    rng = np.random.default_rng(35)
    monitor = ErrorStreamMonitor(reference_errors=rng.normal(size=4000))
    monitor.update(np.abs(rng.normal(size=3000)))
    assert monitor.update(np.abs(rng.normal(0, 0.3, 5000))) == []
    assert monitor.level_drops >= 1


def test_without_reference_errors_the_first_losses_are_the_reference():
    rng = np.random.default_rng(36)
    monitor = ErrorStreamMonitor(DetectorSettings(warmup=400))
    assert monitor.warming_up
    assert monitor.update(np.abs(rng.normal(size=300))) == []
    assert monitor.update(np.abs(rng.normal(size=300))) == [] and not monitor.warming_up
    assert monitor.samples == 200  # the 200 beyond the warm-up were monitored
    detections = monitor.update(np.abs(rng.normal(0, 2.0, 3000)))
    assert {d.detector for d in detections} == {ADWIN, PAGE_HINKLEY}


def test_non_finite_losses_are_skipped():
    monitor = ErrorStreamMonitor(reference_errors=np.arange(100.0))
    monitor.update(np.array([1.0, np.nan, np.inf, 2.0]))
    assert monitor.samples == 2
    assert set(monitor.state()) >= {"adwin_width", "page_hinkley_level", "samples"}


@pytest.mark.parametrize("bad", [{"adwin_delta": 0}, {"ph_threshold": 0}, {"warmup": 1}, {"ph_delta": -1}])
def test_bad_settings_are_rejected(bad):
    with pytest.raises(InvalidArgument, match="detectors"):
        DetectorSettings(**bad)


def test_page_hinkley_alarms_where_rivers_does():
    from river import drift as river_drift

    from rxcast.drift.detectors import PageHinkley

    rng = np.random.default_rng(37)
    stream = np.concatenate([rng.random(3000), rng.random(3000) ** 0.6, rng.random(2000)]).tolist()
    ours, theirs = [], []
    mine = PageHinkley(min_instances=100, delta=0.02, threshold=10.0)
    reference = river_drift.PageHinkley(min_instances=100, delta=0.02, threshold=10.0, alpha=1.0, mode="up")
    for i, x in enumerate(stream):
        if mine.update(x):
            ours.append(i)
            mine = PageHinkley(min_instances=100, delta=0.02, threshold=10.0)
        reference.update(x)
        if reference.drift_detected:
            theirs.append(i)
    assert ours == theirs and len(ours) >= 1


def test_a_trivial_rise_in_a_huge_stream_is_below_the_floor():
    rng = np.random.default_rng(38)
    monitor = ErrorStreamMonitor(reference_errors=rng.normal(size=50_000))
    monitor.update(np.abs(rng.normal(size=20_000)))
    # Errors 2% larger: u's level rises by about 0.006, well below min_rise.
    assert monitor.update(np.abs(rng.normal(0, 1.02, 200_000))) == []
    assert monitor.state()["detections_below_floor"] >= 1


# ---- as fast as a plain ADWIN on 0/1 error streams (real river, seeded streams)

CHANGE = 10_000
#: A tie within one of ADWIN's clock ticks (it looks for a cut every 32 samples).
TIE_MARGIN = 32


def _sea_errors(rng, n, theta_model, theta_world):
    x, y = synthetic.sea(n, theta_world, rng)
    return ((x[:, 0] + x[:, 1] <= theta_model).astype(int) != y).astype(float)


def _hyperplane_errors(rng, n, weights, drift_from=None):
    x, y = synthetic.hyperplane(n, rng, weights=weights, drift_from=drift_from)
    return (((x * weights).sum(axis=1) >= weights.sum() / 2).astype(int) != y).astype(float)


def _drifting_streams(seed):
    """(reference errors, stream drifting at CHANGE) of the model of the first concept."""
    rng = np.random.default_rng(seed)
    weights = rng.random(10)
    hyperplane = _hyperplane_errors(rng, CHANGE + 10_000, weights, drift_from=CHANGE)
    return {
        "SEA 9 -> 7": (
            _sea_errors(rng, 2000, 9.0, 9.0),
            np.concatenate([_sea_errors(rng, CHANGE, 9.0, 9.0), _sea_errors(rng, 10_000, 9.0, 7.0)]),
        ),
        "SEA 7 -> 9.5": (
            _sea_errors(rng, 2000, 7.0, 7.0),
            np.concatenate([_sea_errors(rng, CHANGE, 7.0, 7.0), _sea_errors(rng, 10_000, 7.0, 9.5)]),
        ),
        "hyperplane": (_hyperplane_errors(rng, 2000, weights), hyperplane),
        "small rise 2% -> 6.5%": (
            (rng.random(2000) < 0.02).astype(float),
            np.concatenate([rng.random(CHANGE) < 0.02, rng.random(10_000) < 0.065]).astype(float),
        ),
    }


def _river_adwin_first(stream, after):
    adwin = river_drift.ADWIN()
    for i, loss in enumerate(stream.tolist(), start=1):
        adwin.update(loss)
        if adwin.drift_detected and i > after:
            return i
    return None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_error_streams_alarm_no_later_than_a_plain_adwin(seed):
    # SEA, rotating hyperplane and a small rise of the error rate (2% -> 6.5%).
    for name, (reference, stream) in _drifting_streams(500 + seed).items():
        theirs = _river_adwin_first(stream, CHANGE)
        detections = ErrorStreamMonitor(reference_errors=reference, seed=seed).update(stream)
        assert theirs is not None, name
        assert detections and detections[0].sample > CHANGE, (name, detections[:1])
        assert detections[0].sample <= theirs + TIE_MARGIN, (name, detections[0].sample, theirs)


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: _sea_errors(rng, n, 8.0, 8.0),
        lambda rng, n: (rng.random(n) < 0.02).astype(float),
        lambda rng, n: _hyperplane_errors(rng, n, np.random.default_rng(5).random(10)),
    ],
)
def test_no_alarm_on_a_long_error_stream_without_drift(draw):
    rng = np.random.default_rng(41)
    monitor = ErrorStreamMonitor(reference_errors=draw(rng, 2000), seed=4)
    assert monitor.update(draw(rng, 120_000)) == []
    assert monitor.samples == 120_000
