"""The policy runner: applies the training policies on a timer.

Every `poll_seconds` it reads the feature service's newest business day,
settles the jobs it started (promoted or why not; failed: backoff, then give
up), and starts the jobs the policies want now (rxcast.trainer.policy). Its
state (policies, per-alias progress, triggers) is one JSON file written on
every change, so a restart keeps schedules and pending triggers; a job the
restart interrupted reads as failed and is retried.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rxcast.model.timebase import as_of_day, day_number, day_text
from rxcast.runtime.durable import write_json
from rxcast.runtime.errors import InvalidArgument, RxcastError
from rxcast.runtime.logs import get_logger
from rxcast.trainer import metrics
from rxcast.trainer.jobs import JobManager
from rxcast.trainer.params import TrainingParams
from rxcast.trainer.pipeline import JobSpec, Stage, TrainingPipeline
from rxcast.trainer.policy import (
    DONE,
    GAVE_UP,
    RUNNING,
    TRIGGER_KINDS,
    WAITING,
    AliasState,
    Backoff,
    Policy,
    Target,
    Trigger,
    due,
    next_run,
    runnable_day,
)
from rxcast.trainer.registry import alias_name

log = get_logger("rxcast.trainer.runner")

#: Settled triggers kept in the state file (waiting and running ones are always kept).
KEEP_SETTLED_TRIGGERS = 500


@dataclasses.dataclass(frozen=True)
class Status:
    """One alias's policy and where it stands."""

    policy: Policy
    state: AliasState
    busy: bool
    next_day: int | None
    next_time: float | None
    next_words: str
    triggers: list[Trigger]


