"""Fixtures of the trainer tests."""

from __future__ import annotations

import pytest

from rxcast.clients import TrainerClient
from rxcast.suite.launcher import ServiceProcess
from rxcast.trainer.gate import GatePolicy
from rxcast.trainer.params import TrainingParams
from rxcast.trainer.pipeline import JobSpec, PipelineSettings, TrainingPipeline
from rxcast.trainer.promotion import AliasManager
from rxcast.trainer.registry import ModelRegistry
from tests.trainer.feature_world import ingest, small_world, start_feature_service
from tests.trainer.synthetic import WorldSource, make_world

#: Few rounds, small trees: enough to beat the naive baseline on the synthetic world.
FAST = TrainingParams(num_boost_round=40, learning_rate=0.15, num_leaves=15, min_data_in_leaf=20, holdout_days=10)


@pytest.fixture(scope="session")
def world():
    return make_world(stores=5, medications=8, days=100)


def build_pipeline(root, world, gate: GatePolicy | None = None) -> TrainingPipeline:
    source = WorldSource(world)
    registry = ModelRegistry(root)
    aliases = AliasManager(registry, gate or GatePolicy("wape", 0.02), source, num_threads=1)
    settings = PipelineSettings(horizon_days=7, num_threads=1, min_train_rows=100, min_holdout_rows=20)
    return TrainingPipeline(source, aliases, settings)


def spec_for(world, params: TrainingParams = FAST, **changes) -> JobSpec:
    return JobSpec(**{"start_day": world.first_day, "end_day": world.last_day, "params": params, **changes})


# -- real processes -----------------------------------------------------------

#: Small defaults so that a job takes a second or two.
TRAINER_ARGS = (
    "--min-train-rows", "200", "--min-holdout-rows", "40",
    "--default-num-boost-round", "30", "--default-learning-rate", "0.1", "--default-num-leaves", "15",
)  # fmt: skip


@pytest.fixture(scope="session")
def sim_world():
    """The simulated world the feature service is seeded with."""
    return small_world()


@pytest.fixture(scope="session")
def feature(tmp_path_factory, sim_world):
    """One feature service process for all the trainer's tests, seeded with `sim_world`."""
    root = tmp_path_factory.mktemp("feature")
    process = start_feature_service(root / "run", root / "data")
    try:
        ingest(process.address, sim_world.records)
        yield process
    finally:
        process.stop()


def start_trainer(root, feature, *extra, env=None, name="trainer") -> ServiceProcess:
    """A trainer process reading from `feature`, with its state under `root`."""
    args = [
        "--feature-address", feature.address,
        "--registry-dir", str(root / "registry"), "--job-dir", str(root / "jobs"),
        *TRAINER_ARGS, *extra,
    ]  # fmt: skip
    process = ServiceProcess("trainer", root / "run", args, env=env, name=name).start().wait_ready(60)
    process.registry_dir = root / "registry"
    return process


@pytest.fixture(scope="session")
def trainer(tmp_path_factory, feature):
    process = start_trainer(tmp_path_factory.mktemp("trainer"), feature)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def client(trainer):
    with TrainerClient(trainer.address, timeout=30) as client:
        yield client
