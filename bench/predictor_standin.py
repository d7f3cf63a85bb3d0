"""Servers the predictor benchmark runs as their own processes.

python bench/predictor_standin.py features FEATURES_JSON READY_FILE
  a feature service answering GetOnlineFeatures for any keys with fixed
  values, so the benchmark measures the predictor and not a feature store;
python bench/predictor_standin.py echo - READY_FILE
  a bare grpcio server echoing request bytes (no interceptor, no parsing):
  the transport's limit.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent import futures

import grpc

from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.runtime import tls

PRESENT = feature_pb2.FEATURE_STATUS_PRESENT


class Features(feature_pb2_grpc.FeatureServiceServicer):
    def __init__(self, numeric: list[str], categorical: dict[str, str]):
        self._numeric = numeric
        self._categorical = categorical

    def GetOnlineFeatures(self, request, context):
        rows = len(request.keys.store_ids)
        stamp = int(time.time() * 1000) - 3_600_000
        statuses = [PRESENT] * rows
        times = [stamp] * rows
        columns = []
        for name in request.features:
            column = feature_pb2.FeatureColumn(name=name, statuses=statuses, event_times_unix_ms=times)
            if name in self._categorical:
                column.string_values.values.extend([self._categorical[name]] * rows)
            else:
                column.double_values.values.extend([float(len(name))] * rows)
            columns.append(column)
        return feature_pb2.GetOnlineFeaturesResponse(columns=columns)


def _echo(request: bytes, context) -> bytes:
    return request


def main() -> None:
    kind, spec, ready = sys.argv[1:4]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    if kind == "echo":
        handler = grpc.method_handlers_generic_handler(
            "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
        )
        server.add_generic_rpc_handlers((handler,))
    else:
        spec = json.loads(spec)
        feature_pb2_grpc.add_FeatureServiceServicer_to_server(Features(spec["numeric"], spec["categorical"]), server)
    # The launching process's transport (RXCAST_CLIENT_*): TLS unless it says plaintext.
    port = tls.add_port(server, "127.0.0.1:0", tls.client_trust())
    server.start()
    with open(ready, "w") as handle:
        json.dump({"port": port}, handle)
    threading.Event().wait()


if __name__ == "__main__":
    main()
