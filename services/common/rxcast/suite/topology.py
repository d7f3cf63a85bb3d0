"""The rxcast suite: which processes run, how they are wired, in what order.

Services start in dependency order, each on a free loopback port, and learn
their dependencies' addresses from the processes started before them. The
demo, the tests and docker-compose.yml describe the same topology.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rxcast.runtime.tls import ClientSettings
from rxcast.suite.launcher import ServiceProcess, StartCancelled, start_all, stop_all

Started = Mapping[str, ServiceProcess]


@dataclass(frozen=True)
class Node:
    """One process of the suite."""

    name: str
    service: str
    #: Flags for the process, given the processes already started (by name).
    args: Callable[[Started, Path], list[str]] = lambda started, data_dir: []
    depends_on: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


def _predictor_dependencies(started: Started) -> list[str]:
    return [
        "--feature-address", started["feature"].address,
        "--trainer-address", started["trainer"].address,
        "--drift-address", started["drift"].address,
    ]  # fmt: skip


#: The trainer keeps each predictor's alias current on its own: the online
#: alias on every newly ingested business day (and on drift triggers, once
#: labelled rows from after the change exist), shipping a daily refresh unless
#: it scores worse than the version it replaces (margin 0); the batch alias
#: every 7 days, at the trainer's margin.
POLICIES = json.dumps(
    [
        {"alias": "online", "every_data_days": 1, "window_days": 90, "follow_triggers": True, "gate_margin": 0.0},
        {"alias": "batch", "every_data_days": 7, "window_days": 90, "follow_triggers": False},
    ]
)


def _dashboard_args(started: Started, data_dir: Path) -> list[str]:
    online, batch = started["predictor-online"], started["predictor-batch"]
    return [
        "--feature-address", started["feature"].address,
        "--trainer-address", started["trainer"].address,
        "--drift-address", started["drift"].address,
        "--online-address", online.address,
        "--batch-address", batch.address,
        "--feature-metrics-url", _metrics_url(started["feature"]),
        "--trainer-metrics-url", _metrics_url(started["trainer"]),
        "--drift-metrics-url", _metrics_url(started["drift"]),
        "--online-metrics-url", _metrics_url(online),
        "--batch-metrics-url", _metrics_url(batch),
    ]  # fmt: skip


def _metrics_url(process) -> str:
    # /metrics speaks what the gRPC port speaks: HTTPS unless the suite is plaintext.
    host = process.address.rsplit(":", 1)[0]
    scheme = "http" if ClientSettings().plaintext else "https"
    return f"{scheme}://{host}:{process.metrics_port}/metrics"


NODES: tuple[Node, ...] = (
    Node("feature", "feature", lambda started, data_dir: ["--data-dir", str(Path(data_dir) / "feature")]),
    Node(
        "trainer",
        "trainer",
        lambda s, d: [
            "--feature-address",
            s["feature"].address,
            "--registry-dir",
            str(Path(d) / "trainer" / "registry"),
            "--job-dir",
            str(Path(d) / "trainer" / "jobs"),
            "--policies",
            POLICIES,
        ],
        ("feature",),
    ),
    Node(
        "drift",
        "drift",
        lambda started, data_dir: [
            "--data-dir",
            str(Path(data_dir) / "drift"),
            "--feature-address",
            started["feature"].address,
            "--trainer-address",
            started["trainer"].address,
            "--retrain-on-incident",
            "true",
        ],
        depends_on=("feature", "trainer"),
    ),
    Node(
        "predictor-online",
        "predictor",
        lambda s, d: ["--mode", "online", "--alias", "online", *_predictor_dependencies(s)],
        ("feature", "trainer", "drift"),
    ),
    Node(
        "predictor-batch",
        "predictor",
        lambda s, d: [
            "--mode",
            "batch",
            "--alias",
            "batch",
            *_predictor_dependencies(s),
            "--data-dir",
            str(Path(d) / "predictor-batch"),
        ],
        ("feature", "trainer", "drift"),
    ),
    # The dashboard reads every service and is read by people only.
    Node(
        "dashboard",
        "dashboard",
        _dashboard_args,
        ("feature", "trainer", "drift", "predictor-online", "predictor-batch"),
    ),
)


def select(names: Sequence[str], nodes: Sequence[Node] = NODES) -> tuple[Node, ...]:
    """The nodes named and every node they depend on, in `nodes`' order."""
    by_name = {n.name: n for n in nodes}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(f"unknown process(es) {unknown}; the suite has {list(by_name)}")
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(by_name[name].depends_on)
    return tuple(n for n in nodes if n.name in wanted)


class Suite:
    """The running processes of a suite, by name."""

    def __init__(self, processes: Sequence[ServiceProcess]):
        self.processes = {p.name: p for p in processes}

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.processes[name]

    def stop(self) -> dict[str, int | None]:
        """Stop every process gracefully (SIGKILL after the grace); their exit codes by name."""
        return stop_all(list(self.processes.values())[::-1])


def start_suite(
    run_dir: Path,
    data_dir: Path,
    nodes: Sequence[Node] = NODES,
    extra_args: Mapping[str, Sequence[str]] | None = None,
    timeout: float = 120.0,
    cancel: threading.Event | None = None,
) -> Suite:
    """Start `nodes` in dependency order (independent ones together).

    If anything fails, or `cancel` is set before the suite is up
    (StartCancelled), what was started is stopped before raising.
    """
    extra_args = extra_args or {}
    started: dict[str, ServiceProcess] = {}
    pending = list(nodes)
    try:
        while pending:
            if cancel is not None and cancel.is_set():
                raise StartCancelled("suite start cancelled")
            wave = [n for n in pending if all(d in started for d in n.depends_on)]
            if not wave:
                raise ValueError(f"unsatisfiable dependencies among {[n.name for n in pending]}")
            processes = [
                ServiceProcess(
                    n.service, run_dir, [*n.args(started, data_dir), *extra_args.get(n.name, ())], n.env, name=n.name
                )
                for n in wave
            ]
            for p in start_all(processes, timeout, cancel):
                started[p.name] = p
            pending = [n for n in pending if n.name not in started]
    except BaseException:
        stop_all(list(started.values()))
        raise
    return Suite(list(started.values()))
