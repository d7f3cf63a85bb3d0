"""The drift service process: configuration and wiring into the runtime."""

from __future__ import annotations

import grpc
from prometheus_client import Gauge

from rxcast.drift.clients import ActualsCollector, Trainer
from rxcast.drift.config import DriftConfig
from rxcast.drift.engine import DriftEngine
from rxcast.drift.notify import AlertmanagerNotifier
from rxcast.drift.seasonal_feed import YearOverYearFeed
from rxcast.drift.servicer import ROLES as DRIFT_ROLES
from rxcast.drift.servicer import DriftServicer
from rxcast.drift.v1 import drift_pb2, drift_pb2_grpc
from rxcast.runtime.server import Health

SERVICE_NAME = drift_pb2.DESCRIPTOR.services_by_name["DriftService"].full_name

WINDOWS_AWAITING = Gauge("rxcast_drift_windows_awaiting_scoring", "Closed windows not scored yet.")
AWAITING_ACTUALS = Gauge("rxcast_drift_predictions_awaiting_actuals", "Logged predictions no actual has matched yet.")


class DriftApp:
    name = "drift"

    def __init__(self, config: DriftConfig):
        self.config = config
        self.trainer = Trainer(config.trainer_address, config.retrain_days) if config.trainer_address else None
        self.engine = DriftEngine(
            config.engine_settings(),
            config.data_dir,
            reference_source=self.trainer.reference_profile if self.trainer else None,
            on_alert=self.trainer.retrain if self.trainer and config.retrain_on_alert else None,
            on_incident=self.trainer.retrain_for_incident if self.trainer and config.retrain_on_incident else None,
        )
        WINDOWS_AWAITING.set_function(self.engine.windows_awaiting_scoring)
        AWAITING_ACTUALS.set_function(self.engine.predictions.awaiting_actuals)
        self.notifier = (
            AlertmanagerNotifier(self.engine.incidents, config.alertmanager_url, config.alertmanager_resend_seconds)
            if config.alertmanager_url
            else None
        )
        self.collector = (
            ActualsCollector(
                self.engine,
                config.feature_address,
                config.collect_seconds,
                retry_seconds=config.actuals_retry_seconds,
                horizon_days=self.trainer.horizon_days if self.trainer else None,
            )
            if config.feature_address
            else None
        )

        self.yoy = (
            YearOverYearFeed(self.engine, config.feature_address, config.collect_seconds)
            if config.feature_address and config.yoy_by
            else None
        )

    def add_to_server(self, server: grpc.Server, health: Health) -> list[str]:
        drift_pb2_grpc.add_DriftServiceServicer_to_server(DriftServicer(self.engine), server)
        self.roles = (DRIFT_ROLES,)
        return [SERVICE_NAME]

    def start(self) -> None:
        if self.collector:
            self.collector.start()
        if self.yoy:
            self.yoy.start()
        if self.notifier:
            self.notifier.start()

    def stop(self) -> None:
        if self.collector:
            self.collector.stop()
        if self.yoy:
            self.yoy.stop()
        if self.notifier:
            self.notifier.stop()
        self.engine.close()
        if self.trainer:
            self.trainer.close()
