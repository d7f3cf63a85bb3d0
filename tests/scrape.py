"""Read a service's /metrics as Prometheus would: HTTPS, a client certificate, a bearer token."""

from __future__ import annotations

from rxcast.runtime import metrics_http, tls


def scrape(port: int, trust: tls.Trust | None = None, token: str | None = None, plain_http: bool = False):
    """(HTTP status, body) of GET /metrics on 127.0.0.1:`port` with `trust`'s
    certificate and `token` (default: trust's; "" sends none)."""
    trust = tls.client_trust() if trust is None else trust
    scheme = "http" if plain_http else "https"
    return metrics_http.get(f"{scheme}://127.0.0.1:{port}/metrics", trust, timeout=10, token=token)


def metrics_text(port: int, trust: tls.Trust | None = None) -> str:
    """The /metrics page of the service on `port`, read as `trust` (default: the session's admin)."""
    status, text = scrape(port, trust)
    assert status == 200, (status, text)
    return text
