"""Plays a simulated world through the running suite, day by day, as the
pharmacy chain would: the inventory app pushes the day's records and asks the
online predictor for forecasts the next morning; the batch predictor runs on
its schedule and is read by lookup; actuals reach the drift service through
the feature service; incidents become the trainer's triggers. The player starts
no training: the trainer's policies keep the `online` and `batch` aliases
current on their own, and the player reads what the trainer did.

The simulated clock stands still while the trainer works on a day (a job of
minutes is a moment on the scale of days): after each ingest the player waits,
over gRPC, until every policy has acted on the new business day and none of
their jobs is queued or running, and until each predictor serves its alias's
version. What the run measures in simulated days then does not depend on this
machine's speed.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import psutil

from rxcast.clients import DriftClient, FeatureClient, PredictorClient, TrainerClient
from rxcast.clients.records import normalize, to_protos
from rxcast.demo import measures
from rxcast.demo.ledger import AlertLog, BatchRunLog, DayLog, IncidentLog, Ledger, ModeDay, TrainingLog, labels_lag
from rxcast.demo.plan import REQUEST_HOUR, DemoPlan
from rxcast.drift.v1 import drift_pb2
from rxcast.predictor.v1 import predictor_pb2
from rxcast.runtime import timestamps
from rxcast.runtime.errors import Unavailable
from rxcast.sim import HORIZON_DAYS, World
from rxcast.suite.topology import Suite
from rxcast.trainer.v1 import trainer_pb2

DAY_MS = 86_400_000
#: The app's tries of one Predict call that the predictor could not answer
#: (UNAVAILABLE: it forecasts nothing and logs nothing, so trying again is safe).
PREDICT_ATTEMPTS = 3


def _names(enum, prefix: str) -> dict[int, str]:
    """A proto enum's values by number, as short lower-case names."""
    return {v.number: v.name.removeprefix(prefix).lower() for v in enum.DESCRIPTOR.values}


_ALERT_KINDS = _names(drift_pb2.AlertKind, "ALERT_KIND_")
_INCIDENT_KINDS = _names(drift_pb2.IncidentKind, "INCIDENT_KIND_")
_INCIDENT_STATUSES = _names(drift_pb2.IncidentStatus, "INCIDENT_STATUS_")
_INCIDENT_SEVERITIES = _names(drift_pb2.IncidentSeverity, "INCIDENT_SEVERITY_")
#: Most incidents the player reads back each day (the book keeps them all).
_INCIDENTS_READ = 1000
_JOB_STATES = _names(trainer_pb2.JobState, "JOB_STATE_")
_RUN_STATES = _names(predictor_pb2.BatchRunState, "BATCH_RUN_STATE_")


class DemoFailed(RuntimeError):
    """The loop cannot go on (a service refused something it must do)."""


def as_of_ms(day: dt.date) -> int:
    """The instant the app asks for forecasts after `day`: the next morning."""
    midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    return int(midnight.timestamp() * 1000) + REQUEST_HOUR * 3_600_000


class CpuMeter:
    """CPU seconds (user + system) of the suite's processes, read from the OS."""

    def __init__(self, suite: Suite):
        self._processes = {
            name: psutil.Process(p.process.pid) for name, p in suite.processes.items() if p.process is not None
        }

    def snapshot(self) -> dict[str, float]:
        out = {}
        for name, process in self._processes.items():
            try:
                times = process.cpu_times()
                out[name] = times.user + times.system
            except psutil.Error:
                out[name] = 0.0
        return out

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float], names: Iterable[str]) -> dict[str, float]:
        return {n: after.get(n, 0.0) - before.get(n, 0.0) for n in names}


