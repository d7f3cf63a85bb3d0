"""A training job end to end, in-process: load, train, evaluate, publish, gate;
and alias moves by gate, force and rollback."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rxcast.model import FeatureEncoder
from rxcast.model.residuals import POISSON_SCALE
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from rxcast.trainer.evaluation import score
from rxcast.trainer.gate import GatePolicy
from rxcast.trainer.pipeline import Stage
from tests.trainer.conftest import FAST, build_pipeline, spec_for
from tests.trainer.synthetic import WorldSource

WEAK = dataclasses.replace(FAST, num_boost_round=3)


class Recorder:
    def __init__(self):
        self.stages, self.loaded, self.boosted, self.evaluations = [], [], [], []

    def stage(self, stage, message):
        self.stages.append(stage)

    def rows(self, loaded, total):
        self.loaded.append((loaded, total))

    def rounds(self, done, total):
        self.boosted.append((done, total))

    def evaluated(self, evaluation):
        self.evaluations.append(evaluation)


def run(pipeline, spec):
    recorder = Recorder()
    return pipeline.run(spec, recorder, lambda: False), recorder


def test_a_job_publishes_a_complete_version_and_promotes_the_first(tmp_path, world):
    pipeline = build_pipeline(tmp_path, world)
    outcome, progress = run(pipeline, spec_for(world, reason="scheduled", promote=True))
    assert progress.stages == [Stage.LOADING, Stage.TRAINING, Stage.EVALUATING, Stage.PUBLISHING]
    assert progress.boosted[-1] == (FAST.num_boost_round, FAST.num_boost_round)
    assert progress.loaded and progress.loaded[-1][0] > 0
    assert outcome.version == 1 and outcome.promoted
    assert outcome.evaluation.champion is None and outcome.evaluation.champion_version == 0
    assert outcome.evaluation.model.wape < outcome.evaluation.baseline.wape

    manifest = pipeline.registry.get(1).manifest
    assert manifest.reason == "scheduled"
    assert manifest.training_window["end_day"] == "2024-04-09"
    assert manifest.holdout_window == outcome.evaluation.holdout
    assert manifest.params["num_boost_round"] == FAST.num_boost_round
    assert manifest.params["lightgbm"]["objective"] == "tweedie"
    assert set(manifest.priors) >= {"global", "by_category", "by_store", "by_region"}
    assert len(manifest.entities_seen["store_ids"]) == 5
    assert set(manifest.metrics["holdout_error"]) >= {"mean", "std", "mae"}
    assert manifest.metrics["model"]["wape"] == pytest.approx(outcome.evaluation.model.wape)
    assert manifest.library_versions["lightgbm"]
    assert len(manifest.training_data_sha256) == 64
    assert manifest.rows["train"] + manifest.rows["holdout"] < manifest.rows["loaded"]

    # The published file predicts what the job evaluated.
    bundle = pipeline.registry.load_bundle(1)
    holdout = pipeline.source.load(dataclasses.replace(pipeline.source.requests[0]), lambda done, total: None)
    rows = holdout.row_days >= int(np.datetime64(manifest.holdout_window["start_day"]).astype(int))
    predictions = bundle.predict({k: v[rows] for k, v in holdout.columns.items()})
    assert score(holdout.labels[rows], predictions).wape == pytest.approx(outcome.evaluation.model.wape)
    history = pipeline.registry.history("champion")
    assert [(c.to_version, c.kind) for c in history] == [(1, "gate")]
    assert "naive baseline" in history[0].reason and history[0].reason.startswith("scheduled: ")


def test_the_gate_refuses_an_equal_model_and_promotes_a_better_one(tmp_path, world):
    pipeline = build_pipeline(tmp_path, world)
    weak, _ = run(pipeline, spec_for(world, WEAK, promote=True))
    assert weak.promoted or "baseline" in weak.refusal
    pipeline.aliases.set_alias("champion", weak.version, force=True, reason="start from a weak model")

    same, _ = run(pipeline, spec_for(world, WEAK, promote=True))
    # The same data and seed give the same model: no improvement, no promotion.
    assert pipeline.registry.get(same.version).manifest.sha256 == pipeline.registry.get(1).manifest.sha256
    assert same.evaluation.champion == same.evaluation.model
    assert not same.promoted and "does not beat v1" in same.refusal
    assert pipeline.registry.alias("champion").version == 1

    better, _ = run(pipeline, spec_for(world, FAST, promote=True))
    assert better.evaluation.champion_version == 1
    assert better.evaluation.model.wape < better.evaluation.champion.wape
    assert better.promoted
    assert pipeline.registry.alias("champion").version == better.version


def test_set_alias_gates_forces_and_rollback_goes_back(tmp_path, world):
    pipeline = build_pipeline(tmp_path, world)
    aliases, registry = pipeline.aliases, pipeline.registry
    v1 = run(pipeline, spec_for(world, FAST, promote=True))[0].version
    v2 = run(pipeline, spec_for(world, WEAK))[0].version  # judged against v1: worse
    with pytest.raises(FailedPrecondition, match=f"gate refused: v{v2} wape .* does not beat v{v1}"):
        aliases.set_alias("champion", v2, force=False, reason="try")
    assert registry.alias("champion").version == v1

    change = aliases.set_alias("champion", v2, force=True, reason="operator override")
    assert (change.from_version, change.to_version, change.kind) == (v1, v2, "force")
    with pytest.raises(FailedPrecondition, match="already points"):
        aliases.set_alias("champion", v2, force=True, reason="again")

    back = aliases.rollback("champion", 0, "bad release")
    assert (back.from_version, back.to_version, back.kind, back.reason) == (v2, v1, "rollback", "bad release")
    assert registry.alias("champion").version == v1
    with pytest.raises(NotFound):
        aliases.rollback("champion", 99, "nowhere")
    with pytest.raises(FailedPrecondition, match="already points"):
        aliases.rollback("champion", v1, "same")
    with pytest.raises(FailedPrecondition, match="never moved"):
        aliases.rollback("canary", 0, "")
    assert [c.kind for c in registry.history("champion")] == ["rollback", "force", "gate"]


def test_set_alias_rescores_when_the_candidate_was_judged_against_another_version(tmp_path, world):
    pipeline = build_pipeline(tmp_path, world)
    aliases, registry = pipeline.aliases, pipeline.registry
    strong = run(pipeline, spec_for(world, FAST, promote=True))[0].version
    candidate = run(pipeline, spec_for(world, dataclasses.replace(FAST, seed=3)))[0].version
    weak = run(pipeline, spec_for(world, WEAK))[0].version
    aliases.set_alias("champion", weak, force=True, reason="pretend a weak model is serving")
    loads_before = len(pipeline.source.requests)

    change = aliases.set_alias("champion", candidate, force=False, reason="manual promotion")
    assert (change.from_version, change.to_version, change.kind) == (weak, candidate, "gate")
    assert f"beats v{weak}" in change.reason
    # The candidate's holdout days were loaded again to score both versions.
    reload = pipeline.source.requests[loads_before]
    holdout = registry.get(candidate).manifest.holdout_window
    assert reload.start_day == int(np.datetime64(holdout["start_day"]).astype(int))
    assert strong == 1


def test_a_failed_job_publishes_nothing_and_moves_no_alias(tmp_path, world):
    pipeline = build_pipeline(tmp_path, world)
    first = run(pipeline, spec_for(world, FAST, promote=True))[0]
    # Days past the end of the simulated world: no labelled rows at all.
    late = spec_for(world, FAST, start_day=world.last_day + 10, end_day=world.last_day + 60, promote=True)
    with pytest.raises(FailedPrecondition, match="no labelled rows"):
        run(pipeline, late)
    # Too few rows for the configured minimum.
    short = spec_for(world, FAST, start_day=world.last_day - 30, promote=True)
    pipeline.settings = dataclasses.replace(pipeline.settings, min_train_rows=10_000)
    with pytest.raises(FailedPrecondition, match="training rows .* at least 10000 are needed"):
        run(pipeline, short)
    assert pipeline.registry.versions() == [first.version]
    assert pipeline.registry.alias("champion").version == first.version


def test_windows_are_checked_before_any_work(tmp_path, world):
    pipeline = build_pipeline(tmp_path, world)
    with pytest.raises(InvalidArgument, match="end_day .* is before start_day"):
        pipeline.check(spec_for(world, end_day=world.first_day - 1))
    with pytest.raises(InvalidArgument, match="too short: a 10-day holdout after a 7-day embargo needs at least 18"):
        pipeline.check(spec_for(world, end_day=world.first_day + 10))
    with pytest.raises(InvalidArgument, match="alias"):
        pipeline.check(spec_for(world, alias="Not An Alias"))


def test_without_a_horizon_setting_jobs_take_the_sources_definition_of_the_target(tmp_path, world):
    from rxcast.trainer.pipeline import PipelineSettings, TrainingPipeline

    base = build_pipeline(tmp_path, world)
    source = WorldSource(world, horizon_days=5)
    settings = dataclasses.replace(base.settings, horizon_days=0)
    pipeline = TrainingPipeline(source, base.aliases, settings)
    with pytest.raises(InvalidArgument, match="after a 5-day embargo needs at least 16"):
        pipeline.check(spec_for(world, end_day=world.first_day + 10))
    outcome, _ = run(pipeline, spec_for(world))
    assert source.requests[-1].horizon_days == 5
    assert pipeline.registry.get(outcome.version).manifest.horizon_days == 5
    # A source that defines no horizon is refused before any work.
    undefined = TrainingPipeline(WorldSource(world, horizon_days=0), base.aliases, PipelineSettings())
    with pytest.raises(FailedPrecondition, match="no forecast horizon"):
        undefined.check(spec_for(world))


def test_champion_with_another_feature_list_is_scored_on_the_same_rows(tmp_path, world):
    pipeline = build_pipeline(tmp_path, world, GatePolicy("mae", 0.0))
    first = run(pipeline, spec_for(world, FAST, promote=True))[0]
    encoder = FeatureEncoder(pipeline.registry.get(first.version).manifest)
    assert encoder.categorical_indices
    second, _ = run(pipeline, spec_for(world, dataclasses.replace(FAST, num_leaves=7), promote=True))
    # The champion was loaded from the registry and scored on the new holdout.
    assert second.evaluation.champion_version == first.version
    assert second.evaluation.champion.rows == second.evaluation.model.rows
    assert pipeline.source.requests[-1].extra_features[-len(encoder.feature_names) :] == encoder.feature_names


def test_an_unreadable_champion_blocks_the_gate_but_not_the_job(tmp_path, world):
    pipeline = build_pipeline(tmp_path, world)
    first = run(pipeline, spec_for(world, FAST, promote=True))[0]
    model_file = pipeline.registry.get(first.version).model_path
    model_file.write_bytes(model_file.read_bytes()[:-100])  # damaged on disk
    second, _ = run(pipeline, spec_for(world, FAST, promote=True))
    assert second.version == first.version + 1 and not second.promoted
    assert second.evaluation.champion is None and second.evaluation.champion_version == first.version
    assert "could not be loaded" in second.evaluation.champion_note and "sha256" in second.refusal
    assert pipeline.registry.alias("champion").version == first.version


def test_the_reference_profile_is_built_by_the_shared_profile_code(tmp_path, world):
    from rxcast.model import profile

    pipeline = build_pipeline(tmp_path, world)
    outcome, _ = run(pipeline, spec_for(world, FAST))
    manifest = pipeline.registry.get(outcome.version).manifest
    reference = profile.ReferenceProfile.from_dict(manifest.reference_profile)
    stored = manifest.reference_profile
    assert stored["format"] == profile.PROFILE_FORMAT
    assert set(stored["categorical"]) == {"medication_category", "store_region"}
    assert set(stored["numeric"]) == set(manifest.feature_names) - {"medication_category", "store_region"}
    assert stored["prediction"] and stored["error"] and reference is not None
    # The holdout's errors on the scale the drift service computes served errors on, not in units.
    assert reference.error_scale == POISSON_SCALE and reference.error.count == manifest.rows["holdout"]
    assert reference.error.std < manifest.metrics["holdout_error"]["std"] / 2
    # Stratified by region and weekday, and the holdout's error estimator on the windowed numeric features.
    assert reference.strata_by == ("store_region", "day_of_week") and reference.strata
    assert {key.split("|")[0] for key in reference.strata} == set(stored["categorical"]["store_region"]["counts"])
    estimator = reference.error_estimator
    assert estimator is not None and estimator.upper > estimator.daily_mean > 0
    assert set(estimator.features) == set(stored["numeric"]) - {"day_of_year", "week_of_year"} | {"prediction"}
    assert len(estimator.calibration) == len({int(row[0]) for row in estimator.calibration}) >= 2
