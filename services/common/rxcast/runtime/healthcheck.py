"""Exit 0 when a gRPC server reports SERVING: a container health check.

python -m rxcast.runtime.healthcheck 127.0.0.1:50051 [--service NAME] [--timeout S]
    [--tls-dir DIR] [--identity NAME] [--plaintext] [--http]

Health checks need no token, but the connection is TLS (with a client
certificate under mTLS) like any other: a container checks its own service
with the service's certificate (`--tls-dir /certs --identity feature`).
Flags not given come from RXCAST_CLIENT_* (rxcast.runtime.tls.ClientSettings).
`--http` checks an HTTP server's /healthz instead (the dashboard).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rxcast.runtime import tls
from rxcast.runtime.errors import RxcastError


def check(address: str, service: str = "", timeout: float = 3.0, trust: tls.Trust | None = None) -> str:
    """The status name `address` reports for `service` ("" = the whole server)."""
    with tls.channel(address, trust) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("address", help="host:port of the gRPC server")
    parser.add_argument("--service", default="", help="a service name; empty checks the server as a whole")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    parser.add_argument("--http", action="store_true", help="an HTTP server's /healthz (the dashboard), not gRPC")
    parser.add_argument("--tls-dir", help="where the CA and the identity's certificate are (make certs)")
    parser.add_argument("--identity", help="whose certificate to present (a file stem in the TLS directory)")
    parser.add_argument("--plaintext", action="store_true", help="connect without TLS")
    args = parser.parse_args(argv)
    if args.http:
        return _check_http(args.address, args.timeout)
    given = {"tls_dir": args.tls_dir, "identity": args.identity, "plaintext": args.plaintext or None}
    try:
        settings = tls.ClientSettings(**{k: v for k, v in given.items() if v is not None})
        status = check(args.address, args.service, args.timeout, settings.trust(need_token=False))
    except RxcastError as exc:
        print(f"{args.address}: {exc.message}", file=sys.stderr)
        return 1
    except grpc.RpcError as exc:
        print(f"{args.address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    print(f"{args.address} {args.service or '(server)'}: {status}")
    return 0 if status == "SERVING" else 1


def check_http(address: str, timeout: float = 3.0) -> str:
    """The status an HTTP server (the dashboard) reports at /healthz."""
    with urllib.request.urlopen(f"http://{address}/healthz", timeout=timeout) as answer:
        return str(json.loads(answer.read()).get("status", "UNKNOWN"))


def _check_http(address: str, timeout: float) -> int:
    try:
        status = check_http(address, timeout)
    except (OSError, ValueError) as exc:
        print(f"{address}: {exc}", file=sys.stderr)
        return 1
    print(f"{address} (http): {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
