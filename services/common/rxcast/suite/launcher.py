"""Run rxcast services as child processes on loopback ports.

Each service starts with `python -m rxcast.<service> --port 0 --ready-file F`;
the launcher waits for F, so ports are chosen by the kernel and never race.
The tests and the demo start services through this one piece of code, with
the same commands docker-compose.yml runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rxcast.runtime.healthcheck import check


class ServiceFailed(RuntimeError):
    """A service process exited or did not become ready."""


class ServiceProcess:
    """One service as a child process, with its log in `run_dir`."""

    def __init__(
        self,
        service: str,
        run_dir: Path,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ):
        self.service = service
        self.name = name or service
        self.run_dir = Path(run_dir)
        self.args = list(args)
        self.env = dict(env or {})
        self.log_path = self.run_dir / f"{self.name}.log"
        self.ready_path = self.run_dir / f"{self.name}.ready.json"
        self.process: subprocess.Popen | None = None
        self._terminating = False
        self.port = 0
        self.metrics_port = -1

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", f"rxcast.{self.service}",
            "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
            "--ready-file", str(self.ready_path), *self.args,
        ]  # fmt: skip

    def start(self) -> ServiceProcess:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.ready_path.unlink(missing_ok=True)
        self._terminating = False
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> ServiceProcess:
        """Block until the service has written its ready file."""
        deadline = time.monotonic() + timeout
        while not self.ready_path.exists():
            if self.process is None or self.process.poll() is not None:
                raise ServiceFailed(f"{self.name} exited before it was ready; log tail:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServiceFailed(f"{self.name} not ready after {timeout:.0f}s; log tail:\n{self.log_tail()}")
            time.sleep(0.05)
        ready = json.loads(self.ready_path.read_text())
        self.port, self.metrics_port = ready["port"], ready["metrics_port"]
        return self

    def health(self, service: str = "", timeout: float = 2.0) -> str:
        """The grpc.health.v1 status name the service reports for `service`."""
        return check(self.address, service, timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def terminate(self) -> None:
        """Ask the service to shut down gracefully (SIGTERM), without waiting."""
        if self.process is not None and self.process.poll() is None and not self._terminating:
            self._terminating = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.process is None:
            return None
        self.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_all(processes: Sequence[ServiceProcess], timeout: float = 120.0) -> list[ServiceProcess]:
    """Start processes together and wait for all; stops them all if one fails."""
    started = [p.start() for p in processes]
    try:
        for p in started:
            p.wait_ready(timeout)
    except BaseException:
        stop_all(started)
        raise
    return started


def stop_all(processes: Sequence[ServiceProcess]) -> None:
    """Stop processes in parallel: signal all, then wait for each."""
    for p in processes:
        p.terminate()
    for p in processes:
        p.stop()
