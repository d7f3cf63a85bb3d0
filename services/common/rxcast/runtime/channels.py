"""Client channels to rxcast services (and any gRPC server).

- Every call carries a deadline: the caller's `timeout`, else the channel's
  default, and never later than the deadline of the inbound call being served
  on this thread (so a chain of calls gives up together).
- The inbound call's request id travels on as `x-request-id`.
- TLS with the process's certificate, and its bearer token on every call
  (rxcast.runtime.tls: a service's own, else RXCAST_CLIENT_*).
- Retries are gRPC's own (transparent retries plus a retry policy in the
  service config), bounded, with exponential backoff, and only for methods
  the protos declare idempotent (`idempotency_level` NO_SIDE_EFFECTS or
  IDEMPOTENT) and only on UNAVAILABLE.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable

import grpc
from google.protobuf import descriptor, descriptor_pb2

from rxcast.runtime import context, errors, tls

_SAFE_LEVELS = (
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT,
)


def idempotent_methods(services: Iterable[descriptor.ServiceDescriptor]) -> list[dict]:
    """Service-config method names for the RPCs the protos mark idempotent."""
    names = []
    for service in services:
        for method in service.methods:
            if method.GetOptions().idempotency_level in _SAFE_LEVELS:
                names.append({"service": service.full_name, "method": method.name})
    return names


def retry_service_config(services: Iterable[descriptor.ServiceDescriptor], max_attempts: int = 4) -> str:
    methods = idempotent_methods(services)
    if not methods:
        return json.dumps({})
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": methods,
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": "0.05s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2.0,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


class _CallDetails(
    collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
    ),
    grpc.ClientCallDetails,
):
    pass


class _CallDefaults(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, default_timeout: float, credentials: tuple[tuple[str, str], ...] = ()):
        self._default_timeout = default_timeout
        self._credentials = credentials

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        timeout = details.timeout if details.timeout is not None else self._default_timeout
        inbound = context.time_remaining()
        if inbound is not None:
            timeout = max(0.0, min(timeout, inbound))
        metadata = list(details.metadata or ())
        rid = context.request_id()
        if rid is not None and not any(k == context.REQUEST_ID_HEADER for k, _ in metadata):
            metadata.append((context.REQUEST_ID_HEADER, rid))
        metadata.extend(self._credentials)
        return _CallDetails(
            details.method, timeout, metadata, details.credentials, details.wait_for_ready, details.compression
        )

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return continuation(self._details(client_call_details), request_iterator)


def connect(
    target: str,
    services: Iterable[descriptor.ServiceDescriptor] = (),
    default_timeout: float = 5.0,
    max_attempts: int = 4,
    max_message_mb: int = 64,
    trust: tls.Trust | None = None,
) -> grpc.Channel:
    """A channel to `target` with default deadlines, request-id propagation,
    retries for the idempotent methods of `services`, and `trust`'s TLS and
    token (default: the process's, rxcast.runtime.tls.client_trust)."""
    max_bytes = max_message_mb * 1024 * 1024
    options = [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", retry_service_config(services, max_attempts)),
        ("grpc.max_receive_message_length", max_bytes),
        ("grpc.max_send_message_length", max_bytes),
        ("grpc.keepalive_time_ms", 30_000),
    ]
    return with_options(target, options, default_timeout, trust)


def with_options(
    target: str, options: Iterable[tuple[str, object]], default_timeout: float = 5.0, trust: tls.Trust | None = None
) -> grpc.Channel:
    """A channel with the caller's own channel options (probes, fuzzers): deadlines,
    request ids and `trust`'s TLS and token as `connect` gives them, no retries."""
    trust = tls.client_trust() if trust is None else trust
    channel = tls.channel(target, trust, options=list(options))
    return grpc.intercept_channel(channel, _CallDefaults(default_timeout, tls.metadata(trust)))


_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
}
# A dependency that rejects the request a service built for it points at a
# mismatch between deployed versions (a feature the store does not define, a
# version it does not hold), not at the caller's caller, and retrying will not help.
_REJECTED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
}


def as_domain_error(exc: grpc.RpcError, what: str) -> errors.RxcastError:
    """Describe a failed call to a dependency as a domain error of the caller.

    Transient failures keep their code (the caller's caller may retry); a
    rejected request is FAILED_PRECONDITION; any other failure of a dependency
    is UNAVAILABLE from the caller's side, not an error in the caller's own request.
    """
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    detail = exc.details() if hasattr(exc, "details") else str(exc)
    kind = errors.FailedPrecondition if code in _REJECTED else _TRANSIENT.get(code, errors.Unavailable)
    return kind(f"{what}: {code.name}: {detail}", dependency_code=code.name)
