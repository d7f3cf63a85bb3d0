"""Training policies on the real trainer and feature service, as processes:
ingesting a new business day starts the online alias's job; a drift trigger
waits for labelled rows from after the change, then trains on them; a
restart keeps schedules and pending triggers."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from rxcast.clients import TrainerClient
from rxcast.model.timebase import day_end_ms
from rxcast.trainer.v1 import trainer_pb2
from tests.trainer.conftest import start_trainer
from tests.trainer.feature_world import ingest, small_world, start_feature_service

DAYS = 110
SEEDED = 100
POLICIES = json.dumps(
    [
        {"alias": "online", "every_data_days": 1, "window_days": 90, "holdout_days": 10, "follow_triggers": False},
        {"alias": "batch", "window_days": 60, "holdout_days": 3, "follow_triggers": True},
    ]
)
ARGS = ("--policies", POLICIES, "--policy-poll-seconds", "0.2", "--num-threads", "1")


@pytest.fixture(scope="module")
def world():
    return small_world(n_days=DAYS)


@pytest.fixture(scope="module")
def services(tmp_path_factory, world):
    root = tmp_path_factory.mktemp("policy")
    feature = start_feature_service(root / "run", root / "feature")
    days = world.records["business_day"]
    ingest(feature.address, world.records[days < days.min() + pd_days(SEEDED)])
    trainer = start_trainer(root / "trainer", feature, *ARGS)
    state = {"trainer": trainer}
    yield feature, state, root
    state["trainer"].stop()
    feature.stop()


def pd_days(n: int):
    import pandas as pd

    return pd.Timedelta(days=n)


def _day(world, index: int) -> dt.date:
    return world.records["business_day"].min().date() + dt.timedelta(days=index)


def _ingest_day(feature, world, index: int) -> None:
    day = world.records["business_day"].min() + pd_days(index)
    ingest(feature.address, world.records[world.records["business_day"] == day])


def _settled(client: TrainerClient, day: dt.date, timeout: float = 120.0) -> dict:
    """The policies once they have acted on `day` and no job of theirs is queued or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = {s.policy.alias: s for s in client.policies()}
        if all(s.data_day == day.isoformat() and not s.busy for s in statuses.values()):
            return statuses
        time.sleep(0.2)
    raise AssertionError(f"policies did not settle on {day}: {client.policies()}")


def test_ingesting_a_day_starts_the_online_job_and_a_trigger_waits_for_post_change_labels(services, world):
    feature, state, root = services
    with TrainerClient(state["trainer"].address, timeout=60) as client:
        first = _settled(client, _day(world, SEEDED - 1))
        assert first["online"].jobs_started == 1 and "no job yet" in first["online"].why_trained
        assert first["batch"].jobs_started == 0, "the batch policy has no cadence: it waits for triggers"
        job = client.job(first["online"].last_job_id)
        assert job.state == trainer_pb2.JOB_STATE_SUCCEEDED and job.request.alias == "online", job.error
        # Every decision says why: promoted, or the gate's refusal.
        assert job.promoted == (client.latest("online").version == job.version)
        assert first["online"].why_not_promoted == ("" if job.promoted else job.error)

        _ingest_day(feature, world, SEEDED)
        after = _settled(client, _day(world, SEEDED))
        assert after["online"].jobs_started == 2 and "data cadence" in after["online"].why_trained
        version = client.job(after["online"].last_job_id).version
        manifest = client.manifest(version)
        # The shipped model learnt from the newest labelled day (horizon 7 before the newest ingested day).
        fit = manifest["fit"]
        assert (fit["kind"], fit["fitted_through"], fit["rows"]) == (
            "refit", (_day(world, SEEDED) - dt.timedelta(days=7)).isoformat(), manifest["rows"]["loaded"]
        )  # fmt: skip

        changed = _day(world, SEEDED)
        changed_ms = int(day_end_ms((changed - dt.date(1970, 1, 1)).days))
        answer = client.submit_trigger("drift-v1-x", "data_drift", changed_ms, "units_on_hand drifted")
        assert answer.accepted and not answer.already_known
        # Labels through newest - 7 and a 3-day holdout wholly after the change: changed + 7 + 3 - 1.
        runnable = changed + dt.timedelta(days=9)
        assert [(t.alias, t.runnable_day, t.state) for t in answer.trigger.targets] == [
            ("batch", runnable.isoformat(), "waiting")
        ]
        again = client.submit_trigger("drift-v1-x", "data_drift", changed_ms, "the same trigger again")
        assert not again.accepted and again.already_known and again.trigger.reason == "units_on_hand drifted"

        # A restart keeps the schedule and the pending trigger.
        state["trainer"].stop()
    state["trainer"] = start_trainer(root / "trainer", feature, *ARGS)
    with TrainerClient(state["trainer"].address, timeout=60) as client:
        kept = {s.policy.alias: s for s in client.policies()}
        assert kept["online"].jobs_started == 2 and kept["online"].data_day == changed.isoformat()
        assert [t.trigger_id for t in kept["batch"].pending_triggers] == ["drift-v1-x"]
        assert kept["batch"].next_run_day == runnable.isoformat()

        for index in range(SEEDED + 1, SEEDED + 9):
            _ingest_day(feature, world, index)
        waiting = _settled(client, _day(world, SEEDED + 8))
        assert waiting["batch"].jobs_started == 0 and waiting["batch"].pending_triggers

        _ingest_day(feature, world, SEEDED + 9)
        done = _settled(client, runnable)
        assert done["batch"].jobs_started == 1 and "trigger drift-v1-x" in done["batch"].why_trained
        assert not done["batch"].pending_triggers
        job = client.job(done["batch"].last_job_id)
        assert job.evaluation.holdout.start_day == changed.isoformat(), "the gate judged on post-change days only"
        fit = client.manifest(job.version)["fit"]
        assert fit["fitted_through"] == (runnable - dt.timedelta(days=7)).isoformat() >= changed.isoformat()


def test_the_cli_shows_and_sets_policies(services):
    import subprocess
    import sys

    _, state, _ = services

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "rxcast.trainer.cli", "--address", state["trainer"].address, *args],
            capture_output=True, check=False, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    shown = cli("policies")
    assert "online: every 1 data day(s)" in shown and "why trained:" in shown and "next run at:" in shown
    cli("policy", "weekly", "--every-data-days", "7", "--window-days", "60", "--gate-margin", "0")
    assert "weekly: every 7 data day(s); window 60 d" in cli("policies")
