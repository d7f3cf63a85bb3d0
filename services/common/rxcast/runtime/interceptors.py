"""The server interceptor every rxcast service runs.

One interceptor (not a chain) does the per-call work, because each layer of
interception costs a Python call and a handler rebuild on the hot path:
- refuses a caller without the role the RPC needs (rxcast.runtime.auth), before
  the servicer runs: UNAUTHENTICATED or PERMISSION_DENIED;
- binds the request id (from the `x-request-id` header, or a new one) and the
  caller's deadline to the call's context, and returns the id in trailing metadata;
- maps domain errors (rxcast.runtime.errors) to their status codes (messages
  cut to MAX_DETAILS characters), a write that failed for want of disk space
  to RESOURCE_EXHAUSTED (and tells the service's DiskGuard, which turns health
  NOT_SERVING until there is room), and any
  other exception to INTERNAL with the request id, logging its traceback;
- answers UNIMPLEMENTED, with the method's name, for RPCs a service lacks;
- answers INVALID_ARGUMENT for a request that is not a message of the RPC's
  type (grpcio's own answer is INTERNAL, and on a client-streaming RPC it
  left the call half-closed so that server.stop() never finished);
- records Prometheus metrics and writes one access-log line per call (with the
  caller's identity, never its token).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import grpc

from rxcast.runtime import auth, context, metrics
from rxcast.runtime.disk import DiskGuard, is_disk_full
from rxcast.runtime.errors import InvalidArgument, RxcastError
from rxcast.runtime.logs import access_line, get_logger

log = get_logger("rxcast.rpc")

# Probes and tooling: counted in metrics but not access-logged at info level.
_QUIET_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


#: Longest status message sent: a message that quotes a caller's input unbounded
#: (a 60,000-character id) would otherwise echo it whole.
MAX_DETAILS = 1_000


def _bounded(message: str) -> str:
    return message if len(message) <= MAX_DETAILS else f"{message[: MAX_DETAILS - 30]}… ({len(message)} characters)"


class _Undecodable:
    """Stands in for a request whose bytes are not a message of the RPC's type."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument):
        self.error = error


def _tolerant(deserializer: Callable | None) -> Callable | None:
    """`deserializer`, answering _Undecodable instead of raising."""
    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)
    type_name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "request")

    def decode(data: bytes):
        try:
            return deserializer(data)
        except Exception:  # noqa: BLE001 - any decoding failure is the caller's malformed request
            return _Undecodable(InvalidArgument(f"request: {len(data)} bytes that are not a {type_name} message"))

    return decode


def _decoded(request):
    if type(request) is _Undecodable:
        raise request.error
    return request


def _decoded_stream(requests: Iterator) -> Iterator:
    for request in requests:
        if type(request) is _Undecodable:
            raise request.error
        yield request


class _MethodMetrics:
    """One method's metric children, resolved once: `labels()` takes the
    metric's lock and builds a key on every call, a cost that showed on fast RPCs."""

    __slots__ = ("_handled", "_method", "_service", "in_flight", "seconds", "started")

    def __init__(self, service: str, method: str):
        self._service = service
        self._method = method
        self.started = metrics.RPC_STARTED.labels(service, method)
        self.seconds = metrics.RPC_SECONDS.labels(service, method)
        self.in_flight = metrics.RPC_IN_FLIGHT.labels(service)
        self._handled: dict[str, object] = {}

    def handled(self, code: str):
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = metrics.RPC_HANDLED.labels(self._service, self._method, code)
        return child


class _Call:
    """Book-keeping for one call between its start and end."""

    __slots__ = ("caller", "code", "method", "metrics", "quiet", "started", "tokens")

    def __init__(self, method: str, tokens, quiet: bool, method_metrics: _MethodMetrics):
        self.method = method
        self.started = time.perf_counter()
        self.tokens = tokens
        self.code = grpc.StatusCode.OK
        self.quiet = quiet
        self.metrics = method_metrics
        self.caller: auth.Identity | None = None


