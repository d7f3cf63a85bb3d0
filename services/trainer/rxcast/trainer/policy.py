"""Training policies: when the trainer trains an alias on its own, and why.

Pure domain code, no threads and no I/O: the runner (rxcast.trainer.runner)
feeds it the feature service's newest business day and the wall clock and
starts the jobs it asks for.

An alias is due when its data cadence has passed (the newest business day has
advanced `every_data_days` since its last job: data time, so a replayed clock
and a real one behave alike), when its wall-clock cadence has passed, when a
trigger naming it has become runnable, or when a failed job's backoff is over.
A trigger is runnable once the alias's job would judge the candidate on
labelled rows from after the change (see `runnable_day`). One job serves
every reason due at once; a failed job is retried with exponential backoff up
to `max_attempts` times, then its triggers are given up with the error.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from rxcast.model.timebase import day_text
from rxcast.runtime.errors import InvalidArgument
from rxcast.trainer.registry import alias_name

TRIGGER_KINDS = ("data_drift", "concept_drift", "performance")

WAITING, RUNNING, DONE, GAVE_UP = "waiting", "running", "done", "gave_up"


@dataclasses.dataclass(frozen=True)
class Policy:
    """How one alias is kept current."""

    alias: str
    every_data_days: int = 0
    every_wall_seconds: int = 0
    window_days: int = 90
    holdout_days: int = 0
    follow_triggers: bool = True
    #: The gate's relative margin for this alias's jobs; None: the trainer's.
    gate_margin: float | None = None

    def __post_init__(self) -> None:
        alias_name(self.alias)
        if self.gate_margin is not None and not 0.0 <= self.gate_margin < 1.0:
            raise InvalidArgument(f"gate_margin: must be in [0, 1), got {self.gate_margin}")
        if self.every_data_days < 0:
            raise InvalidArgument(f"every_data_days: must be >= 0, got {self.every_data_days}")
        if self.every_wall_seconds < 0:
            raise InvalidArgument(f"every_wall_seconds: must be >= 0, got {self.every_wall_seconds}")
        if self.window_days <= 0:
            raise InvalidArgument(f"window_days: must be > 0, got {self.window_days}")
        if not 0 <= self.holdout_days <= 366:
            raise InvalidArgument(f"holdout_days: must be in 0..366, got {self.holdout_days}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_policies(text: str) -> list[Policy]:
    """Policies from a JSON list of objects with Policy's fields (the --policies setting)."""
    if not text.strip():
        return []
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"policies: not JSON: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidArgument("policies: must be a JSON list of objects")
    try:
        policies = [Policy(**item) for item in items]
    except TypeError as exc:
        raise InvalidArgument(f"policies: {exc}") from None
    aliases = [p.alias for p in policies]
    if len(set(aliases)) != len(aliases):
        raise InvalidArgument(f"policies: an alias appears twice in {aliases}")
    return policies


def runnable_day(changed_day: int, horizon_days: int, holdout_days: int, refit: bool) -> int:
    """The first newest business day on which an alias's job learns from the change.

    A job on newest day D has labels through D - horizon (a row's label is the
    demand of the horizon after it) and holds out the last `holdout_days` of
    them; the gate judges the candidate on the holdout, so the holdout must lie
    wholly after the change: D - horizon - holdout + 1 >= changed. A shipped
    model refitted on all labelled rows then learns from those days too.
    Without the refit, the model learns only from rows before the embargo
    (`horizon_days` before the holdout), so it must wait that much longer for
    one post-change training day.
    """
    day = changed_day + horizon_days + holdout_days - 1
    return day if refit else day + horizon_days + 1


@dataclasses.dataclass
class Target:
    """One alias's part of a trigger."""

    alias: str
    runnable_day: int
    state: str = WAITING
    job_id: str = ""
    outcome: str = ""


@dataclasses.dataclass
class Trigger:
    trigger_id: str
    kind: str
    changed_day: int
    changed_ms: int
    reason: str
    targets: list[Target]
    received_time: float

    def describe(self) -> str:
        return f"trigger {self.trigger_id} ({self.kind} since {day_text(self.changed_day)}): {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trigger:
        return cls(**{**data, "targets": [Target(**t) for t in data["targets"]]})


