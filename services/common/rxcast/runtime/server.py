"""Server bootstrap: one function runs any rxcast service.

`run(app, config)` builds the gRPC server with the shared interceptor, adds
the app's services plus health checking (grpc.health.v1) and server
reflection, serves Prometheus metrics, reports SERVING, and on SIGTERM or
SIGINT shuts down gracefully: health turns NOT_SERVING (so load balancers
drain), new calls are refused, and in-flight calls get `grace_seconds` to end.
Shutdown always finishes: if gRPC has not stopped a moment after the grace,
the app still stops (and checkpoints) and the process exits without waiting
for the stuck call's thread.

A service whose settings have a data directory gets one DiskGuard
(rxcast.runtime.disk), or hands the runtime its own as `app.disk`: a full
disk turns health NOT_SERVING, room again SERVING.

gRPC and /metrics are served over TLS with client certificates, and every
call is checked against the role its RPC needs (the app's `roles`), unless the
settings say `plaintext` (rxcast.runtime.tls, rxcast.runtime.auth).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Protocol

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rxcast.runtime import auth, metrics_http, tls
from rxcast.runtime.config import C, ServerSettings, load_config
from rxcast.runtime.disk import DiskGuard, guard_for
from rxcast.runtime.durable import write_json
from rxcast.runtime.errors import RxcastError
from rxcast.runtime.interceptors import ServerInterceptor
from rxcast.runtime.logs import configure_logging, get_logger

log = get_logger("rxcast.server")

#: How long past the grace server.stop() may take before the process stops waiting for it.
STOP_MARGIN_SECONDS = 2.0

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Health:
    """The health statuses a service reports, per gRPC service name and overall ("")."""

    def __init__(self) -> None:
        self._servicer = health.HealthServicer(experimental_non_blocking=True)
        self._names: list[str] = [""]
        self._reported: set[str] = set()

    @property
    def servicer(self) -> health.HealthServicer:
        return self._servicer

    def track(self, names: Sequence[str]) -> None:
        self._names.extend(n for n in names if n not in self._names)

    def set(self, status, names: Sequence[str] | None = None) -> None:
        """Report `status` for `names` (default: every tracked name)."""
        for name in self._names if names is None else names:
            self._reported.add(name)
            self._servicer.set(name, status)

    def set_unreported(self, status) -> None:
        """Report `status` for the names the app has not reported on itself."""
        self.set(status, [n for n in self._names if n not in self._reported])

    def shutdown(self) -> None:
        """Report NOT_SERVING everywhere, for good: later `set` calls are ignored."""
        self._servicer.enter_graceful_shutdown()


class App(Protocol):
    """What a service plugs into the runtime."""

    #: Short service name, e.g. "feature"; used in logs, metrics and env vars,
    #: and the identity whose certificate and token the service uses.
    name: str
    #: The role each RPC of each service it adds needs (one table per service,
    #: next to its servicer); the server refuses to start if an RPC has none.
    roles: Sequence[auth.RoleTable]

    def add_to_server(self, server: grpc.Server, health: Health) -> Sequence[str]:
        """Add servicers to `server`; return the full names of the services added."""

    def start(self) -> None:
        """Start background work (pollers, schedulers); called once the server is up."""

    def stop(self) -> None:
        """Stop background work and release resources; called after the server stopped."""

    # Optional: `disk`, the DiskGuard an app that checks space before its writes
    # keeps; the runtime then wires that one instead of making its own.


def build_server(
    config: ServerSettings,
    service: str,
    authorizer: auth.Authorizer | None = None,
    disk: DiskGuard | None = None,
) -> grpc.Server:
    max_bytes = config.max_message_mb * 1024 * 1024
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix=f"{service}-rpc"),
        interceptors=[ServerInterceptor(service, access_log=config.access_log, authorizer=authorizer, disk=disk)],
        # Past this many calls grpcio answers RESOURCE_EXHAUSTED rather than
        # queueing them for a worker without bound.
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        options=[
            # Refuse to share a port with another process: a second server on
            # the same port is a misconfiguration, not a replica.
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", max_bytes),
        ],
    )


def _write_ready_file(path: str, payload: dict) -> None:
    write_json(path, payload)


class Running:
    """A started server: its ports, and how to stop it."""

    def __init__(
        self,
        app: App,
        config: ServerSettings,
        server: grpc.Server,
        health: Health,
        port: int,
        metrics_server,
        disk: DiskGuard | None = None,
    ):
        self.app = app
        self.config = config
        self.server = server
        self.health = health
        self.port = port
        self.disk = disk
        self._metrics_server = metrics_server
        self.metrics_port = metrics_server.server_port if metrics_server else -1
        self._stop_watching = threading.Event()
        if disk is not None:
            threading.Thread(target=disk.watch, args=(self._stop_watching,), name="disk", daemon=True).start()

    def stop(self) -> bool:
        """Stop serving, then the app; False if gRPC did not finish stopping in time."""
        log.info("stopping", grace_seconds=self.config.grace_seconds)
        self.health.shutdown()
        self._stop_watching.set()
        if self.config.drain_seconds > 0:
            threading.Event().wait(self.config.drain_seconds)
        stopped = self.server.stop(self.config.grace_seconds).wait(self.config.grace_seconds + STOP_MARGIN_SECONDS)
        if not stopped:
            log.error("stop_timed_out", grace_seconds=self.config.grace_seconds)
        self.app.stop()
        if self._metrics_server:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        log.info("stopped")
        return stopped


def start(app: App, config: ServerSettings) -> Running:
    """Start `app` on a gRPC server; returns once it is serving."""
    trust = tls.for_service(config, app.name)
    authorizer = None if trust.plaintext else auth.Authorizer.load(trust.roles_path)
    disk = getattr(app, "disk", None) or guard_for(config)
    server = build_server(config, app.name, authorizer, disk)
    health_state = Health()
    if disk is not None:
        # The overall status and every service's: the disk is all of theirs.
        disk.on_change = lambda full: health_state.set(NOT_SERVING if full else SERVING)
    names = list(app.add_to_server(server, health_state))
    if authorizer is not None:
        authorizer.require(getattr(app, "roles", ()))
        unlisted = authorizer.unlisted(_methods(names))
        if unlisted:
            raise RuntimeError(f"{app.name}: RPCs without a role in the app's role tables: {unlisted}")
    health_state.track(names)
    health_pb2_grpc.add_HealthServicer_to_server(health_state.servicer, server)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    port = tls.add_port(server, f"{config.host}:{config.port}", trust)
    if port == 0:
        raise RuntimeError(f"cannot bind gRPC to {config.host}:{config.port}")
    metrics_server = (
        None if config.metrics_port < 0 else metrics_http.serve(config.host, config.metrics_port, trust, authorizer)
    )
    server.start()
    app.start()
    # Apps that must warm up (load a model) report on their own services;
    # everything else is SERVING once started.
    health_state.set_unreported(SERVING)
    if disk is not None:
        disk.check()
    running = Running(app, config, server, health_state, port, metrics_server, disk)
    log.info(
        "serving",
        host=config.host,
        port=port,
        metrics_port=running.metrics_port,
        services=names,
        transport="plaintext" if trust.plaintext else "mtls" if trust.require_client_cert else "tls",
    )
    if config.ready_file:
        _write_ready_file(
            config.ready_file,
            {"service": app.name, "port": port, "metrics_port": running.metrics_port, "pid": os.getpid()},
        )
    return running


def _methods(services: Sequence[str]) -> list[str]:
    """Every RPC path (/package.Service/Method) of the named services."""
    pool = descriptor_pool.Default()
    return [f"/{name}/{method.name}" for name in services for method in pool.FindServiceByName(name).methods]


def main(app_factory: Callable[[C], App], config_cls: type[C], service: str, argv: Sequence[str] | None = None) -> None:
    """Entry point of a service's `python -m rxcast.<service>`."""
    try:
        config = load_config(config_cls, service, argv)
        # The clients the service opens to others present its own certificate and token.
        tls.use_for_clients(tls.for_service(config, service))
        app = app_factory(config)
    except RxcastError as exc:
        print(f"rxcast.{service}: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    run(app, config)


def run(app: App, config: ServerSettings) -> None:
    """Serve `app` until SIGTERM or SIGINT, then shut down gracefully."""
    configure_logging(app.name, config.log_level)
    stop_requested = threading.Event()

    def request_stop(signum, _frame):
        log.info("signal", signal=signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    running = start(app, config)
    stop_requested.wait()
    if not running.stop():
        # A call's thread is stuck in gRPC; the interpreter would wait for it forever.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
