"""The predictor service process: configuration and wiring into the runtime."""

from __future__ import annotations

from pathlib import Path

import grpc
from inference import grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc

from rxcast.predictor.batch.runner import BatchRunner, BatchSettings, FeatureServicePopulation
from rxcast.predictor.batch.scoring import DaskScorer
from rxcast.predictor.batch.store import BatchStore
from rxcast.predictor.config import PredictorConfig
from rxcast.predictor.driftlog import DriftSink, PredictionLogQueue
from rxcast.predictor.features import FeatureSource
from rxcast.predictor.holder import ModelHolder
from rxcast.predictor.online import OnlinePredictor, OnlineSettings
from rxcast.predictor.open_inference import DataPlane
from rxcast.predictor.open_inference_grpc import ROLES as INFERENCE_ROLES
from rxcast.predictor.open_inference_grpc import InferenceServicer
from rxcast.predictor.servicer import ROLES as PREDICTOR_ROLES
from rxcast.predictor.servicer import PredictorServicer
from rxcast.predictor.serving import EntityFeatures
from rxcast.predictor.updates import ModelPoller, TrainerModelSource, load_directory
from rxcast.predictor.v1 import predictor_pb2, predictor_pb2_grpc
from rxcast.runtime.errors import RxcastError
from rxcast.runtime.logs import get_logger
from rxcast.runtime.server import NOT_SERVING, SERVING, Health

log = get_logger("rxcast.predictor")

SERVICE_NAME = predictor_pb2.DESCRIPTOR.services_by_name["PredictorService"].full_name
INFERENCE_SERVICE_NAME = grpc_predict_v2_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name


class PredictorApp:
    name = "predictor"

    def __init__(self, config: PredictorConfig):
        self.config = config
        self.holder = ModelHolder(alias=config.alias)
        self.entity_features = EntityFeatures(config.category_feature, config.region_feature)
        self.features = (
            FeatureSource(config.feature_address, config.feature_timeout_seconds) if config.feature_address else None
        )
        self.log_queue = (
            PredictionLogQueue(DriftSink(config.drift_address), config.drift_queue_rows, config.drift_batch_rows)
            if config.drift_address
            else None
        )
        self.poller = (
            ModelPoller(
                self.holder,
                TrainerModelSource(config.trainer_address, download_timeout=config.download_timeout_seconds),
                config.alias,
                config.poll_interval_seconds,
                self.entity_features,
            )
            if config.trainer_address
            else None
        )
        self.online: OnlinePredictor | None = None
        self.runner: BatchRunner | None = None
        self.store: BatchStore | None = None
        if config.mode == "online":
            self.online = OnlinePredictor(
                self.holder,
                self.features,
                self.log_queue,
                OnlineSettings(
                    config.max_keys, config.max_feature_age_seconds, config.fallback_when_features_unavailable
                ),
            )
        else:
            self.store = BatchStore(Path(config.data_dir), config.batch_keep_runs)
            self.runner = BatchRunner(
                self.holder,
                self.store,
                FeatureServicePopulation(self.features) if self.features else None,
                DaskScorer(config.dask_scheduler, config.dask_workers),
                self.log_queue,
                BatchSettings(
                    config.batch_partition_rows, config.max_feature_age_seconds, config.batch_interval_seconds
                ),
                refresh_model=self.poller.poll_once if self.poller else None,
            )

    def add_to_server(self, server: grpc.Server, health: Health) -> list[str]:
        predictor_pb2_grpc.add_PredictorServiceServicer_to_server(
            PredictorServicer(
                self.config.mode, self.holder, self.online, self.runner, self.store, self.config.max_keys
            ),
            server,
        )
        names = [SERVICE_NAME]
        self.roles = [PREDICTOR_ROLES]
        if self.config.mode == "online":
            plane = DataPlane(self.holder, self.config.model_name, self.log_queue)
            grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(plane), server)
            names.append(INFERENCE_SERVICE_NAME)
            self.roles.append(INFERENCE_ROLES)
        # Not ready to forecast until a model is loaded; a load balancer must not route here before.
        health.set(NOT_SERVING, names)
        self.holder.on_swap(lambda model: health.set(SERVING, names))
        return names

    def start(self) -> None:
        if self.config.model_dir:
            try:
                model = load_directory(Path(self.config.model_dir), self.entity_features)
                model.warm_up()
                self.holder.swap(model)
            except (RxcastError, OSError) as exc:
                message = exc.message if isinstance(exc, RxcastError) else str(exc)
                self.holder.record_failure("load", f"model_dir {self.config.model_dir}: {message}")
        if self.log_queue is not None:
            self.log_queue.start()
        if self.poller is not None:
            self.poller.start()
        if self.runner is not None:
            self.runner.start_schedule()

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()
        if self.runner is not None:
            self.runner.stop()
        if self.log_queue is not None:
            self.log_queue.stop()
        if self.features is not None:
            self.features.close()
