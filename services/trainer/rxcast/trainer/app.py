"""The trainer service process: configuration and wiring into the runtime."""

from __future__ import annotations

import dataclasses

import grpc

from rxcast.runtime.config import ServerConfig, setting
from rxcast.runtime.server import Health
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc

SERVICE_NAME = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name


@dataclasses.dataclass(frozen=True)
class TrainerConfig(ServerConfig):
    """rxcast trainer service: trains LightGBM models and publishes versions."""

    port: int = setting(50052, "gRPC port; 0 picks a free one (see --ready-file)")
    metrics_port: int = setting(9152, "Prometheus metrics HTTP port; 0 picks a free one, -1 disables")


class TrainerApp:
    name = "trainer"

    def __init__(self, config: TrainerConfig):
        self.config = config

    def add_to_server(self, server: grpc.Server, health: Health) -> list[str]:
        trainer_pb2_grpc.add_TrainerServiceServicer_to_server(trainer_pb2_grpc.TrainerServiceServicer(), server)
        return [SERVICE_NAME]

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
