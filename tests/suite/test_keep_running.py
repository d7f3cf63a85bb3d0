"""`python -m rxcast.suite --keep-running` as a real process: SIGTERM stops it as
Ctrl-C does, every service stops gracefully, nothing is left behind, and the
suite ends by the signal it got."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rxcast.runtime.healthcheck import check, check_http
from rxcast.suite.launcher import HTTP_SERVICES, STOP_TIMEOUT
from rxcast.suite.topology import NODES
from tests.conftest import REPO

START_TIMEOUT = 120.0
#: A graceful stop takes a few seconds (on a busy 2-core machine); the suite
#: kills a service that has not stopped after STOP_TIMEOUT, so it must be gone
#: by then, plus a margin for the suite's own exit. That every service stopped
#: within its grace, not by SIGKILL, is asserted from their exit codes.
EXIT_BOUND = STOP_TIMEOUT + 5.0


class SuiteProcess:
    """`python -m rxcast.suite --keep-running ...` in its own session, its output in files."""

    def __init__(self, tmp_path: Path, *args: str):
        self.out_path, self.err_path = tmp_path / "suite.out", tmp_path / "suite.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rxcast.suite", "--keep-running", "--data-dir", str(tmp_path / "data"), *args],
                cwd=REPO,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its services share its process group: the cleanup below
            )
        self.run_dir = Path(self._wait_for(r"logs in (\S+)\) \.\.\.", 30.0).group(1))

    def output(self) -> str:
        return self.out_path.read_text()

    def errors(self) -> str:
        return self.err_path.read_text()

    def _wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.output(), re.MULTILINE)) is None:
            if self.process.poll() is not None:
                pytest.fail(f"the suite exited ({self.process.returncode}):\n{self.output()}\n{self.errors()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} after {timeout:.0f}s:\n{self.output()}\n{self.errors()}")
            time.sleep(0.1)
        return found

    def wait_serving(self) -> None:
        self._wait_for(r"^serving \(pid \d+\)", START_TIMEOUT)

    def ready_files(self) -> dict[str, dict]:
        return {
            p.name.removesuffix(".ready.json"): json.loads(p.read_text()) for p in self.run_dir.glob("*.ready.json")
        }

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop_by(self, signum: int) -> tuple[int, float]:
        """Send `signum`; the exit status and the seconds the suite took to exit."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        try:
            code = self.process.wait(EXIT_BOUND + 30.0)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - sent

    def cleanup(self) -> None:
        """Kill whatever of the suite's session is left, if a test failed half-way."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


@pytest.fixture
def launch(tmp_path: Path):
    started: list[SuiteProcess] = []

    def launch_suite(*args: str) -> SuiteProcess:
        started.append(SuiteProcess(tmp_path, *args))
        return started[-1]

    yield launch_suite
    for suite in started:
        suite.cleanup()


def _left_running(run_dir: Path, pids: list[psutil.Process]) -> list[str]:
    """Processes still running: any of `pids`, or any process whose command names `run_dir`."""
    left = [f"{p.pid} {p.name()}" for p in pids if p.is_running()]
    for process in psutil.process_iter(["pid", "cmdline"]):
        if any(str(run_dir) in part for part in process.info["cmdline"] or ()):
            left.append(f"{process.info['pid']} {' '.join(process.info['cmdline'])}")
    return left


def _assert_stopped_cleanly(suite: SuiteProcess, signum: int, code: int | None, took: float, children) -> None:
    assert code == -signum, f"exit status {code} after {signal.Signals(signum).name}\n{suite.errors()}"
    print(f"{signal.Signals(signum).name}: the suite exited after {took:.1f}s")
    assert took < EXIT_BOUND, f"took {took:.1f}s to exit (bound {EXIT_BOUND:.0f}s)\n{suite.output()}"
    assert _left_running(suite.run_dir, children) == []
    assert "did not stop cleanly" not in suite.errors(), suite.errors()
    assert "Traceback" not in suite.errors(), suite.errors()
    # Its scratch run directory (logs, ready files) went with it.
    assert not suite.run_dir.exists()


def test_sigterm_stops_every_service(launch):
    suite = launch()
    suite.wait_serving()

    ready = suite.ready_files()
    assert sorted(ready) == sorted(n.name for n in NODES)
    for name, info in ready.items():
        status = check_http if name in HTTP_SERVICES else check
        assert status(f"127.0.0.1:{info['port']}", timeout=5.0) == "SERVING", name
    children = suite.children()
    assert sorted(p.pid for p in children) == sorted(info["pid"] for info in ready.values())

    code, took = suite.stop_by(signal.SIGTERM)

    _assert_stopped_cleanly(suite, signal.SIGTERM, code, took, children)
    assert "SIGTERM: stopping the suite" in suite.output()


def test_sigint_stops_it_the_same_way(launch):
    suite = launch("--only", "feature")
    suite.wait_serving()
    (info,) = suite.ready_files().values()
    assert check(f"127.0.0.1:{info['port']}", timeout=5.0) == "SERVING"
    children = suite.children()
    assert [p.pid for p in children] == [info["pid"]]

    code, took = suite.stop_by(signal.SIGINT)

    _assert_stopped_cleanly(suite, signal.SIGINT, code, took, children)


def test_sigterm_while_starting_stops_what_was_started(launch):
    suite = launch("--only", "drift")  # feature, then trainer, then drift
    deadline = time.monotonic() + START_TIMEOUT
    while "feature" not in suite.ready_files():
        assert time.monotonic() < deadline and suite.process.poll() is None, suite.output() + suite.errors()
        time.sleep(0.05)
    children = suite.children()
    assert children, "no service started"

    code, took = suite.stop_by(signal.SIGTERM)

    _assert_stopped_cleanly(suite, signal.SIGTERM, code, took, children)
    assert "serving" not in suite.output()