class Player:
    def __init__(self, plan: DemoPlan, world: World, suite: Suite, say: Callable[[str], None] = print):
        self.plan = plan
        self.world = world
        self.suite = suite
        self.say = say
        self.ledger = Ledger(plan.name, [e.to_dict() for e in world.events])
        self.feature = FeatureClient(suite["feature"].address, timeout=600)
        self.trainer = TrainerClient(suite["trainer"].address, timeout=60)
        self.drift = DriftClient(suite["drift"].address, timeout=60)
        self.online = PredictorClient(suite["predictor-online"].address, timeout=30)
        self.batch = PredictorClient(suite["predictor-batch"].address, timeout=600)
        self._clients = (self.feature, self.trainer, self.drift, self.online, self.batch)
        self.cpu = CpuMeter(suite)
        self._last_alert_id = 0
        self._seen_jobs: set[str] = set()

    def close(self) -> None:
        for client in self._clients:
            client.close()

    # ---------------------------------------------------------------- phases

    def _measured(self, phase: str, names: tuple[str, ...], work: Callable[[], object]):
        before = self.cpu.snapshot()
        result = work()
        self.ledger.add_cpu(phase, self.cpu.delta(before, self.cpu.snapshot(), names))
        return result

    def seed_history(self) -> None:
        """The feature store gets the scenario's history through IngestRecords,
        with the trainer's cadences paused: a policy acting on the first weeks
        ingested trained a first model on the chain's opening days (every
        store short of 28 recorded days), and the gate kept it serving, as the
        batch alias, for the whole run since later jobs did not beat it by
        the alias's margin."""
        history = self.world.days[: self.plan.scenario.history_days]
        records = self.world.records[self.world.records["business_day"] <= history[-1]]
        self.say(f"seeding the feature store: {len(records):,} records, {history[0]:%Y-%m-%d}..{history[-1]:%Y-%m-%d}")
        policies = [status.policy for status in self.trainer.policies()]
        for policy in policies:
            paused = trainer_pb2.TrainingPolicy()
            paused.CopyFrom(policy)
            paused.every_data_days, paused.every_wall_seconds = 0, 0
            self.trainer.set_policy(paused)
        started = time.monotonic()
        try:
            outcome = self.feature.ingest_frame(normalize(records), progress=True)
        finally:
            for policy in policies:
                self.trainer.set_policy(policy)
        accepted, errors = outcome.accepted, outcome.errors
        if errors:
            raise DemoFailed(f"the feature service rejected {len(errors)} history records, e.g. {errors[0]}")
        self.ledger.seed_seconds = time.monotonic() - started
        self.ledger.seed_records = accepted

    def settle(self, day: dt.date, timeout: float = 3600.0) -> list[TrainingLog]:
        """Wait until the trainer's policies have acted on business day `day`
        and no job of theirs is queued or running; the jobs they ran, logged."""
        started = time.monotonic()
        before = self.cpu.snapshot()
        while True:
            statuses = self.trainer.policies()
            if not statuses:
                raise DemoFailed("the trainer has no training policy: nothing would keep the models current")
            if all(s.data_day >= day.isoformat() and not s.busy for s in statuses):
                break
            if time.monotonic() - started > timeout:
                raise DemoFailed(f"the trainer's policies did not settle on {day} within {timeout:.0f} s")
            time.sleep(0.05)
        trainer_cpu = self.cpu.delta(before, self.cpu.snapshot(), ("trainer",))["trainer"]
        self.ledger.add_cpu("training", {"trainer": trainer_cpu})
        logs = [self._training_log(day, s.policy.alias, s.last_job_id) for s in statuses if self._new_job(s)]
        spent = sum(log.wall_seconds for log in logs) or 1.0
        for log in logs:
            # The trainer process's CPU while the day settled, shared by the jobs' wall time.
            log.cpu_seconds = trainer_cpu * log.wall_seconds / spent
            self.ledger.trainings.append(log)
            verdict = "promoted" if log.promoted else f"not promoted: {log.error or 'gate refused'}"
            self.say(
                f"  trainer: {log.alias} job {log.job_id} {log.state}: v{log.version} fitted through "
                f"{log.trained_through}, {verdict} ({log.wall_seconds:.0f} s) | {log.reason[:160]}"
            )
        for alias, predictor in (("online", self.online), ("batch", self.batch)):
            if any(log.promoted and log.alias == alias for log in logs):
                self._await_version(predictor, alias, self.trainer.latest(alias).version)
        return logs

    def _new_job(self, status) -> bool:
        if not status.last_job_id or status.last_job_id in self._seen_jobs:
            return False
        self._seen_jobs.add(status.last_job_id)
        return True

    def _training_log(self, day: dt.date, alias: str, job_id: str) -> TrainingLog:
        job = self.trainer.job(job_id)
        ev = job.evaluation
        metrics = {
            name: {"mae": m.mae, "rmse": m.rmse, "wape": m.wape, "rows": m.rows}
            for name, m in (("model", ev.model), ("baseline", ev.baseline), ("champion", ev.champion))
            if m.rows
        }
        fitted = (self.trainer.manifest(job.version) or {}).get("fit", {}) if job.version else {}
        through = fitted.get("fitted_through")
        return TrainingLog(
            day=day,
            job_id=job.job_id,
            reason=job.request.reason,
            window=(job.request.window.start_day, job.request.window.end_day),
            state=_JOB_STATES.get(job.state, str(job.state)),
            version=job.version,
            promoted=job.promoted,
            error=job.error,
            wall_seconds=max(0.0, _seconds(job.updated_time) - _seconds(job.created_time)),
            metrics=metrics,
            trained_through=dt.date.fromisoformat(through) if through else None,
            alias=alias,
        )

    @staticmethod
    def _await_version(predictor: PredictorClient, mode: str, version: int, timeout: float = 120.0) -> float:
        """Wall seconds until a predictor serves `version` (it polls the trainer)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            status = predictor.model_status()
            if status.model_version >= version:
                return time.monotonic() - started
            time.sleep(0.1)
        raise DemoFailed(f"the {mode} predictor did not pick up version {version} within {timeout:.0f} s")

    def _ingest(self, day: dt.date) -> tuple[pd.DataFrame, int, int]:
        records = normalize(self.world.records_for_day(day))
        outcome = self.feature.ingest(to_protos(records))
        return records, outcome.accepted, len(outcome.errors)

    def _calls(self, rows: int):
        """The day's keys in calls of `keys_per_call`, as the app sends them."""
        for lo in range(0, rows, self.plan.keys_per_call):
            yield slice(lo, lo + self.plan.keys_per_call)

    @staticmethod
    def _empty_mode(n: int) -> ModeDay:
        return ModeDay(np.full(n, np.nan), np.zeros(n, np.int64), np.full(n, np.nan), np.zeros(n, np.uint32))

    def _predict_online(self, stores: np.ndarray, medications: np.ndarray, at_ms: int) -> ModeDay:
        mode = self._empty_mode(len(stores))
        for part in self._calls(len(stores)):
            started = time.perf_counter()
            answer = self._predict(stores[part], medications[part], at_ms)
            mode.latencies_ms.append((time.perf_counter() - started) * 1000)
            mode.forecasts[part] = answer.forecasts
            mode.flags[part] = answer.flags
            mode.versions[part] = answer.model_version
            ages = np.asarray(answer.feature_ages_seconds, dtype=float)
            mode.feature_age_s[part] = np.where(ages < 0, np.nan, ages)
        return mode

    def _predict(self, stores: np.ndarray, medications: np.ndarray, at_ms: int):
        """One Predict as the inventory app makes it: tried again after a
        moment when the predictor is unavailable (a feature hop past its deadline
        on a loaded machine), up to PREDICT_ATTEMPTS tries."""
        for attempt in range(1, PREDICT_ATTEMPTS + 1):
            try:
                return self.online.predict(stores, medications, at_ms)
            except Unavailable as exc:
                if attempt == PREDICT_ATTEMPTS:
                    raise
                self.say(f"  online Predict unavailable ({exc.message[:120]}); trying again")
                time.sleep(attempt)
        raise AssertionError("unreachable")

    def _run_batch(self, day: dt.date, at_ms: int) -> None:
        started = time.monotonic()
        run = None
        for run in self.batch.run_batch(at_ms, reason=f"schedule: {day}", timeout=1800):
            pass
        if run is None:
            raise DemoFailed("the batch predictor ended a run without reporting it")
        state = _RUN_STATES.get(run.state, str(run.state))
        self.ledger.batch_runs.append(
            BatchRunLog(
                day, run.run_id, run.model_version, run.rows_total, state, run.error, time.monotonic() - started
            )
        )
        if state != "succeeded":
            self.say(f"  batch run {run.run_id} {state}: {run.error}")

    def _lookup_batch(self, stores: np.ndarray, medications: np.ndarray) -> tuple[ModeDay, int]:
        mode = self._empty_mode(len(stores))
        run_as_of = 0
        for part in self._calls(len(stores)):
            started = time.perf_counter()
            answer = self.batch.batch_predictions(stores[part], medications[part])
            mode.latencies_ms.append((time.perf_counter() - started) * 1000)
            found = np.asarray(answer.found, dtype=bool)
            mode.forecasts[part] = np.where(found, answer.forecasts, np.nan)
            mode.flags[part] = answer.flags
            mode.versions[part] = np.where(found, answer.model_version, 0)
            run_as_of = timestamps.to_ms(answer.as_of_time, "as_of_time")
        return mode, run_as_of

    def _actuals(self, log: DayLog) -> None:
        times = np.full(len(log.store_ids), log.as_of_ms, dtype=np.int64)
        actuals = self.feature.actuals(log.store_ids, log.medication_ids, times)
        log.actual_found = ~np.isnan(actuals.values)
        log.actuals = actuals.values

    def _new_alerts(self, today: dt.date) -> list[AlertLog]:
        alerts = self.drift.list_alerts(limit=1000)
        fresh = []
        for alert in sorted(alerts, key=lambda a: a.alert_id):
            if alert.alert_id <= self._last_alert_id:
                continue
            self._last_alert_id = alert.alert_id
            data_day = _data_day(alert, "data_time")
            fresh.append(
                AlertLog(
                    alert.alert_id,
                    _ALERT_KINDS.get(alert.kind, str(alert.kind)),
                    alert.model_version,
                    list(alert.features),
                    alert.reason,
                    alert.detector,
                    data_day,
                    today,
                )
            )
        self.ledger.alerts.extend(fresh)
        return fresh

    def _new_incidents(self, today: dt.date) -> list[IncidentLog]:
        """Record the drift service's incidents, each known one with its newest
        status; the ones seen for the first time."""
        known = {i.incident_id: i for i in self.ledger.incidents}
        fresh = []
        for incident in self.drift.list_incidents(limit=_INCIDENTS_READ):
            before = known.get(incident.incident_id)
            known[incident.incident_id] = log = _incident_log(incident, before.seen_day if before else today)
            if before is None:
                fresh.append(log)
        self.ledger.incidents = sorted(known.values(), key=lambda i: (i.day, i.incident_id))
        return sorted(fresh, key=lambda i: (i.day, i.incident_id))

    # ------------------------------------------------------------------ play

    def play_day(self, index: int, day: dt.date) -> DayLog:
        at_ms = as_of_ms(day)
        records, accepted, rejected = self._measured("ingest", ("feature",), lambda: self._ingest(day))
        # Overnight the trainer acts on the new day; the app asks the next morning.
        self.settle(day)
        stores = records["store_id"].to_numpy(dtype=object)
        medications = records["medication_id"].to_numpy(dtype=object)

        online = self._measured(
            "online", ("predictor-online", "feature"), lambda: self._predict_online(stores, medications, at_ms)
        )
        if index % self.plan.batch_every_days == 0:
            self._measured("batch-run", ("predictor-batch", "feature"), lambda: self._run_batch(day, at_ms))
        batch, batch_as_of = self._measured(
            "batch-lookup", ("predictor-batch",), lambda: self._lookup_batch(stores, medications)
        )
        batch.feature_age_s[:] = (at_ms - batch_as_of) / 1000 + REQUEST_HOUR * 3600 if batch_as_of else np.nan
        log = DayLog(index, day, at_ms, stores, medications, online, batch, batch_as_of, accepted, rejected)
        self.ledger.days.append(log)

        if index >= HORIZON_DAYS:
            self._actuals(self.ledger.days[index - HORIZON_DAYS])
        return log

    def play(self) -> Ledger:
        history = self.plan.scenario.history_days or len(self.world.days)
        first = self.world.days[history - 1].date()
        self.settle(first)
        for alias in ("online", "batch"):
            if not self.trainer.latest(alias).version:
                raise DemoFailed(f"the trainer promoted no first model to {alias!r}: {self._why_not(alias)}")
        self._await_version(self.batch, "batch", self.trainer.latest("batch").version)
        self._await_version(self.online, "online", self.trainer.latest("online").version)
        self.say(
            f"playing {self.plan.days_to_play} days; events: "
            + ", ".join(f"{e.kind} on {e.business_day}" for e in self.world.events)
        )
        for index, stamp in enumerate(self.world.days[history:]):
            day = stamp.date()
            log = self.play_day(index, day)
            self._new_alerts(day)
            for incident in self._new_incidents(day):
                self.say(
                    f"  incident {incident.incident_id} opened: {incident.kind} ({incident.severity}) on "
                    f"v{incident.model_version}, data from {incident.changed_day} "
                    f"({', '.join(incident.features[:4])}): {incident.reason[:120]}"
                )
            self.say(self._progress_line(log))
        self._collect_final()
        return self.ledger

    def _why_not(self, alias: str) -> str:
        status = next((s for s in self.trainer.policies() if s.policy.alias == alias), None)
        return "no policy for it" if status is None else status.why_not_promoted or status.next_run_at

    def _progress_line(self, log: DayLog) -> str:
        events = [e.kind for e in self.world.events if e.business_day == log.day.isoformat()]
        online_v = int(np.max(log.online.versions)) if len(log.online.versions) else 0
        batch_v = int(np.max(log.batch.versions)) if len(log.batch.versions) else 0
        line = (
            f"day {log.index + 1:>3}/{self.plan.days_to_play} {log.day} | entities {len(log.store_ids):,} | "
            f"online v{online_v} | batch v{batch_v} | incidents {len(self.ledger.incidents)} "
            f"(open {sum(i.status == 'open' for i in self.ledger.incidents)})"
        )
        evaluated = self.ledger.days[log.index - HORIZON_DAYS] if log.index >= HORIZON_DAYS else None
        errors = measures.day_errors(evaluated) if evaluated is not None else None
        if errors is not None:
            line += f" | MAE {evaluated.day}: online {errors['online_mae']:.2f} batch {errors['batch_mae']:.2f}"
        if events:
            line += f" | drift injected: {', '.join(events)}"
        return line

    def _collect_final(self) -> None:
        if self.ledger.days:
            self._new_alerts(self.ledger.days[-1].day)
            self._new_incidents(self.ledger.days[-1].day)
        reports = self.drift.list_reports(limit=10_000)
        self.ledger.reports = [
            _report_summary(r)
            for r in sorted(reports, key=lambda r: timestamps.to_ms(r.window_end_time, "window_end_time"))
        ]


