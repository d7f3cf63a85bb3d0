"""Run the dashboard: python -m rxcast.dashboard --help"""

from __future__ import annotations

import os
import socket
import sys

import uvicorn

from rxcast.dashboard.app import create_app
from rxcast.dashboard.config import DashboardConfig
from rxcast.dashboard.sources import Sources
from rxcast.runtime.config import load_config
from rxcast.runtime.durable import write_json
from rxcast.runtime.errors import RxcastError
from rxcast.runtime.logs import configure_logging, get_logger

log = get_logger("rxcast.dashboard")


class _Server(uvicorn.Server):
    """uvicorn, writing the ready file once it listens (the launcher waits on it)."""

    def __init__(self, config: uvicorn.Config, ready_file: str, port: int):
        super().__init__(config)
        self.ready_file = ready_file
        self.port = port

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        log.info("serving", url=f"http://{self.config.host}:{self.port}/")
        if self.ready_file:
            write_json(
                self.ready_file,
                {"service": "dashboard", "port": self.port, "metrics_port": self.port, "pid": os.getpid()},
            )


def main(argv: list[str] | None = None) -> None:
    try:
        config = load_config(DashboardConfig, "dashboard", argv)
    except RxcastError as exc:
        print(f"rxcast.dashboard: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("dashboard", config.log_level)
    listener = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((config.host, config.port))
    port = listener.getsockname()[1]
    app = create_app(Sources(config), config.refresh_seconds)
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
    )
    server.run(sockets=[listener])


if __name__ == "__main__":
    main()
