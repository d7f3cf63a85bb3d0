"""Fixtures of the trainer tests."""

from __future__ import annotations

import pytest

from rxcast.trainer.gate import GatePolicy
from rxcast.trainer.params import TrainingParams
from rxcast.trainer.pipeline import JobSpec, PipelineSettings, TrainingPipeline
from rxcast.trainer.promotion import AliasManager
from rxcast.trainer.registry import ModelRegistry
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
