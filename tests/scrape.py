"""Read a service's /metrics as Prometheus would: HTTPS, a client certificate, a bearer token."""

from __future__ import annotations

import http.client
import ssl

from rxcast.runtime import tls


def scrape(port: int, trust: tls.Trust | None = None, token: str | None = None, plain_http: bool = False):
    """(HTTP status, body) of GET /metrics on 127.0.0.1:`port` with `trust`'s
    certificate and `token` (default: trust's; "" sends none)."""
    trust = tls.client_trust() if trust is None else trust
    token = trust.token if token is None else token
    if plain_http:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        context = ssl.create_default_context(cafile=trust.ca_path)
        if trust.cert_path:
            context.load_cert_chain(trust.cert_path, trust.key_path)
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    try:
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def metrics_text(port: int, trust: tls.Trust | None = None) -> str:
    """The /metrics page of the service on `port`, read as `trust` (default: the session's admin)."""
    status, text = scrape(port, trust)
    assert status == 200, (status, text)
    return text
