"""The access log's lines, formatted without structlog's processor chain, are
the lines structlog writes for the same call: same keys in the same order,
same values, quoting intact, at the configured level."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
import structlog

from rxcast.runtime import context
from rxcast.runtime.logs import access_line, configure_logging, get_logger


@pytest.fixture
def lines(capfd):
    def read() -> list[dict]:
        return [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]

    yield read
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


@pytest.mark.parametrize("rid", ['req-"quoted"\\ü', None])
def test_an_access_line_is_what_structlog_writes(lines, rid):
    configure_logging("probe", "info")
    tokens = context.enter(rid, None) if rid is not None else None
    try:
        method, caller = '/rxcast.Probe/Get"It"', 'who "knows"'
        access_line(method, "OK", 0.125, caller, quiet=False)
        get_logger("rxcast.rpc").info("rpc", method=method, code="OK", ms=0.125, caller=caller)
        access_line(method, "NOT_FOUND", 3.0, None, quiet=False)
    finally:
        if tokens is not None:
            context.leave(tokens)
    fast, reference, missing = lines()
    assert list(fast) == list(reference)
    assert {k: v for k, v in fast.items() if k != "timestamp"} == {
        k: v for k, v in reference.items() if k != "timestamp"
    }
    assert fast["request_id" if rid else "service"] == (rid or "probe")
    stamp = dt.datetime.fromisoformat(fast["timestamp"])
    assert fast["timestamp"].endswith("Z") and abs(dt.datetime.now(tz=dt.UTC) - stamp) < dt.timedelta(seconds=60)
    assert (missing["code"], missing["ms"], missing["caller"]) == ("NOT_FOUND", 3.0, None)


def test_quiet_calls_are_written_at_debug_only(lines):
    configure_logging("probe", "info")
    access_line("/grpc.health.v1.Health/Check", "OK", 0.1, None, quiet=True)
    assert lines() == []
    configure_logging("probe", "debug")
    access_line("/grpc.health.v1.Health/Check", "OK", 0.1, None, quiet=True)
    (line,) = lines()
    assert line["level"] == "debug" and line["method"] == "/grpc.health.v1.Health/Check"
    configure_logging("probe", "warning")
    access_line("/rxcast.Probe/Get", "OK", 0.1, None, quiet=False)
    assert lines() == []
