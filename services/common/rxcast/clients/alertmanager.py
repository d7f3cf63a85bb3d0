"""Prometheus Alertmanager's v2 API: post alerts (firing or resolved) and
read the ones it holds. JSON over HTTP with the standard library; a failed
call is UNAVAILABLE, so callers keep what they meant to send and retry."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rxcast.runtime.errors import InvalidArgument, Unavailable


@dataclass(frozen=True)
class PostableAlert:
    """One alert as Alertmanager takes it: labels identify it (and route it),
    annotations describe it; `ends_ms` in the past resolves it, 0 lets
    Alertmanager resolve it after its resolve_timeout unless posted again."""

    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_ms: int = 0
    ends_ms: int = 0
    generator_url: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"labels": dict(self.labels), "annotations": dict(self.annotations)}
        if self.starts_ms:
            body["startsAt"] = _rfc3339(self.starts_ms)
        if self.ends_ms:
            body["endsAt"] = _rfc3339(self.ends_ms)
        if self.generator_url:
            body["generatorURL"] = self.generator_url
        return body


class AlertmanagerClient:
    """Calls to one Alertmanager, e.g. "http://127.0.0.1:9093"."""

    def __init__(self, url: str, *, timeout: float = 5.0):
        if not url.startswith(("http://", "https://")):
            raise InvalidArgument(f"alertmanager url {url!r}: must start with http:// or https://")
        self.url = url.rstrip("/")
        self.timeout = timeout

    def post_alerts(self, alerts: Sequence[PostableAlert]) -> None:
        if alerts:
            self._call("POST", "/api/v2/alerts", [a.to_json() for a in alerts])

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """The alerts it holds (active ones; resolved alerts are not listed)."""
        query = "&".join(f"filter={k}%3D%22{v}%22" for k, v in filters.items())
        return self._call("GET", "/api/v2/alerts" + (f"?{query}" if query else ""))

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                payload = answer.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            raise Unavailable(f"alertmanager {method} {path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise Unavailable(f"alertmanager {method} {path}: {getattr(exc, 'reason', exc)}") from None
        return json.loads(payload) if payload else None


def _rfc3339(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
