"""The policy runner in-process on the synthetic world: the refit it ships,
the fair stand-in the gate judges a refitted version by, and retries with
backoff until a failing policy is given up."""

from __future__ import annotations

import dataclasses
import time

from rxcast.model.timebase import day_number, day_text
from rxcast.trainer.dataset import LoadRequest
from rxcast.trainer.evaluation import champion_predictions, score
from rxcast.trainer.jobs import JobManager, JobStore
from rxcast.trainer.policy import Backoff, Policy
from rxcast.trainer.runner import PolicyRunner
from tests.trainer.conftest import FAST, build_pipeline

HORIZON = 7


class Clock:
    def __init__(self):
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _settle(runner: PolicyRunner, jobs: JobManager, timeout: float = 60.0) -> None:
    """Ticks until no policy job is queued or running."""
    deadline = time.monotonic() + timeout
    runner.tick()
    while any(s.state.job_id for s in runner.statuses()):
        assert time.monotonic() < deadline, "policy jobs did not finish"
        time.sleep(0.05)
        runner.tick()


def test_a_policy_job_ships_a_refit_and_the_next_is_judged_against_its_stand_in(tmp_path, world):
    pipeline = build_pipeline(tmp_path / "registry", world)
    jobs = JobManager(pipeline, store=JobStore(tmp_path / "jobs"))
    newest = {"day": world.last_day - 1}
    runner = PolicyRunner(
        tmp_path / "jobs" / "policy.json", jobs, pipeline, FAST, lambda: newest["day"],
        [Policy("online", every_data_days=1, window_days=80, gate_margin=0.0)],
    )  # fmt: skip
    _settle(runner, jobs)
    (status,) = runner.statuses()
    first = jobs.get(status.state.last_job_id)
    assert first.promoted, first.error
    manifest = pipeline.registry.get(first.version).manifest
    labelled_through = newest["day"] - HORIZON
    assert manifest.fit["kind"] == "refit" and manifest.fit["fitted_through"] == day_text(labelled_through)
    assert status.state.fitted_through == labelled_through
    stand_in = pipeline.registry.load_validation_bundle(first.version)
    shipped = pipeline.registry.load_bundle(first.version)
    assert stand_in.manifest.sha256 != shipped.manifest.sha256

    newest["day"] += 1
    _settle(runner, jobs)
    (status,) = runner.statuses()
    second = jobs.get(status.state.last_job_id)
    assert "data cadence" in status.state.why_trained and second.spec.refit
    # The incumbent was scored by the model its holdout judged, on the new holdout's rows.
    window = second.evaluation.holdout
    request = LoadRequest(day_number(window["start_day"], "start"), day_number(window["end_day"], "end"), (), HORIZON)
    holdout = pipeline.source.load(request, lambda loaded, total: None)
    expected = score(holdout.labels, champion_predictions(stand_in, holdout, 1))
    assert second.evaluation.champion_version == first.version
    assert abs(second.evaluation.champion.get("mae") - expected.get("mae")) < 1e-9
    assert abs(second.evaluation.champion.get("mae") - score(
        holdout.labels, champion_predictions(shipped, holdout, 1)).get("mae")) > 1e-6  # fmt: skip


def test_a_failing_policy_retries_with_backoff_then_gives_up_its_triggers(tmp_path, world):
    pipeline = build_pipeline(tmp_path / "registry", world)
    jobs = JobManager(pipeline, store=JobStore(tmp_path / "jobs"))
    clock = Clock()
    # A window too short for the holdout, embargo and a training day: every attempt fails at once.
    policy = Policy("batch", every_data_days=7, window_days=5)
    runner = PolicyRunner(
        tmp_path / "jobs" / "policy.json", jobs, pipeline, FAST, lambda: world.last_day, [policy],
        backoff=Backoff(base_seconds=10, max_seconds=100, max_attempts=3), clock=clock,
    )  # fmt: skip
    trigger, new = runner.submit_trigger("t-1", "concept_drift", (world.last_day - 30 + 1) * 86_400_000, "errors", [])
    assert new and trigger.targets[0].runnable_day <= world.last_day
    runner.tick()
    (status,) = runner.statuses()
    assert status.state.failed_attempts == 1 and "too short" in status.state.why_not_promoted
    assert status.state.retry_time == clock.now + 10 and status.triggers[0].targets[0].state == "waiting"
    clock.now += 9
    runner.tick()
    assert runner.statuses()[0].state.failed_attempts == 1, "no retry before the backoff is over"
    clock.now += 1
    runner.tick()
    (status,) = runner.statuses()
    assert status.state.failed_attempts == 2 and status.state.retry_time == clock.now + 20
    clock.now += 20
    runner.tick()
    (status,) = runner.statuses()
    assert status.state.failed_attempts == 0 and status.state.why_not_promoted.startswith("gave up after 3")
    assert not status.triggers and runner.triggers["t-1"].targets[0].state == "gave_up"
    # Kept across a restart, like the rest of the state.
    again = PolicyRunner(tmp_path / "jobs" / "policy.json", jobs, pipeline, FAST, lambda: world.last_day, [])
    assert again.triggers["t-1"].targets[0].state == "gave_up" and again.policies == {"batch": policy}
    assert dataclasses.asdict(again.states["batch"]) == dataclasses.asdict(status.state)
