"""One play of the short plan for the package: the closed-loop tests read its
ledger, the incident tests its drift service's incident book, the dashboard
tests drive a browser against the suite it leaves running. The suite stops
when the package's tests are done."""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from rxcast.demo.ledger import Ledger
from rxcast.demo.plan import short_plan
from rxcast.demo.run import run_demo
from rxcast.suite.topology import Suite

os.environ.setdefault("FEAST_USAGE", "False")


@dataclass(frozen=True)
class PlayedDemo:
    ledger: Ledger
    suite: Suite
    work_dir: Path
    lines: list[str]


@pytest.fixture(scope="package")
def played(tmp_path_factory) -> PlayedDemo:
    work_dir = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    handed: queue.Queue = queue.Queue()
    release = threading.Event()

    def after_play(suite: Suite, ledger: Ledger) -> None:
        handed.put((suite, ledger))
        release.wait(timeout=3600)

    def play() -> None:
        try:
            run_demo(short_plan(), work_dir, say=lines.append, after_play=after_play)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting fixture
            handed.put(exc)

    thread = threading.Thread(target=play, name="short-plan", daemon=True)
    thread.start()
    outcome = handed.get(timeout=1800)
    if isinstance(outcome, BaseException):
        raise outcome
    suite, ledger = outcome
    yield PlayedDemo(ledger, suite, work_dir, lines)
    release.set()
    thread.join(timeout=120)
