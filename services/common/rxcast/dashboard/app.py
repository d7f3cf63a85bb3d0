"""The dashboard's web application: the page, its JSON, a server-sent event
stream that pushes every page part as it changes, and the operator actions
(rollback, acknowledge), which go through the services' own RPCs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import plotly
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rxcast.dashboard.sources import Sources
from rxcast.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RxcastError,
    Unauthenticated,
    Unavailable,
)
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.dashboard.app")

STATIC = Path(str(resources.files("rxcast.dashboard") / "static"))
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

#: Page parts the poller refreshes, and how each is read.
SECTIONS: dict[str, Callable[[Sources], dict]] = {
    "health": Sources.health,
    "models": Sources.models,
    "drift": Sources.drift_page,
    "comparison": Sources.comparison,
}

REFRESHES = Counter("rxcast_dashboard_refresh_total", "Page parts read from the services, by part.", ["section"])
ACTIONS = Counter("rxcast_dashboard_actions_total", "Operator actions taken from the page, by action.", ["action"])

_STATUS = {
    InvalidArgument: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    FailedPrecondition: 409,
    Unavailable: 503,
}
_DENIED = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403}


class Snapshots:
    """The newest JSON of every page part, each with a sequence number the
    event streams compare against."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: dict[str, tuple[int, str]] = {}
        self._sequence = 0

    def put(self, section: str, payload: dict) -> bool:
        """Store a part; whether it changed."""
        text = json.dumps(payload, sort_keys=True, default=str)
        with self._lock:
            old = self._parts.get(section)
            if old is not None and old[1] == text:
                return False
            self._sequence += 1
            self._parts[section] = (self._sequence, text)
            return True

    def get(self, section: str) -> str | None:
        with self._lock:
            part = self._parts.get(section)
        return part[1] if part else None

    def newer_than(self, seen: dict[str, int]) -> list[tuple[str, int, str]]:
        with self._lock:
            return [(s, n, t) for s, (n, t) in self._parts.items() if seen.get(s, 0) < n]


class Poller:
    """A thread that rereads every page part each `interval` seconds and
    samples the watched stores' online forecasts."""

    def __init__(self, sources: Sources, snapshots: Snapshots, interval: float):
        self.sources = sources
        self.snapshots = snapshots
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def refresh(self) -> None:
        for section, read in SECTIONS.items():
            try:
                self.snapshots.put(section, read(self.sources))
                REFRESHES.labels(section).inc()
            except Exception as exc:  # noqa: BLE001 - one failing part must not stop the others
                log.warning("refresh failed", section=section, reason=str(exc)[:300])
                self.snapshots.put(section, {"error": f"{type(exc).__name__}: {str(exc)[:300]}"})
        for store in self.sources.sample_watched():
            self.snapshots.put(f"forecasts:{store}", {"store_id": store, "changed": time.time()})

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.refresh()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


def _error(exc: RxcastError) -> JSONResponse:
    # A service refusing the operator's token is the operator's answer, not a fault upstream.
    status = _DENIED.get(exc.dependency_code) or next(
        (code for kind, code in _STATUS.items() if isinstance(exc, kind)), 502
    )
    return JSONResponse({"error": exc.message[:500]}, status_code=status)


def create_app(sources: Sources, refresh_seconds: float, poll: bool = True) -> Starlette:
    snapshots = Snapshots()
    poller = Poller(sources, snapshots, refresh_seconds)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(PLOTLY_JS, media_type="text/javascript")
        path = (STATIC / name).resolve()
        if path.parent != STATIC.resolve() or not path.is_file():
            return JSONResponse({"error": "not found"}, status_code=404)
        return FileResponse(path)

    async def section(request: Request) -> Response:
        name = request.path_params["section"]
        if name not in SECTIONS:
            return JSONResponse({"error": f"no page part {name[:64]!r}"}, status_code=404)
        text = snapshots.get(name)
        if text is None:
            snapshots.put(name, await run_in_threadpool(SECTIONS[name], sources))
            text = snapshots.get(name)
        return Response(text, media_type="application/json")

    async def forecasts(request: Request) -> Response:
        store = request.query_params.get("store", "")
        medication = request.query_params.get("medication", "")
        category = request.query_params.get("category", "")
        try:
            if not store:
                entities = await run_in_threadpool(sources.entities)
                stores = sorted(entities.by_store)
                if not stores:
                    return JSONResponse({"stores": [], "error": "the feature service knows no stores yet"})
                store = stores[0]
            chart = await run_in_threadpool(sources.forecast_store, store, medication, category)
        except RxcastError as exc:
            return _error(exc)
        return JSONResponse(chart)

    async def events(request: Request) -> Response:
        async def stream():
            seen: dict[str, int] = {}
            yield f"retry: {int(refresh_seconds * 1000)}\n\n"
            while not await request.is_disconnected():
                for name, sequence, text in snapshots.newer_than(seen):
                    seen[name] = sequence
                    kind = "forecasts" if name.startswith("forecasts:") else name
                    yield f"event: {kind}\ndata: {text}\n\n"
                await asyncio.sleep(min(0.5, refresh_seconds))

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def rollback(request: Request) -> Response:
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        alias = str(body.get("alias", "")).strip()
        if not alias:
            return JSONResponse({"error": "alias: required"}, status_code=400)
        try:
            to_version = int(body.get("to_version", 0) or 0)
        except (TypeError, ValueError):
            return JSONResponse({"error": "to_version: must be an integer"}, status_code=400)
        reason = str(body.get("reason", "") or "rolled back from the dashboard")[:500]
        try:
            answer = await run_in_threadpool(sources.rollback, _bearer(request), alias, to_version, reason)
        except RxcastError as exc:
            return _error(exc)
        ACTIONS.labels("rollback").inc()
        log.info("rollback", alias=alias, to_version=answer.change.to_version)
        await run_in_threadpool(poller.refresh)
        return JSONResponse({"alias": alias, "from": answer.change.from_version, "to": answer.change.to_version})

    async def acknowledge(request: Request) -> Response:
        incident_id = request.path_params["incident_id"]
        body = await _json_body(request)
        if isinstance(body, Response):
            return body
        by = str(body.get("by", "") or "dashboard")[:200]
        note = str(body.get("note", "") or "")[:1000]
        try:
            incident = await run_in_threadpool(sources.acknowledge, _bearer(request), incident_id, by, note)
        except RxcastError as exc:
            return _error(exc)
        ACTIONS.labels("acknowledge").inc()
        log.info("acknowledged", incident_id=incident_id[:64])
        await run_in_threadpool(poller.refresh)
        return JSONResponse({"incident_id": incident.incident_id, "acknowledged_by": incident.acknowledged_by})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "SERVING"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if poll:
            poller.start()
        try:
            yield
        finally:
            if poll:
                poller.stop()
            sources.close()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/static/{name}", static),
            Route("/api/forecasts", forecasts),
            Route("/api/events", events),
            Route("/api/rollback", rollback, methods=["POST"]),
            Route("/api/incidents/{incident_id}/acknowledge", acknowledge, methods=["POST"]),
            Route("/api/{section}", section),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
    app.state.snapshots = snapshots
    app.state.poller = poller
    return app


async def _json_body(request: Request) -> dict[str, Any] | Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
    return body


def _bearer(request: Request) -> str:
    """The operator's token from the request's Authorization header ("" if none)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
