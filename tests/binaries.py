"""System binaries the tests and benchmarks run for real (redis-server,
prometheus-alertmanager), each on a free loopback port.

A port found free can be taken by another process before the binary binds
it, so a start that does not come up ready is tried again on a new port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

REDIS_SERVER = "redis-server"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
INSTALL_HINT = "run scripts/ensure-system-packages"


class BinaryError(RuntimeError):
    """A system binary is missing or did not come up."""


def free_port() -> int:
    """A loopback port free now, for a server that cannot be told to pick its own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_on_free_port(
    binary: str,
    arguments: Callable[[int], Sequence[str]],
    ready: Callable[[int], bool],
    *,
    attempts: int = 5,
    timeout: float = 20.0,
) -> tuple[subprocess.Popen, int]:
    """`binary` started with `arguments(port)` on a free port, once `ready(port)`."""
    path = shutil.which(binary)
    if path is None:
        raise BinaryError(f"{binary} is not installed: {INSTALL_HINT}")
    for _ in range(attempts):
        port = free_port()
        server = subprocess.Popen([path, *arguments(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and server.poll() is None:
            if ready(port):
                return server, port
            time.sleep(0.05)
        stop(server)
    raise BinaryError(f"could not start {binary} on a free port ({attempts} tries)")


def stop(server: subprocess.Popen, grace: float = 10.0) -> None:
    server.terminate()
    try:
        server.wait(grace)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def redis_answers(port: int) -> bool:
    """Whether a Redis on `port` answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_server(workdir: Path) -> tuple[subprocess.Popen, int]:
    """A throwaway redis-server (no persistence) on loopback."""
    return start_on_free_port(
        REDIS_SERVER,
        lambda port: [
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        redis_answers,
    )


def http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def alertmanager(workdir: Path, config: Path) -> tuple[subprocess.Popen, str]:
    """prometheus-alertmanager with `config`, clustering off, on loopback; its base URL."""
    server, port = start_on_free_port(
        ALERTMANAGER,
        lambda port: [
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        lambda port: http_ready(f"http://127.0.0.1:{port}/-/ready"),
    )
    return server, f"http://127.0.0.1:{port}"
