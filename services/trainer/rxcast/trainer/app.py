"""The trainer service process: configuration and wiring into the runtime."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc
import lightgbm as lgb

from rxcast.runtime.server import Health
from rxcast.trainer import metrics
from rxcast.trainer.config import TrainerConfig
from rxcast.trainer.feature_source import FeatureServiceSource
from rxcast.trainer.gate import GatePolicy
from rxcast.trainer.jobs import JobManager, JobStore
from rxcast.trainer.params import TrainingParams
from rxcast.trainer.pipeline import PipelineSettings, TrainingPipeline
from rxcast.trainer.policy import Backoff, parse_policies
from rxcast.trainer.promotion import AliasManager
from rxcast.trainer.registry import ModelRegistry
from rxcast.trainer.runner import PolicyRunner
from rxcast.trainer.servicer import ROLES as TRAINER_ROLES
from rxcast.trainer.servicer import TrainerServicer
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc

#: Policies, their progress and triggers, next to the job records they refer to.
POLICY_FILE = "policy.json"

SERVICE_NAME = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name


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
            num_threads=threads,
            min_train_rows=config.min_train_rows,
            min_holdout_rows=config.min_holdout_rows,
            dask_scheduler=config.dask_scheduler,
        )
        self.pipeline = TrainingPipeline(self.source, self.aliases, settings)
        self.jobs = JobManager(self.pipeline, config.job_workers, config.max_pending_jobs, JobStore(config.job_dir))
        self.policies = PolicyRunner(
            Path(config.job_dir) / POLICY_FILE,
            self.jobs,
            self.pipeline,
            self.defaults,
            self.source.newest_day,
            parse_policies(config.policies),
            refit=config.ship_refit,
            backoff=Backoff(config.retry_base_seconds, max_attempts=config.retry_max_attempts),
            poll_seconds=config.policy_poll_seconds,
        )
        metrics.JOBS_QUEUED.set_function(self.jobs.queued)
        metrics.TRIGGERS_WAITING.set_function(self.policies.waiting_triggers)

    def add_to_server(self, server: grpc.Server, health: Health) -> list[str]:
        servicer = TrainerServicer(self.registry, self.aliases, self.pipeline, self.jobs, self.defaults, self.policies)
        trainer_pb2_grpc.add_TrainerServiceServicer_to_server(servicer, server)
        self.roles = (TRAINER_ROLES,)
        return [SERVICE_NAME]

    def start(self) -> None:
        self.policies.start()

    def stop(self) -> None:
        self.policies.stop()
        self.jobs.close(timeout=self.config.grace_seconds)
        self.source.close()
        if self.pipeline.dask is not None:
            self.pipeline.dask.close()
