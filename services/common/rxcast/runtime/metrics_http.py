"""The /metrics endpoint: Prometheus text over HTTPS, for callers with a token holding `read`.

prometheus_client's own server has no token check, so this is a small one:
each connection's TLS handshake and request are handled on its own thread
(a slow client never holds up the others), and a request without a known
token is answered 401, one lacking the role 403. With plaintext settings it
serves plain HTTP to anyone, like the gRPC port.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from rxcast.runtime import auth
from rxcast.runtime.errors import PermissionDenied, Unauthenticated
from rxcast.runtime.tls import Trust

METRICS_ROLE = auth.READ


class _MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, trust: Trust, authorizer: auth.Authorizer | None):
        super().__init__(address, _Handler)
        self.authorizer = authorizer
        self.tls_context = None if trust.plaintext else _server_context(trust)

    def get_request(self):
        sock, address = self.socket.accept()
        if self.tls_context is not None:
            # The handshake happens on the handler's thread, at its first read.
            sock = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


def _server_context(trust: Trust) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(trust.cert_path, trust.key_path)
    context.load_verify_locations(trust.ca_path)
    context.verify_mode = ssl.CERT_REQUIRED if trust.require_client_cert else ssl.CERT_NONE
    return context


class _Handler(BaseHTTPRequestHandler):
    server: _MetricsServer
    # A connection that stalls (in its handshake or request) is dropped, not kept forever.
    timeout = 30

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] not in ("/", "/metrics"):
            self._answer(404, b"not found\n")
            return
        if self.server.authorizer is not None:
            try:
                self.server.authorizer.check(METRICS_ROLE, [(k.lower(), v) for k, v in self.headers.items()])
            except Unauthenticated as exc:
                self._answer(401, exc.message.encode() + b"\n", {"WWW-Authenticate": "Bearer"})
                return
            except PermissionDenied as exc:
                self._answer(403, exc.message.encode() + b"\n")
                return
        self._answer(200, generate_latest(REGISTRY), {"Content-Type": CONTENT_TYPE_LATEST})

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        # Scrapes are not access-logged (and request lines never reach the log).
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            # A failed handshake (no client certificate, plain HTTP) ends that connection only.
            pass


def serve(host: str, port: int, trust: Trust, authorizer: auth.Authorizer | None) -> _MetricsServer:
    """Start serving /metrics on `host:port` (0 picks a free port); stop with shutdown()."""
    server = _MetricsServer((host, port), trust, authorizer)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


def get(url: str, trust: Trust, timeout: float = 10.0, token: str | None = None) -> tuple[int, str]:
    """(HTTP status, body) of GET `url` as a Prometheus scrape would make it: over
    HTTPS with `trust`'s client certificate and `token` (default: trust's; ""
    sends none), or plain HTTP for an http:// URL."""
    parts = urllib.parse.urlsplit(url)
    token = trust.token if token is None else token
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=trust.ca_path or None)
        if trust.cert_path:
            context.load_cert_chain(trust.cert_path, trust.key_path)
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)
    elif parts.scheme == "http":
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    else:
        raise ValueError(f"{url!r}: not an http:// or https:// URL")
    try:
        connection.request(
            "GET", parts.path or "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()
