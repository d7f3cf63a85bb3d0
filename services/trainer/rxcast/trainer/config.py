"""The trainer service's settings (flags and RXCAST_TRAINER_* variables)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from rxcast.runtime.config import GrpcPort, MetricsPort, MinFreeMb, ServerSettings
from rxcast.runtime.errors import InvalidArgument
from rxcast.trainer.evaluation import MetricName
from rxcast.trainer.params import Objective
from rxcast.trainer.policy import parse_policies


class TrainerConfig(ServerSettings):
    """rxcast trainer service: trains LightGBM models and publishes versions."""

    model_config = SettingsConfigDict(env_prefix="RXCAST_TRAINER_")

    port: GrpcPort = 50052
    metrics_port: MetricsPort = 9152
    feature_address: str = Field("127.0.0.1:50051", min_length=1, description="the feature service's gRPC address")
    feature_timeout_seconds: float = Field(3600.0, gt=0, description="longest a training set may take to load")
    registry_dir: str = Field("data/trainer/registry", min_length=1, description="the model registry's directory")
    job_dir: str = Field(
        "data/trainer/jobs", min_length=1, description="where training job records and policy state are kept"
    )
    min_free_mb: MinFreeMb = 64
    gate_metric: MetricName = Field("wape", description="holdout metric the gate compares (lower is better)")
    gate_margin: float = Field(
        0.02, ge=0, lt=1, description="relative improvement over the alias's version a candidate needs"
    )
    job_workers: int = Field(1, ge=1, description="training jobs run at once (each uses --num-threads cores)")
    max_pending_jobs: int = Field(8, ge=1, description="training jobs queued or running before new ones are refused")
    num_threads: int = Field(0, ge=0, description="LightGBM threads per job; 0 means one per core")
    dask_scheduler: str = Field(
        "",
        description="Dask scheduler address (tcp://host:port): fit models across its workers with lightgbm.dask; "
        "empty: fit in this process",
    )
    min_train_rows: int = Field(500, ge=1, description="fewest training rows a job accepts")
    min_holdout_rows: int = Field(100, ge=1, description="fewest holdout rows a job accepts")
    policies: str = Field(
        "",
        description="training policies (JSON list of objects: alias, every_data_days, every_wall_seconds, "
        "window_days, holdout_days, follow_triggers) for aliases that have none stored yet; empty: none",
    )
    policy_poll_seconds: float = Field(
        5.0, gt=0, description="how often policies read the newest business day and start due jobs"
    )
    ship_refit: bool = Field(
        True, description="policy jobs ship a model refitted on every labelled row once the holdout judged it"
    )
    retry_base_seconds: float = Field(
        30.0, gt=0, description="backoff before a failed policy job's first retry (doubles)"
    )
    retry_max_attempts: int = Field(4, ge=1, description="failed attempts of a policy job before it is given up")
    # The defaults' ranges are TrainingParams' own: a request's params are checked there.
    default_num_boost_round: int = Field(300, ge=1, le=100_000, description="boosting rounds when a request sets none")
    default_learning_rate: float = Field(0.05, gt=0, le=1, description="learning rate when a request sets none")
    default_num_leaves: int = Field(63, ge=2, le=131_072, description="leaves per tree when a request sets none")
    default_objective: Objective = Field(
        "tweedie", description="objective when a request sets none: tweedie or poisson suit counts"
    )
    default_holdout_days: int = Field(14, ge=1, le=366, description="holdout days when a request sets none")

    @field_validator("policies")
    @classmethod
    def _policies_parse(cls, value: str) -> str:
        try:
            parse_policies(value)
        except InvalidArgument as exc:
            raise ValueError(exc.message) from None
        return value

    @property
    def guarded_dir(self) -> str:
        """The directory whose free space is the service's health (rxcast.runtime.disk):
        the registry, where every published version is written."""
        return self.registry_dir