class ServerInterceptor(grpc.ServerInterceptor):
    """Roles, request ids, deadlines, error mapping, metrics and access logs."""

    def __init__(
        self,
        service: str,
        access_log: bool = True,
        authorizer: auth.Authorizer | None = None,
        disk: DiskGuard | None = None,
    ):
        self._service = service
        self._access_log = access_log
        self._authorizer = authorizer
        self._disk = disk
        self._wrapped: dict[tuple[str, int], grpc.RpcMethodHandler] = {}

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        key = (handler_call_details.method, id(handler))
        wrapped = self._wrapped.get(key)
        if wrapped is None:
            wrapped = self._wrap(handler_call_details.method, handler)
            self._wrapped[key] = wrapped
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        codec = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary(method, handler.unary_unary, _decoded), **codec)
        if handler.stream_unary:
            behavior = self._unary(method, handler.stream_unary, _decoded_stream)
            return grpc.stream_unary_rpc_method_handler(behavior, **codec)
        if handler.unary_stream:
            behavior = self._streaming(method, handler.unary_stream, _decoded)
            return grpc.unary_stream_rpc_method_handler(behavior, **codec)
        behavior = self._streaming(method, handler.stream_stream, _decoded_stream)
        return grpc.stream_stream_rpc_method_handler(behavior, **codec)

    def _check(self, method: str) -> Callable | None:
        return None if self._authorizer is None else self._authorizer.checker(method)

    def _unary(self, method: str, behavior: Callable, decoded: Callable) -> Callable:
        method_metrics = _MethodMetrics(self._service, method)
        check = self._check(method)

        def handle(request, servicer_context):
            call = self._begin(method, servicer_context, method_metrics)
            try:
                if check is not None:
                    call.caller = check(servicer_context.invocation_metadata())
                return behavior(decoded(request), servicer_context)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status, here and only here
                self._fail(call, exc, servicer_context)
            finally:
                self._end(call, servicer_context)

        return handle

    def _streaming(self, method: str, behavior: Callable, decoded: Callable) -> Callable:
        method_metrics = _MethodMetrics(self._service, method)
        check = self._check(method)

        def handle(request, servicer_context) -> Iterator:
            call = self._begin(method, servicer_context, method_metrics)
            try:
                if check is not None:
                    call.caller = check(servicer_context.invocation_metadata())
                yield from behavior(decoded(request), servicer_context)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status, here and only here
                self._fail(call, exc, servicer_context)
            finally:
                self._end(call, servicer_context)

        return handle

    def _begin(self, method: str, servicer_context: grpc.ServicerContext, method_metrics: _MethodMetrics) -> _Call:
        rid = None
        for key, value in servicer_context.invocation_metadata():
            if key == context.REQUEST_ID_HEADER:
                rid = value
                break
        rid = rid or context.new_request_id()
        servicer_context.set_trailing_metadata(((context.REQUEST_ID_HEADER, rid),))
        tokens = context.enter(rid, servicer_context.time_remaining())
        method_metrics.started.inc()
        method_metrics.in_flight.inc()
        return _Call(method, tokens, method.startswith(_QUIET_PREFIXES), method_metrics)

    def _fail(self, call: _Call, exc: Exception, servicer_context: grpc.ServicerContext) -> None:
        """Turn an exception into the call's status; always raises."""
        if isinstance(exc, RxcastError):
            call.code = grpc.StatusCode[exc.code]
            servicer_context.abort(call.code, _bounded(exc.message))
        if is_disk_full(exc):
            # Any service's write that failed for space: the caller may retry later, nothing is broken.
            call.code = grpc.StatusCode.RESOURCE_EXHAUSTED
            log.error("disk_full", method=call.method, error=str(exc)[:200])
            if self._disk is not None:
                self._report_full()
            servicer_context.abort(call.code, "the service's disk is full; retry once there is space")
        if isinstance(exc, NotImplementedError):
            call.code = grpc.StatusCode.UNIMPLEMENTED
            servicer_context.abort(call.code, f"{call.method.lstrip('/')} is not implemented by this server yet")
        aborted = servicer_context.code()
        if aborted is not None and aborted != grpc.StatusCode.OK:
            # The servicer aborted the call itself; its status stands.
            call.code = aborted
            raise exc
        call.code = grpc.StatusCode.INTERNAL
        log.exception("rpc_failed", method=call.method)
        servicer_context.abort(call.code, f"internal error (request id {context.request_id()})")

    def _report_full(self) -> None:
        try:
            self._disk.check(failed_write=True)
        except OSError:
            # The status is sent regardless; the guard's watch checks again.
            log.exception("disk_check_failed", path=str(self._disk.path))

    def _end(self, call: _Call, servicer_context: grpc.ServicerContext) -> None:
        seconds = time.perf_counter() - call.started
        if call.code == grpc.StatusCode.OK and not servicer_context.is_active():
            call.code = grpc.StatusCode.CANCELLED
        code = call.code.name
        call.metrics.in_flight.dec()
        call.metrics.handled(code).inc()
        call.metrics.seconds.observe(seconds)
        if self._access_log:
            caller = call.caller.name if call.caller is not None else None
            access_line(call.method, code, round(seconds * 1000.0, 3), caller, call.quiet)
        context.leave(call.tokens)
