"""The predictor service process: configuration and wiring into the runtime."""

from __future__ import annotations

import dataclasses

import grpc

from inference import grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc
from rxcast.predictor.v1 import predictor_pb2, predictor_pb2_grpc
from rxcast.runtime.config import ServerConfig, setting
from rxcast.runtime.errors import InvalidArgument
from rxcast.runtime.server import Health

SERVICE_NAME = predictor_pb2.DESCRIPTOR.services_by_name["PredictorService"].full_name
INFERENCE_SERVICE_NAME = grpc_predict_v2_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
MODES = ("online", "batch")


@dataclasses.dataclass(frozen=True)
class PredictorConfig(ServerConfig):
    """rxcast predictor service: online/streaming forecasts or batch scoring."""

    mode: str = setting("online", "online (per-request forecasts) or batch (scheduled scoring, served by lookup)")
    port: int = setting(50053, "gRPC port; 0 picks a free one (see --ready-file)")
    metrics_port: int = setting(9153, "Prometheus metrics HTTP port; 0 picks a free one, -1 disables")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidArgument(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")


class PredictorApp:
    name = "predictor"

    def __init__(self, config: PredictorConfig):
        self.config = config

    def add_to_server(self, server: grpc.Server, health: Health) -> list[str]:
        predictor_pb2_grpc.add_PredictorServiceServicer_to_server(predictor_pb2_grpc.PredictorServiceServicer(), server)
        names = [SERVICE_NAME]
        if self.config.mode == "online":
            grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
                grpc_predict_v2_pb2_grpc.GRPCInferenceServiceServicer(), server
            )
            names.append(INFERENCE_SERVICE_NAME)
        return names

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
