"""What every rxcast client shares: a channel with deadlines, request-id
propagation and the contract's retry policy, and one mapping of a failed call
to the caller's domain error."""

from __future__ import annotations

from typing import Any, Self

import grpc
from google.protobuf import descriptor

from rxcast.runtime.channels import as_domain_error, connect
from rxcast.runtime.errors import RxcastError
from rxcast.runtime.tls import Trust


class ServiceClient:
    """A channel to one rxcast service and its stub.

    Typed methods cover what callers do; `stub` is there for the rest (it
    goes through the same channel: deadlines, retries, request ids).
    """

    #: The service's descriptor (its methods' idempotency levels set the retries).
    SERVICE: descriptor.ServiceDescriptor
    #: The generated stub class.
    STUB: type
    #: How error messages name the service.
    NAME = "service"

    def __init__(self, address: str, *, timeout: float = 5.0, max_message_mb: int = 64, trust: Trust | None = None):
        self.address = address
        self.timeout = timeout
        self.channel = connect(
            address, [self.SERVICE], default_timeout=timeout, max_message_mb=max_message_mb, trust=trust
        )
        self.stub: Any = self.STUB(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def failed(self, exc: grpc.RpcError, rpc: str) -> RxcastError:
        """The domain error for a failed call of `rpc`, naming service and address."""
        return as_domain_error(exc, f"{self.NAME} {self.address} {rpc}")
