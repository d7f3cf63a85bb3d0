"""Run rxcast services as child processes on loopback ports.

Each service starts with `python -m rxcast.<service> --port 0 --ready-file F`;
the launcher waits for F, so ports are chosen by the kernel and never race.
The tests and the demo start services through this one piece of code, with
the same commands docker-compose.yml runs.

The services trust what the launching process trusts: each gets the trust
directory (or the plaintext switch) of the launcher's own clients
(RXCAST_CLIENT_*), unless its own RXCAST_<SERVICE>_* variables say otherwise.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rxcast.runtime.config import env_prefix
from rxcast.runtime.healthcheck import check, check_http
from rxcast.runtime.tls import ClientSettings

#: How long a stopping service may take before it is killed: the runtime's
#: default grace for in-flight calls (10 s, `--grace-seconds`) plus time for
#: the app to stop its background work.
STOP_TIMEOUT = 15.0


class ServiceFailed(RuntimeError):
    """A service process exited or did not become ready."""


class StartCancelled(ServiceFailed):
    """Starting was cancelled (the caller was asked to stop) before the service was ready."""


#: Every ServiceProcess started in this process, until its child is reaped.
_started: list[ServiceProcess] = []
_started_lock = threading.Lock()


def live_processes() -> list[ServiceProcess]:
    """The service processes started here whose child process has not been reaped.

    Safe to call from a signal handler: it takes no lock that the main thread
    may hold, and only reads each child's known exit status.
    """
    return [p for p in list(_started) if p.process is not None and p.process.returncode is None]


def _forget_reaped() -> None:
    with _started_lock:
        _started[:] = [p for p in _started if p.process is not None and p.process.returncode is None]


#: Services that serve HTTP rather than gRPC.
HTTP_SERVICES = frozenset({"dashboard"})


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

    def environment(self) -> dict[str, str]:
        """The child's environment: the launcher's credentials, os.environ, then `env`."""
        client = ClientSettings()
        prefix = env_prefix(self.service)
        trust = {f"{prefix}TLS_DIR": client.tls_dir, f"{prefix}PLAINTEXT": str(client.plaintext).lower()}
        return {**trust, **os.environ, **self.env}

    def start(self) -> ServiceProcess:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.ready_path.unlink(missing_ok=True)
        self._terminating = False
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.environment()
            )
        _forget_reaped()
        with _started_lock:
            _started.append(self)
        return self

    def wait_ready(self, timeout: float = 60.0, cancel: threading.Event | None = None) -> ServiceProcess:
        """Block until the service has written its ready file.

        Raises StartCancelled as soon as `cancel` is set, ServiceFailed if the
        process exits or `timeout` passes first.
        """
        deadline = time.monotonic() + timeout
        while not self.ready_path.exists():
            if cancel is not None and cancel.is_set():
                raise StartCancelled(f"{self.name}: start cancelled")
            if self.process is None or self.process.poll() is not None:
                raise ServiceFailed(f"{self.name} exited before it was ready; log tail:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServiceFailed(f"{self.name} not ready after {timeout:.0f}s; log tail:\n{self.log_tail()}")
            time.sleep(0.05)
        ready = json.loads(self.ready_path.read_text())
        self.port, self.metrics_port = ready["port"], ready["metrics_port"]
        return self

    def health(self, service: str = "", timeout: float = 2.0) -> str:
        """The grpc.health.v1 status name the service reports for `service`
        (the dashboard, an HTTP server, reports its /healthz status)."""
        if self.service in HTTP_SERVICES:
            return check_http(self.address, timeout)
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

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code
        (negative: the signal that ended it, -9 if it had to be killed)."""
        if self.process is None:
            return None
        self.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._exited()
        return code

    def kill(self, wait: bool = True) -> None:
        """SIGKILL; with `wait=False` only send it (as a signal handler may)."""
        if self.process is not None and self.process.returncode is None:
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
            if wait:
                self.process.wait()
                self._exited()

    def _exited(self) -> None:
        # The ready file names a port nothing listens on any more.
        self.ready_path.unlink(missing_ok=True)
        _forget_reaped()


def start_all(
    processes: Sequence[ServiceProcess], timeout: float = 120.0, cancel: threading.Event | None = None
) -> list[ServiceProcess]:
    """Start processes together and wait for all; stops them all if one fails
    or `cancel` is set first (StartCancelled)."""
    started = []
    try:
        for p in processes:
            started.append(p.start())
        for p in started:
            p.wait_ready(timeout, cancel)
    except BaseException:
        stop_all(started)
        raise
    return started


def stop_all(processes: Sequence[ServiceProcess], timeout: float = STOP_TIMEOUT) -> dict[str, int | None]:
    """Stop processes in parallel: SIGTERM to all, wait for all within one
    `timeout`, SIGKILL whichever is still running then. Returns each one's
    exit code by name (0 when it shut down gracefully)."""
    for p in processes:
        p.terminate()
    deadline = time.monotonic() + timeout
    return {p.name: p.stop(max(0.0, deadline - time.monotonic())) for p in processes}
