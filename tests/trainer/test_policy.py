"""Training policies as pure decisions: cadence, deferral, dedupe of reasons, backoff."""

from __future__ import annotations

import pytest

from rxcast.runtime.errors import InvalidArgument
from rxcast.trainer.policy import (
    WAITING,
    AliasState,
    Backoff,
    Policy,
    Target,
    Trigger,
    due,
    next_run,
    parse_policies,
    runnable_day,
)

DAY = 20_000


def _trigger(alias: str, ready: int, state: str = WAITING, trigger_id: str = "t1") -> Trigger:
    return Trigger(trigger_id, "data_drift", ready - 13, 0, "stock drifted", [Target(alias, ready, state)], 0.0)


def test_the_data_cadence_counts_newest_business_days_since_the_last_job():
    policy = Policy("batch", every_data_days=7)
    assert "no job yet" in due(policy, AliasState("batch"), [], DAY, 0.0).reason
    state = AliasState("batch", last_run_day=DAY)
    assert due(policy, state, [], DAY + 6, 1e9) is None
    run = due(policy, state, [], DAY + 7, 0.0)
    assert run is not None and "7 day(s) past" in run.reason
    assert next_run(policy, state, [])[0] == DAY + 7


def test_the_wall_clock_cadence_runs_on_its_own_time():
    policy = Policy("nightly", every_wall_seconds=3600)
    state = AliasState("nightly", last_run_day=DAY, last_run_time=1000.0)
    assert due(policy, state, [], DAY + 30, 4599.0) is None
    assert "wall-clock" in due(policy, state, [], DAY, 4600.0).reason
    assert next_run(policy, state, [])[1] == 4600.0


def test_deferral_comes_from_horizon_holdout_and_embargo():
    # Labels through D - 7; a 7-day holdout wholly after a change on day C: D >= C + 13.
    assert runnable_day(DAY, horizon_days=7, holdout_days=7, refit=True) == DAY + 13
    assert runnable_day(DAY, horizon_days=3, holdout_days=2, refit=True) == DAY + 4
    # Without the refit the model learns only before the embargo: one training day after the change.
    assert runnable_day(DAY, horizon_days=7, holdout_days=7, refit=False) == DAY + 21


def test_a_trigger_waits_for_its_day_and_names_itself_in_the_reason():
    policy = Policy("online")
    state = AliasState("online", last_run_day=DAY)
    waiting = [_trigger("online", DAY + 5), _trigger("batch", DAY + 1, trigger_id="t2")]
    assert due(policy, state, waiting, DAY + 4, 0.0) is None
    run = due(policy, state, waiting, DAY + 5, 0.0)
    assert run.trigger_ids == ("t1",) and "trigger t1 (data_drift" in run.reason
    assert "trigger t1" in next_run(policy, state, waiting)[2]


def test_one_job_serves_every_reason_due_at_once():
    policy = Policy("online", every_data_days=1)
    run = due(policy, AliasState("online", last_run_day=DAY), [_trigger("online", DAY + 1)], DAY + 1, 0.0)
    assert len(run.reasons) == 2 and run.trigger_ids == ("t1",)


def test_a_running_job_or_a_backoff_holds_the_next_one():
    policy = Policy("online", every_data_days=1)
    assert due(policy, AliasState("online", last_run_day=DAY, job_id="job-1"), [], DAY + 9, 0.0) is None
    failed = AliasState("online", last_run_day=DAY, failed_attempts=2, retry_time=500.0, retry_reason="cadence")
    assert due(policy, failed, [], DAY + 9, 499.0) is None
    assert due(policy, failed, [], DAY + 9, 500.0).reason == "retry 2: cadence"


def test_backoff_doubles_up_to_its_cap():
    backoff = Backoff(base_seconds=10, max_seconds=50)
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 50]


@pytest.mark.parametrize(
    "text, words",
    [
        ("{", "not JSON"),
        ('{"alias": "online"}', "JSON list"),
        ('[{"alias": "online", "cadence": 1}]', "cadence"),
        ('[{"alias": "online", "window_days": 0}]', "window_days"),
        ('[{"alias": "a"}, {"alias": "a"}]', "twice"),
    ],
)
def test_bad_policies_are_refused_with_the_reason(text, words):
    with pytest.raises(InvalidArgument, match=words):
        parse_policies(text)


def test_policies_parse_from_json():
    (online,) = parse_policies('[{"alias": "online", "every_data_days": 1, "holdout_days": 3}]')
    assert online == Policy("online", every_data_days=1, holdout_days=3)
