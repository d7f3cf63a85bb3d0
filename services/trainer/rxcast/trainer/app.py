"""The trainer service process: configuration and wiring into the runtime."""

from __future__ import annotations

import dataclasses
import logging
import os

import grpc
import lightgbm as lgb

from rxcast.runtime.config import ServerConfig, setting
from rxcast.runtime.server import Health
from rxcast.trainer.feature_source import FeatureServiceSource
from rxcast.trainer.gate import GatePolicy
from rxcast.trainer.jobs import JobManager, JobStore
from rxcast.trainer.params import TrainingParams
from rxcast.trainer.pipeline import PipelineSettings, TrainingPipeline
from rxcast.trainer.promotion import AliasManager
from rxcast.trainer.registry import ModelRegistry
from rxcast.trainer.servicer import TrainerServicer
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc

SERVICE_NAME = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name


@dataclasses.dataclass(frozen=True)
class TrainerConfig(ServerConfig):
    """rxcast trainer service: trains LightGBM models and publishes versions."""

    port: int = setting(50052, "gRPC port; 0 picks a free one (see --ready-file)")
    metrics_port: int = setting(9152, "Prometheus metrics HTTP port; 0 picks a free one, -1 disables")
    feature_address: str = setting("127.0.0.1:50051", "the feature service's gRPC address")
    feature_timeout_seconds: float = setting(3600.0, "longest a training set may take to load")
    registry_dir: str = setting("data/trainer/registry", "the model registry's directory")
    job_dir: str = setting("data/trainer/jobs", "where training job records are kept")
    gate_metric: str = setting("wape", "holdout metric the gate compares: wape, mae or rmse")
    gate_margin: float = setting(0.02, "relative improvement over the alias's version a candidate needs")
    job_workers: int = setting(1, "training jobs run at once (each uses --num-threads cores)")
    max_pending_jobs: int = setting(8, "training jobs queued or running before new ones are refused")
    num_threads: int = setting(0, "LightGBM threads per job; 0 means one per core")
    horizon_days: int = setting(7, "days of demand a forecast covers (the label)")
    min_train_rows: int = setting(500, "fewest training rows a job accepts")
    min_holdout_rows: int = setting(100, "fewest holdout rows a job accepts")
    default_num_boost_round: int = setting(300, "boosting rounds when a request sets none")
    default_learning_rate: float = setting(0.05, "learning rate when a request sets none")
    default_num_leaves: int = setting(63, "leaves per tree when a request sets none")
    default_objective: str = setting("tweedie", "objective when a request sets none: tweedie or poisson suit counts")
    default_holdout_days: int = setting(14, "holdout days when a request sets none")


class TrainerApp:
    name = "trainer"

    def __init__(self, config: TrainerConfig):
        self.config = config
        # LightGBM's own messages (warnings, fatal errors) as JSON log lines.
        lgb.register_logger(logging.getLogger("lightgbm"))
        self.defaults = TrainingParams(
            num_boost_round=config.default_num_boost_round,
            learning_rate=config.default_learning_rate,
            num_leaves=config.default_num_leaves,
            objective=config.default_objective,
            holdout_days=config.default_holdout_days,
        )
        threads = config.num_threads or os.cpu_count() or 1
        self.registry = ModelRegistry(config.registry_dir)
        self.source = FeatureServiceSource(
            config.feature_address, load_timeout=config.feature_timeout_seconds, max_message_mb=config.max_message_mb
        )
        gate = GatePolicy(config.gate_metric, config.gate_margin)
        self.aliases = AliasManager(self.registry, gate, self.source, threads)
        settings = PipelineSettings(
            horizon_days=config.horizon_days,
            num_threads=threads,
            min_train_rows=config.min_train_rows,
            min_holdout_rows=config.min_holdout_rows,
        )
        self.pipeline = TrainingPipeline(self.source, self.aliases, settings)
        self.jobs = JobManager(self.pipeline, config.job_workers, config.max_pending_jobs, JobStore(config.job_dir))

    def add_to_server(self, server: grpc.Server, health: Health) -> list[str]:
        servicer = TrainerServicer(self.registry, self.aliases, self.pipeline, self.jobs, self.defaults)
        trainer_pb2_grpc.add_TrainerServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.jobs.close(timeout=self.config.grace_seconds)
        self.source.close()