def _data_day(message, field_name: str) -> dt.date | None:
    """The UTC day of a message's timestamp field; None when unset."""
    if not message.HasField(field_name):
        return None
    return dt.datetime.fromtimestamp(timestamps.to_ms(getattr(message, field_name), field_name) / 1000, dt.UTC).date()


def _incident_log(incident: drift_pb2.Incident, seen_day: dt.date) -> IncidentLog:
    kind = _INCIDENT_KINDS.get(incident.kind, str(incident.kind))
    lag = labels_lag(kind)
    changed, opened = _data_day(incident, "changed_time"), _data_day(incident, "opened_data_time")
    return IncidentLog(
        incident.incident_id,
        kind,
        _INCIDENT_SEVERITIES.get(incident.severity, str(incident.severity)),
        _INCIDENT_STATUSES.get(incident.status, str(incident.status)),
        incident.model_version,
        list(incident.features),
        incident.reason,
        changed and changed + lag,
        opened and opened + lag,
        seen_day,
        incident.resolution,
        incident.retrain_job_id,
    )


def _seconds(stamp) -> float:
    return timestamps.to_ms(stamp, "time") / 1000 if stamp.seconds or stamp.nanos else 0.0


def _report_summary(report: drift_pb2.DriftReport) -> dict:
    drifted = [f for f in report.features if f.verdict in (drift_pb2.VERDICT_DRIFT, drift_pb2.VERDICT_DATA_QUALITY)]
    return {
        "model_version": report.model_version,
        "window_start_ms": timestamps.to_ms(report.window_start_time, "window_start_time"),
        "window_end_ms": timestamps.to_ms(report.window_end_time, "window_end_time"),
        "rows": report.current_rows,
        "verdict": drift_pb2.Verdict.Name(report.verdict).removeprefix("VERDICT_").lower(),
        "drifted_features": [f.feature for f in drifted],
        "features": len(report.features),
        "prediction_verdict": drift_pb2.Verdict.Name(report.prediction.verdict).removeprefix("VERDICT_").lower(),
        "reasons": {f.feature: f.reason for f in drifted},
    }
