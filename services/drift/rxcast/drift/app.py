"""The drift service process: configuration and wiring into the runtime."""

from __future__ import annotations

import dataclasses

import grpc

from rxcast.drift.v1 import drift_pb2, drift_pb2_grpc
from rxcast.runtime.config import ServerConfig, setting
from rxcast.runtime.server import Health

SERVICE_NAME = drift_pb2.DESCRIPTOR.services_by_name["DriftService"].full_name


@dataclasses.dataclass(frozen=True)
class DriftConfig(ServerConfig):
    """rxcast drift service: data, prediction and concept drift, and alerts."""

    port: int = setting(50055, "gRPC port; 0 picks a free one (see --ready-file)")
    metrics_port: int = setting(9155, "Prometheus metrics HTTP port; 0 picks a free one, -1 disables")


class DriftApp:
    name = "drift"

    def __init__(self, config: DriftConfig):
        self.config = config

    def add_to_server(self, server: grpc.Server, health: Health) -> list[str]:
        drift_pb2_grpc.add_DriftServiceServicer_to_server(drift_pb2_grpc.DriftServiceServicer(), server)
        return [SERVICE_NAME]

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
