"""Per-call context: the request id and the caller's deadline.

gRPC runs each call on a pool thread; the server interceptor sets these at the
start of a call and clears them at its end, so domain code and outgoing client
calls can read them without threading them through every signature.
"""

from __future__ import annotations

import contextvars
import time
import uuid

REQUEST_ID_HEADER = "x-request-id"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("rxcast_request_id", default=None)
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("rxcast_deadline", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id() -> str | None:
    """The id of the call being served on this thread, if any."""
    return _request_id.get()


def deadline() -> float | None:
    """The inbound call's deadline as a time.monotonic() instant, if it has one."""
    return _deadline.get()


def time_remaining() -> float | None:
    """Seconds left before the inbound call's deadline, or None without one."""
    end = _deadline.get()
    return None if end is None else end - time.monotonic()


def enter(request_id_value: str, remaining: float | None) -> tuple[contextvars.Token, contextvars.Token]:
    """Bind a call's request id and deadline; returns tokens for `leave`."""
    end = None if remaining is None else time.monotonic() + remaining
    return _request_id.set(request_id_value), _deadline.set(end)


def leave(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
    """Unbind what `enter` bound. A streaming call abandoned by its client may be
    finalized by the garbage collector on another thread, where the tokens do not
    belong; the call's own thread context is then dropped with it anyway."""
    rid_token, deadline_token = tokens
    try:
        _request_id.reset(rid_token)
        _deadline.reset(deadline_token)
    except ValueError:
        pass
