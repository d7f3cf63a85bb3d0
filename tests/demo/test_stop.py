"""`python -m rxcast.demo` stopped by SIGTERM while it plays: the suite it
started stops with it, nothing is left running, and the demo ends with 143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rxcast.suite.launcher import STOP_TIMEOUT
from tests.conftest import REPO


def _wait_for(path: Path, text: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no {text!r} (exit {process.poll()}):\n{path.read_text()}")
        time.sleep(0.2)


def test_sigterm_stops_the_demo_and_its_suite(tmp_path):
    out, err = tmp_path / "demo.out", tmp_path / "demo.err"
    work_dir, report = tmp_path / "work", tmp_path / "report"
    services: list[int] = []
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        demo = subprocess.Popen(
            [sys.executable, "-m", "rxcast.demo", "--plan", "short", "--work-dir", str(work_dir), "--out", str(report)],
            cwd=REPO,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        _wait_for(out, "seeding the feature store", demo, timeout=180.0)
        services += [json.loads(p.read_text())["pid"] for p in (work_dir / "logs").glob("*.ready.json")]
        assert len(services) >= 5, services
        demo.send_signal(signal.SIGTERM)
        code = demo.wait(STOP_TIMEOUT + 60.0)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        left = [pid for pid in services if _running(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert code == 128 + signal.SIGTERM, err.read_text()
    assert left == [], "services left running"
    assert "demo stopped by SIGTERM" in err.read_text()
    assert "Traceback" not in err.read_text(), err.read_text()
    assert not report.exists(), "no report from a stopped demo"


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
