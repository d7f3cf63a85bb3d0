"""The whole suite against junk and faults, as processes on loopback.

Every RPC each process lists through reflection gets random and malformed
requests (rxcast.suite.fuzz): no INTERNAL or UNKNOWN, and no request may cost
a process more than a bounded amount of memory. Then each process is
SIGKILLed under load and restarted on its port and data (rxcast.suite.faults):
callers see UNAVAILABLE, then OK; nothing acknowledged is lost. Last, SIGTERM
stops every process within its grace, whatever it was sent before.
"""

from __future__ import annotations

import pytest

from rxcast.suite import faults, fuzz
from rxcast.suite.topology import start_suite

CALLS_PER_METHOD = 15
#: Peak resident memory one request may add to a process (an ingest of
#: thousands of records with 70,000-character strings cost 1.7 GiB before).
PEAK_MIB = 256
GRACE_SECONDS = 5.0


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    grace = ["--grace-seconds", str(GRACE_SECONDS), "--access-log", "false"]
    extra = {name: grace for name in ("feature", "trainer", "drift", "predictor-online", "predictor-batch")}
    running = start_suite(root / "run", root / "data", extra_args=extra)
    yield running
    running.stop()


@pytest.mark.parametrize("name", ["feature", "trainer", "drift", "predictor-online", "predictor-batch"])
def test_fuzzed_rpcs_answer_deliberately_within_a_memory_bound(suite, name):
    process = suite[name]
    report = fuzz.fuzz_process(process.address, process.process.pid, CALLS_PER_METHOD, seed=15)
    assert report.calls > 0
    assert not report.findings, "\n".join(f"{f.method}: {f.code} {f.details}" for f in report.findings[:10])
    assert report.worst_peak_kib / 1024 < PEAK_MIB, f"{report.worst_method} cost {report.worst_peak_kib} KiB"
    assert process.process.poll() is None


def _survived(report: faults.FaultReport) -> None:
    assert report.recovered, f"{report.name}: no OK within the recovery time; calls {dict(report.calls)}"
    assert report.unexpected == 0, f"{report.name}: {dict(report.calls)}"
    assert report.calls["UNAVAILABLE"] > 0, f"{report.name}: the kill was not seen: {dict(report.calls)}"
    assert report.lost == 0, f"{report.name}: {report.lost} of {report.acknowledged} acknowledged lost"


def test_feature_killed_under_ingest_keeps_every_acknowledged_record(suite):
    suite.processes["feature"], report = faults.feature_probe(suite["feature"])
    assert report.acknowledged > 0
    _survived(report)


def test_drift_killed_under_logging_keeps_every_acknowledged_prediction(suite):
    suite.processes["drift"], report = faults.drift_probe(suite["drift"])
    assert report.acknowledged > 0
    _survived(report)


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("trainer", "/rxcast.trainer.v1.TrainerService/ListModelVersions"),
        ("predictor-online", "/rxcast.predictor.v1.PredictorService/GetModelStatus"),
    ],
)
def test_readers_see_unavailable_then_recover(suite, name, method):
    suite.processes[name], report = faults.read_probe(suite[name], method)
    _survived(report)


def test_sigterm_stops_every_process_within_its_grace(suite):
    for name, process in reversed(list(suite.processes.items())):
        code, seconds = fuzz.sigterm_seconds(process, timeout=GRACE_SECONDS + 10)
        assert code == 0, f"{name} exited {code}:\n{process.log_tail()}"
        assert seconds < GRACE_SECONDS + 8, f"{name} took {seconds:.1f}s"  # margin for a loaded machine
