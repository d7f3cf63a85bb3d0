"""The feature service process: configuration and wiring into the runtime."""

from __future__ import annotations

import dataclasses

import grpc

from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.runtime.config import ServerConfig, setting
from rxcast.runtime.server import Health

SERVICE_NAME = feature_pb2.DESCRIPTOR.services_by_name["FeatureService"].full_name


@dataclasses.dataclass(frozen=True)
class FeatureConfig(ServerConfig):
    """rxcast feature service: ingest, online and historical features on Feast."""

    port: int = setting(50051, "gRPC port; 0 picks a free one (see --ready-file)")
    metrics_port: int = setting(9151, "Prometheus metrics HTTP port; 0 picks a free one, -1 disables")


class FeatureApp:
    name = "feature"

    def __init__(self, config: FeatureConfig):
        self.config = config

    def add_to_server(self, server: grpc.Server, health: Health) -> list[str]:
        feature_pb2_grpc.add_FeatureServiceServicer_to_server(feature_pb2_grpc.FeatureServiceServicer(), server)
        return [SERVICE_NAME]

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
