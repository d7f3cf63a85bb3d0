"""The feature service process: configuration and wiring into the runtime."""

from __future__ import annotations

import os
import threading

import grpc

from rxcast.feature.config import FeatureConfig
from rxcast.feature.v1 import feature_pb2, feature_pb2_grpc
from rxcast.runtime.logs import configure_logging, get_logger
from rxcast.runtime.server import Health

# Feast reports usage over the network unless told not to; rxcast runs offline.
os.environ.setdefault("FEAST_USAGE", "False")

SERVICE_NAME = feature_pb2.DESCRIPTOR.services_by_name["FeatureService"].full_name
FEAST_SERVING_NAME = "feast.serving.ServingService"

__all__ = ["FeatureApp", "FeatureConfig"]

log = get_logger("rxcast.feature")


class FeatureApp:
    name = "feature"

    def __init__(self, config: FeatureConfig):
        from rxcast.feature.store import InventoryFeatureStore

        # Opening the store logs (history loaded, batches recovered): as JSON, like the rest.
        configure_logging(self.name, config.log_level)
        self.config = config
        self.store = InventoryFeatureStore.open(config)
        # Checked before each ingest; the runtime reports it in health and watches for room.
        self.disk = self.store.disk
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def add_to_server(self, server: grpc.Server, health: Health) -> list[str]:
        from feast.protos.feast.serving import ServingService_pb2_grpc

        from rxcast.feature import feast_serving, servicer
        from rxcast.feature.feast_serving import FeastServingServicer
        from rxcast.feature.servicer import FeatureServicer

        self.roles = (servicer.ROLES, feast_serving.ROLES)

        feature_pb2_grpc.add_FeatureServiceServicer_to_server(FeatureServicer(self.store), server)
        ServingService_pb2_grpc.add_ServingServiceServicer_to_server(FeastServingServicer(self.store), server)
        return [SERVICE_NAME, FEAST_SERVING_NAME]

    def start(self) -> None:
        if self.config.registry_refresh_seconds > 0:
            self._refresher = threading.Thread(target=self._refresh_registry, name="registry-refresh", daemon=True)
            self._refresher.start()

    def _refresh_registry(self) -> None:
        while not self._stop.wait(self.config.registry_refresh_seconds):
            try:
                self.store.refresh_registry()
            except Exception:
                log.exception("registry_refresh_failed")

    def stop(self) -> None:
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout=5)
        self.store.close()
