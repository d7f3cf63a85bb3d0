"""The drift service process: configuration and wiring into the runtime."""

from __future__ import annotations

import dataclasses

import grpc

from rxcast.drift.clients import ActualsCollector, Trainer
from rxcast.drift.detectors import DetectorSettings
from rxcast.drift.engine import DriftEngine, EngineSettings
from rxcast.drift.scoring import Thresholds
from rxcast.drift.servicer import DriftServicer
from rxcast.drift.v1 import drift_pb2, drift_pb2_grpc
from rxcast.runtime.config import ServerConfig, setting
from rxcast.runtime.errors import InvalidArgument
from rxcast.runtime.server import Health

SERVICE_NAME = drift_pb2.DESCRIPTOR.services_by_name["DriftService"].full_name

_THRESHOLDS = Thresholds()
_DETECTORS = DetectorSettings()


@dataclasses.dataclass(frozen=True)
class DriftConfig(ServerConfig):
    """rxcast drift service: data, prediction and concept drift, and alerts."""

    port: int = setting(50055, "gRPC port; 0 picks a free one (see --ready-file)")
    metrics_port: int = setting(9155, "Prometheus metrics HTTP port; 0 picks a free one, -1 disables")
    data_dir: str = setting("data/drift", "references, reports, alerts and episodes live here")
    window_rows: int = setting(5000, "a version's window closes at this many rows")
    window_seconds: float = setting(86_400.0, "...or when rows of a later event-time slot this long arrive")
    max_reports: int = setting(1000, "drift reports kept")
    clean_windows: int = setting(3, "consecutive clean windows that end a drift episode")
    concept_clean_samples: int = setting(10_000, "errors without a detection that end a concept-drift episode")
    max_logged_predictions: int = setting(1_000_000, "logged predictions kept for matching actuals")
    ignore_features: str = setting(
        "day_of_week,day_of_year,week_of_year",
        "comma-separated features left out of drift scoring: the calendar moves by construction",
    )
    alpha: float = setting(_THRESHOLDS.alpha, "level for corrected p-values of drift tests")
    correction: str = setting(_THRESHOLDS.correction, "multiple-testing correction: bh, bonferroni or none")
    min_count: int = setting(_THRESHOLDS.min_count, "fewest current values a feature is tested on")
    wasserstein: float = setting(_THRESHOLDS.wasserstein, "effect floor: Wasserstein distance in reference stds")
    psi: float = setting(_THRESHOLDS.psi, "effect floor: population stability index")
    js: float = setting(_THRESHOLDS.js, "effect floor: Jensen-Shannon distance of numeric features (bits)")
    out_of_range: float = setting(_THRESHOLDS.out_of_range, "effect floor: share of values outside the reference range")
    categorical_js: float = setting(_THRESHOLDS.categorical_js, "effect floor: JS distance of categories")
    unseen_mass: float = setting(_THRESHOLDS.unseen_mass, "share of values in unseen categories that fires")
    null_rate_delta: float = setting(_THRESHOLDS.null_rate_delta, "absolute null-rate change that fires")
    adwin_delta: float = setting(_DETECTORS.adwin_delta, "ADWIN confidence (calibrated default)")
    ph_threshold: float = setting(_DETECTORS.ph_threshold, "Page-Hinkley alarm level (calibrated default)")
    trainer_address: str = setting("", "trainer host:port: fetch unknown versions' reference profiles")
    retrain_on_alert: bool = setting(False, "start a training job on the trainer for every new alert")
    retrain_days: int = setting(90, "days of data a drift-triggered training job uses")
    feature_address: str = setting("", "feature service host:port: collect actuals of logged predictions")
    collect_seconds: float = setting(60.0, "how often to ask the feature service for actuals")
    actuals_retry_seconds: float = setting(
        3600.0, "how long a prediction whose actual was not there yet waits before it is asked for again"
    )

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            window_rows=self.window_rows,
            window_seconds=self.window_seconds,
            max_reports=self.max_reports,
            clean_windows=self.clean_windows,
            concept_clean_samples=self.concept_clean_samples,
            max_logged_predictions=self.max_logged_predictions,
            ignore_features=tuple(name.strip() for name in self.ignore_features.split(",") if name.strip()),
            thresholds=dataclasses.replace(
                _THRESHOLDS, alpha=self.alpha, correction=self.correction, min_count=self.min_count,
                wasserstein=self.wasserstein, psi=self.psi, js=self.js, out_of_range=self.out_of_range, categorical_js=self.categorical_js,
                unseen_mass=self.unseen_mass, null_rate_delta=self.null_rate_delta,
            ),
            detectors=dataclasses.replace(_DETECTORS, adwin_delta=self.adwin_delta, ph_threshold=self.ph_threshold),
        )


class DriftApp:
    name = "drift"

    def __init__(self, config: DriftConfig):
        self.config = config
        if config.retrain_on_alert and not config.trainer_address:
            raise InvalidArgument("--retrain-on-alert needs --trainer-address")
        if config.retrain_days < 1 or config.collect_seconds <= 0 or config.actuals_retry_seconds < 0:
            raise InvalidArgument(
                "--retrain-days must be >= 1, --collect-seconds > 0 and --actuals-retry-seconds >= 0"
            )
        self.trainer = Trainer(config.trainer_address, config.retrain_days) if config.trainer_address else None
        self.engine = DriftEngine(
            config.engine_settings(),
            config.data_dir,
            reference_source=self.trainer.reference_profile if self.trainer else None,
            on_alert=self.trainer.retrain if self.trainer and config.retrain_on_alert else None,
        )
        self.collector = (
            ActualsCollector(
                self.engine, config.feature_address, config.collect_seconds,
                retry_seconds=config.actuals_retry_seconds,
                horizon_days=self.trainer.horizon_days if self.trainer else None,
            )
            if config.feature_address else None
        )

    def add_to_server(self, server: grpc.Server, health: Health) -> list[str]:
        drift_pb2_grpc.add_DriftServiceServicer_to_server(DriftServicer(self.engine), server)
        return [SERVICE_NAME]

    def start(self) -> None:
        if self.collector:
            self.collector.start()

    def stop(self) -> None:
        if self.collector:
            self.collector.stop()
        self.engine.close()
        if self.trainer:
            self.trainer.close()