@dataclasses.dataclass
class AliasState:
    """What the policy of one alias has done and is doing."""

    alias: str
    #: The newest business day the policy has looked at.
    data_day: int | None = None
    #: The newest business day when the last job started, and the wall time.
    last_run_day: int | None = None
    last_run_time: float = 0.0
    job_id: str = ""
    last_job_id: str = ""
    why_trained: str = ""
    why_not_promoted: str = ""
    #: Failed attempts in a row, and when the next may start.
    failed_attempts: int = 0
    retry_time: float = 0.0
    retry_reason: str = ""
    jobs_started: int = 0
    fitted_through: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Run:
    """A job the policy wants started now."""

    alias: str
    reasons: tuple[str, ...]
    trigger_ids: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclasses.dataclass(frozen=True)
class Backoff:
    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    max_attempts: int = 4

    def delay(self, failures: int) -> float:
        return min(self.max_seconds, self.base_seconds * 2 ** max(0, failures - 1))


def due(policy: Policy, state: AliasState, triggers: list[Trigger], newest_day: int, now: float) -> Run | None:
    """The job `policy` wants now, given the newest business day and the wall clock; None if none."""
    if state.job_id:
        return None
    if state.failed_attempts:
        if now < state.retry_time:
            return None
        return Run(
            policy.alias,
            (f"retry {state.failed_attempts}: {state.retry_reason}",),
            _ready(triggers, policy, newest_day),
        )
    reasons = []
    if policy.every_data_days:
        if state.last_run_day is None:
            reasons.append(f"data cadence: no job yet (newest business day {day_text(newest_day)})")
        elif newest_day - state.last_run_day >= policy.every_data_days:
            reasons.append(
                f"data cadence: newest business day {day_text(newest_day)} is {newest_day - state.last_run_day} "
                f"day(s) past the last job's {day_text(state.last_run_day)} (every {policy.every_data_days})"
            )
    if policy.every_wall_seconds and now - state.last_run_time >= policy.every_wall_seconds:
        reasons.append(f"wall-clock cadence: every {policy.every_wall_seconds} s")
    ready = _ready(triggers, policy, newest_day)
    by_id = {t.trigger_id: t for t in triggers}
    reasons.extend(by_id[i].describe() for i in ready)
    if not reasons:
        return None
    return Run(policy.alias, tuple(reasons), ready)


def _ready(triggers: list[Trigger], policy: Policy, newest_day: int) -> tuple[str, ...]:
    return tuple(
        t.trigger_id
        for t in triggers
        for target in t.targets
        if target.alias == policy.alias and target.state == WAITING and target.runnable_day <= newest_day
    )


def next_run(policy: Policy, state: AliasState, triggers: list[Trigger]) -> tuple[int | None, float | None, str]:
    """(newest business day, wall time, in words) at which the alias's next job runs."""
    if state.job_id:
        return None, None, f"job {state.job_id} is running"
    if state.failed_attempts:
        return None, state.retry_time, f"retry {state.failed_attempts} after backoff"
    days = []
    words = []
    if policy.every_data_days:
        day = (state.last_run_day + policy.every_data_days) if state.last_run_day is not None else state.data_day
        if day is not None:
            days.append(day)
            words.append(f"data cadence on newest business day {day_text(day)}")
    waiting = [
        (target.runnable_day, t.trigger_id)
        for t in triggers
        for target in t.targets
        if target.alias == policy.alias and target.state == WAITING
    ]
    if waiting:
        day, trigger_id = min(waiting)
        days.append(day)
        words.append(f"trigger {trigger_id} on newest business day {day_text(day)}")
    wall = None
    if policy.every_wall_seconds:
        wall = state.last_run_time + policy.every_wall_seconds
        words.append(f"wall-clock cadence every {policy.every_wall_seconds} s")
    if not words:
        return None, None, "nothing scheduled (no cadence, no trigger waiting)"
    return (min(days) if days else None), wall, "; ".join(words)
