"""Run the dashboard: python -m rxcast.dashboard --help"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys

import uvicorn

from rxcast.dashboard.app import create_app
from rxcast.dashboard.config import DashboardConfig
from rxcast.dashboard.sources import Sources
from rxcast.runtime import auth, metrics_http, tls
from rxcast.runtime.config import load_config
from rxcast.runtime.durable import write_json
from rxcast.runtime.errors import RxcastError
from rxcast.runtime.logs import configure_logging, get_logger

log = get_logger("rxcast.dashboard")


class _Server(uvicorn.Server):
    """uvicorn, writing the ready file once it listens (the launcher waits on it)."""

    def __init__(self, config: uvicorn.Config, ready_file: str, port: int, metrics_port: int):
        super().__init__(config)
        self.ready_file = ready_file
        self.port = port
        self.metrics_port = metrics_port

    @contextlib.contextmanager
    def capture_signals(self):
        # uvicorn raises the caught signal again once it has shut down; every
        # rxcast service instead exits 0 after a graceful stop.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        log.info("serving", url=f"http://{self.config.host}:{self.port}/")
        if self.ready_file:
            write_json(
                self.ready_file,
                {"service": "dashboard", "port": self.port, "metrics_port": self.metrics_port, "pid": os.getpid()},
            )


def main(argv: list[str] | None = None) -> None:
    try:
        config = load_config(DashboardConfig, "dashboard", argv)
    except RxcastError as exc:
        print(f"rxcast.dashboard: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("dashboard", config.log_level)
    try:
        # Its own certificate and read-only token for what the pages read;
        # operators' actions carry their own token (see rxcast.dashboard.app).
        trust = tls.for_service(config, "dashboard")
        authorizer = None if trust.plaintext else auth.Authorizer.load(trust.roles_path)
    except RxcastError as exc:
        print(f"rxcast.dashboard: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    tls.use_for_clients(trust)
    listener = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((config.host, config.port))
    port = listener.getsockname()[1]
    metrics = (
        None if config.metrics_port < 0 else metrics_http.serve(config.host, config.metrics_port, trust, authorizer)
    )
    app = create_app(Sources(config, trust), config.refresh_seconds)
    server = _Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=port,
            log_config=None,
            access_log=config.access_log,
            timeout_graceful_shutdown=max(1, int(config.grace_seconds)),
        ),
        config.ready_file,
        port,
        metrics.server_port if metrics else -1,
    )
    server.run(sockets=[listener])


if __name__ == "__main__":
    main()
