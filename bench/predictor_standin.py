"""Servers the predictor benchmark runs as their own processes.

python bench/predictor_standin.py features FEATURES_JSON READY_FILE
  a feature service answering GetOnlineFeatures for any keys with fixed
  values (a packed answer is built once per feature list and row count), so
  the benchmark measures the predictor and not a feature store, and
  bench/peers.py has the floor of a lookup over Python gRPC;
python bench/predictor_standin.py echo - READY_FILE
  a bare grpcio server echoing request bytes (no interceptor, no parsing):
  the transport's limit;
python bench/predictor_standin.py infer-echo - READY_FILE
  a bare grpcio server of the KServe v2 ModelInfer (no interceptor): parses
  the request and answers zeros of its row count, so tritonclient reads a
  valid answer; the floor of a Python v2 server (bench/peers.py).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent import futures
from types import SimpleNamespace

import grpc
from inference import grpc_predict_v2_pb2 as oip

from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.runtime import tls

PRESENT = feature_pb2.FEATURE_STATUS_PRESENT


class Features(feature_pb2_grpc.FeatureServiceServicer):
    def __init__(self, numeric: list[str], categorical: dict[str, str]):
        # Imported here, so the echoes stay the bare floor they measure (rxcast.clients
        # brings pandas: ~170 MB of RSS in the echo's row of bench/peers.py).
        import numpy

        from rxcast.clients.columns import encode_packed

        self._np, self._encode_packed = numpy, encode_packed

        self._numeric = numeric
        self._categorical = categorical
        self._packed: dict[tuple, feature_pb2.GetOnlineFeaturesResponse] = {}

    def GetOnlineFeatures(self, request, context):
        rows = len(request.keys.store_ids)
        stamp = int(time.time() * 1000) - 3_600_000
        if request.packed:  # as the feature service answers the predictor's client
            key = (tuple(request.features), rows)
            answer = self._packed.get(key)
            if answer is None:
                answer = self._packed[key] = feature_pb2.GetOnlineFeaturesResponse(
                    packed=self._encode_packed(self._arrays(request.features, rows, stamp))
                )
            return answer
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

    def _arrays(self, names, rows: int, stamp: int) -> list[SimpleNamespace]:
        np = self._np
        statuses, times = np.full(rows, PRESENT, dtype=np.int8), np.full(rows, stamp, dtype=np.int64)
        return [
            SimpleNamespace(name=name, value_type="STRING", values=np.full(rows, self._categorical[name], dtype=object),
                            statuses=statuses, event_ms=times)
            if name in self._categorical
            else SimpleNamespace(name=name, value_type="DOUBLE", values=np.full(rows, float(len(name))),
                                 statuses=statuses, event_ms=times)
            for name in names
        ]  # fmt: skip


def _echo(request: bytes, context) -> bytes:
    return request


def _infer_echo(request: oip.ModelInferRequest, context) -> oip.ModelInferResponse:
    rows = request.inputs[0].shape[0] if request.inputs and request.inputs[0].shape else 0
    response = oip.ModelInferResponse(model_name=request.model_name, model_version="1", id=request.id)
    response.outputs.add(name="forecast", datatype="FP64", shape=[rows])
    response.raw_output_contents.append(bytes(8 * rows))
    return response


def main() -> None:
    kind, spec, ready = sys.argv[1:4]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    if kind == "echo":
        handler = grpc.method_handlers_generic_handler(
            "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
        )
        server.add_generic_rpc_handlers((handler,))
    elif kind == "infer-echo":
        infer = grpc.unary_unary_rpc_method_handler(
            _infer_echo,
            request_deserializer=oip.ModelInferRequest.FromString,
            response_serializer=oip.ModelInferResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {"ModelInfer": infer}),)
        )
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