class PolicyRunner:
    def __init__(
        self,
        state_path: Path | str,
        jobs: JobManager,
        pipeline: TrainingPipeline,
        defaults: TrainingParams,
        newest_day: Callable[[], int | None],
        seed_policies: list[Policy],
        refit: bool = True,
        backoff: Backoff | None = None,
        poll_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ):
        self._path = Path(state_path)
        self._jobs = jobs
        self._pipeline = pipeline
        self._defaults = defaults
        self._newest_day = newest_day
        self._refit = refit
        self._backoff = backoff or Backoff()
        self._poll = poll_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="training-policy", daemon=True)
        self.policies: dict[str, Policy] = {}
        self.states: dict[str, AliasState] = {}
        self.triggers: dict[str, Trigger] = {}
        self._load()
        seeded = [p for p in seed_policies if p.alias not in self.policies]
        for policy in seeded:
            self.policies[policy.alias] = policy
            self.states.setdefault(policy.alias, AliasState(policy.alias))
        if seeded:
            self._save()

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._poll + 5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except RxcastError as exc:
                log.warning("policy_tick_failed", error=exc.message)
            except Exception:
                log.exception("policy_tick_crashed")
            self._stop.wait(self._poll)

    # -- the API the servicer calls ---------------------------------------------

    def set_policy(self, policy: Policy) -> Policy:
        with self._lock:
            self.policies[policy.alias] = policy
            self.states.setdefault(policy.alias, AliasState(policy.alias))
            self._save()
        log.info("policy_set", **policy.to_dict())
        return policy

    def submit_trigger(
        self, trigger_id: str, kind: str, changed_ms: int, reason: str, aliases: list[str]
    ) -> tuple[Trigger, bool]:
        """Add a trigger (or find the one with this id); (trigger, whether it is new)."""
        if not trigger_id or len(trigger_id) > 200:
            raise InvalidArgument("trigger_id: required, at most 200 characters")
        if kind not in TRIGGER_KINDS:
            raise InvalidArgument(f"kind: must be one of {', '.join(TRIGGER_KINDS)}, got {kind!r}")
        if changed_ms <= 0:
            raise InvalidArgument("changed_at: required (data time when the change was first seen)")
        with self._lock:
            known = self.triggers.get(trigger_id)
            if known is not None:
                return known, False
            names = [alias_name(a) for a in aliases]
            unknown = [a for a in names if a not in self.policies]
            if unknown:
                raise InvalidArgument(
                    f"aliases: no training policy for {unknown}; policies exist for {sorted(self.policies)}"
                )
            names = names or [a for a, p in self.policies.items() if p.follow_triggers]
            changed_day = int(as_of_day(changed_ms))
            horizon = self._pipeline.horizon_days()
            targets = [
                Target(alias, runnable_day(changed_day, horizon, self._holdout(self.policies[alias]), self._refit))
                for alias in dict.fromkeys(names)
            ]
            trigger = Trigger(trigger_id, kind, changed_day, changed_ms, reason[:2000], targets, self._clock())
            self.triggers[trigger_id] = trigger
            self._save()
        metrics.TRIGGERS.labels(kind).inc()
        log.info(
            "trigger_accepted", trigger_id=trigger_id, kind=kind, changed_day=day_text(changed_day),
            runnable={t.alias: day_text(t.runnable_day) for t in targets},
        )  # fmt: skip
        return trigger, True

    def waiting_triggers(self) -> int:
        """Trigger targets (one per alias a trigger names) waiting for a job."""
        with self._lock:
            return sum(1 for t in self.triggers.values() for g in t.targets if g.state == WAITING)

    def statuses(self) -> list[Status]:
        with self._lock:
            out = []
            for alias in sorted(self.policies):
                policy, state = self.policies[alias], self.states[alias]
                triggers = [t for t in self.triggers.values() if _open_for(t, alias)]
                wanted = (
                    state.data_day is not None
                    and due(policy, state, triggers, state.data_day, self._clock()) is not None
                )
                day, wall, words = next_run(policy, state, triggers)
                out.append(
                    Status(policy, dataclasses.replace(state), bool(state.job_id) or wanted, day, wall, words, triggers)
                )
            return out

    # -- one round ----------------------------------------------------------------

    def tick(self) -> None:
        """Settle finished jobs, then start the jobs due at the newest business day."""
        newest = self._newest_day() if self.policies else None
        with self._lock:
            changed = self._settle()
            if newest is not None:
                for alias, policy in self.policies.items():
                    state = self.states[alias]
                    if state.data_day != newest:
                        state.data_day = newest
                        changed = True
                    triggers = [t for t in self.triggers.values() if _open_for(t, alias)]
                    run = due(policy, state, triggers, newest, self._clock())
                    if run is not None:
                        self._start(policy, state, run, newest)
                        changed = True
            if changed:
                self._save()

    def _holdout(self, policy: Policy) -> int:
        return policy.holdout_days or self._defaults.holdout_days

    def _start(self, policy: Policy, state: AliasState, run, newest: int) -> None:
        end = newest - self._pipeline.horizon_days()  # the newest labelled day
        params = dataclasses.replace(self._defaults, holdout_days=self._holdout(policy))
        spec = JobSpec(
            end - policy.window_days + 1, end, params, f"policy {policy.alias}: {run.reason}"[:2000],
            promote=True, alias=policy.alias, refit=self._refit, gate_margin=policy.gate_margin,
        )  # fmt: skip
        state.last_run_day, state.last_run_time = newest, self._clock()
        state.why_trained = run.reason
        try:
            self._pipeline.check(spec)
            job = self._jobs.submit(spec, {"holdout_days": params.holdout_days})
        except RxcastError as exc:
            self._failed(state, run.reason, f"could not start: {exc.message}", run.trigger_ids)
            return
        state.job_id = state.last_job_id = job.job_id
        state.jobs_started += 1
        for trigger_id in run.trigger_ids:
            for target in self.triggers[trigger_id].targets:
                if target.alias == policy.alias:
                    target.state, target.job_id = RUNNING, job.job_id
        metrics.POLICY_JOBS.labels(policy.alias).inc()
        log.info("policy_job_started", alias=policy.alias, job_id=job.job_id, reason=run.reason[:500])

    def _settle(self) -> bool:
        changed = False
        for alias, state in self.states.items():
            if not state.job_id:
                continue
            try:
                job = self._jobs.get(state.job_id)
            except RxcastError:
                job = None
            if job is not None and not job.finished:
                continue
            changed = True
            job_id, state.job_id = state.job_id, ""
            trigger_ids = [t.trigger_id for t in self.triggers.values() if _running(t, alias, job_id)]
            if job is not None and job.stage == Stage.SUCCEEDED:
                state.failed_attempts, state.retry_time, state.retry_reason = 0, 0.0, ""
                state.why_not_promoted = "" if job.promoted else (job.error or "the gate refused it")
                if job.promoted:
                    state.fitted_through = self._fitted_through(job.version)
                outcome = f"v{job.version} " + (
                    "promoted" if job.promoted else f"not promoted: {state.why_not_promoted}"
                )
                self._close_targets(trigger_ids, alias, DONE, outcome)
                log.info("policy_job_settled", alias=alias, job_id=job_id, outcome=outcome[:500])
            else:
                error = job.error if job is not None else "the job record is gone"
                self._failed(state, state.why_trained, error, trigger_ids)
        return changed

    def _fitted_through(self, version: int) -> int | None:
        through = self._pipeline.registry.get(version).manifest.fit.get("fitted_through")
        return day_number(through, "fitted_through") if through else None

    def _failed(self, state: AliasState, reason: str, error: str, trigger_ids) -> None:
        state.failed_attempts += 1
        if state.failed_attempts >= self._backoff.max_attempts:
            state.why_not_promoted = f"gave up after {state.failed_attempts} failed attempts: {error}"
            state.failed_attempts, state.retry_time, state.retry_reason = 0, 0.0, ""
            self._close_targets(trigger_ids, state.alias, GAVE_UP, error)
            log.warning("policy_gave_up", alias=state.alias, error=error[:500])
            return
        delay = self._backoff.delay(state.failed_attempts)
        state.retry_time, state.retry_reason = self._clock() + delay, reason
        state.why_not_promoted = f"attempt {state.failed_attempts} failed: {error}; retrying in {delay:.0f} s"
        # The triggers wait for the retry.
        for trigger_id in trigger_ids:
            for target in self.triggers[trigger_id].targets:
                if target.alias == state.alias:
                    target.state = WAITING
        log.warning("policy_job_failed", alias=state.alias, error=error[:500], retry_seconds=delay)

    def _close_targets(self, trigger_ids, alias: str, state: str, outcome: str) -> None:
        for trigger_id in trigger_ids:
            for target in self.triggers[trigger_id].targets:
                if target.alias == alias:
                    target.state, target.outcome = state, outcome[:2000]

    # -- persistence --------------------------------------------------------------

    def _save(self) -> None:
        settled = sorted(
            (t for t in self.triggers.values() if not any(_open_for(t, g.alias) for g in t.targets)),
            key=lambda t: t.received_time,
        )
        for trigger in settled[: max(0, len(settled) - KEEP_SETTLED_TRIGGERS)]:
            del self.triggers[trigger.trigger_id]
        write_json(
            self._path,
            {
                "policies": [p.to_dict() for p in self.policies.values()],
                "states": [s.to_dict() for s in self.states.values()],
                "triggers": [t.to_dict() for t in self.triggers.values()],
            },
            sort_keys=True,
        )

    def _load(self) -> None:
        try:
            data = json.loads(self._path.read_text())
        except FileNotFoundError:
            return
        self.policies = {p["alias"]: Policy(**p) for p in data.get("policies", [])}
        self.states = {s["alias"]: AliasState(**s) for s in data.get("states", [])}
        for alias in self.policies:
            self.states.setdefault(alias, AliasState(alias))
        self.triggers = {t["trigger_id"]: Trigger.from_dict(t) for t in data.get("triggers", [])}
        log.info(
            "policy_state_loaded", policies=sorted(self.policies),
            waiting_triggers=sum(1 for t in self.triggers.values() for g in t.targets if g.state == WAITING),
            running_jobs=[s.job_id for s in self.states.values() if s.job_id],
        )  # fmt: skip


def _open_for(trigger: Trigger, alias: str) -> bool:
    return any(t.alias == alias and t.state in (WAITING, RUNNING) for t in trigger.targets)


def _running(trigger: Trigger, alias: str, job_id: str) -> bool:
    return any(t.alias == alias and t.state == RUNNING and t.job_id == job_id for t in trigger.targets)
