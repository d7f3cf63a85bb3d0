"""The launcher's stop: SIGTERM, one shared grace, SIGKILL for stragglers, and
no stale ready files; and a start can be cancelled. Stand-in processes (no gRPC)
keep it fast."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from rxcast.suite.launcher import ServiceProcess, StartCancelled, live_processes, start_all, stop_all

#: Writes its ready file, then waits; ignores SIGTERM if asked to.
STAND_IN = """
import json, signal, sys, time
ready, ignore_term = sys.argv[1], sys.argv[2] == "ignore"
if ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if ready != "-":
    with open(ready + ".tmp", "w") as f:
        json.dump({"port": 1, "metrics_port": -1}, f)
    import os; os.replace(ready + ".tmp", ready)
while True:
    time.sleep(1)
"""


class StandIn(ServiceProcess):
    def __init__(self, run_dir: Path, name: str, ignore_term: bool = False, never_ready: bool = False):
        super().__init__("stand-in", run_dir, name=name)
        self.ignore_term, self.never_ready = ignore_term, never_ready

    def command(self) -> list[str]:
        ready = "-" if self.never_ready else str(self.ready_path)
        return [sys.executable, "-c", STAND_IN, ready, "ignore" if self.ignore_term else "obey"]


def test_stop_all_kills_only_the_stragglers_after_one_shared_grace(tmp_path: Path):
    processes = start_all([StandIn(tmp_path, "obeys"), StandIn(tmp_path, "ignores", ignore_term=True)], timeout=30)
    assert all(p.ready_path.exists() for p in processes)
    assert set(processes) <= set(live_processes())

    started = time.monotonic()
    codes = stop_all(processes, timeout=2.0)

    assert codes == {"obeys": -15, "ignores": -9}
    assert time.monotonic() - started < 10.0
    assert not any(p.ready_path.exists() for p in processes)
    assert not set(processes) & set(live_processes())


def test_start_is_cancelled_and_stops_what_it_started(tmp_path: Path):
    cancel = threading.Event()
    processes = [StandIn(tmp_path, "ready"), StandIn(tmp_path, "never-ready", never_ready=True)]
    threading.Timer(1.0, cancel.set).start()

    with pytest.raises(StartCancelled):
        start_all(processes, timeout=60, cancel=cancel)

    assert all(p.process is not None and p.process.returncode is not None for p in processes)
    assert not set(processes) & set(live_processes())
