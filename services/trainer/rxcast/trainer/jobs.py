"""Training jobs: a bounded worker pool, progress state, watchers, records.

Jobs wait in a bounded queue and run on a fixed number of workers (training
uses every core of a small machine: more parallel jobs would only share
them). Each change of a job bumps its sequence number and wakes the
watchers, who read the latest state: a slow watcher skips intermediate
progress (rows, rounds) rather than holding a job up, but is still shown
every stage the job passed through. Every job is recorded on disk when it is
accepted and when its stage changes, so that after a restart its outcome can
still be read, and a job the restart interrupted reads as failed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rxcast.runtime.durable import quarantine, write_json
from rxcast.runtime.errors import NotFound, ResourceExhausted, RxcastError
from rxcast.runtime.logs import get_logger
from rxcast.runtime.validation import clip_text
from rxcast.trainer import metrics
from rxcast.trainer.evaluation import Evaluation
from rxcast.trainer.fit import TrainingCancelled
from rxcast.trainer.params import TrainingParams
from rxcast.trainer.pipeline import JobSpec, Stage, TrainingPipeline

log = get_logger("rxcast.trainer.jobs")

TERMINAL = (Stage.SUCCEEDED, Stage.FAILED)
_JOB_ID = re.compile(r"job-[0-9a-f]{16}")


@dataclasses.dataclass(frozen=True)
class JobSnapshot:
    """A job as it stands at one moment."""

    job_id: str
    spec: JobSpec
    #: The parameters the request set explicitly (the rest are defaults).
    requested_params: dict[str, Any]
    stage: str = Stage.QUEUED
    rows_loaded: int = 0
    rows_total: int = 0
    rounds_done: int = 0
    rounds_total: int = 0
    message: str = "waiting for a worker"
    evaluation: Evaluation | None = None
    version: int = 0
    promoted: bool = False
    error: str = ""
    created_time: float = 0.0
    updated_time: float = 0.0
    sequence: int = 0

    @property
    def finished(self) -> bool:
        return self.stage in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["evaluation"] = None if self.evaluation is None else self.evaluation.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSnapshot:
        spec = dict(data["spec"])
        spec["params"] = TrainingParams(**spec["params"])
        evaluation = data.get("evaluation")
        return cls(
            **{
                **data,
                "spec": JobSpec(**spec),
                "evaluation": None if evaluation is None else Evaluation.from_dict(evaluation),
            }
        )


class JobStore:
    """Job records as one JSON file per job."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def save(self, job: JobSnapshot) -> None:
        # Metrics of a failed evaluation may be NaN, as json.dumps writes them.
        write_json(self.directory / f"{job.job_id}.json", job.to_dict(), sort_keys=True, allow_nan=True)

    def get(self, job_id: str) -> JobSnapshot | None:
        """One job's record, if there is one."""
        if not _JOB_ID.fullmatch(job_id):
            return None
        path = self.directory / f"{job_id}.json"
        try:
            return JobSnapshot.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            quarantine(path, f"unreadable job record: {exc}", missing_ok=True)
            return None

    def load(self, limit: int) -> list[JobSnapshot]:
        """The newest `limit` records, oldest first."""
        paths = sorted(self.directory.glob("job-*.json"), key=lambda p: p.stat().st_mtime)[-limit:]
        jobs = []
        for path in paths:
            try:
                jobs.append(JobSnapshot.from_dict(json.loads(path.read_text())))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                quarantine(path, f"unreadable job record: {exc}", missing_ok=True)
        return jobs


class _Progress:
    """The pipeline's progress reports, applied to one job. A report made while
    the trainer is stopping cancels the job there (between loaded chunks,
    between boosting rounds)."""

    def __init__(self, manager: JobManager, job_id: str):
        self._manager = manager
        self._job_id = job_id

    def _check(self) -> None:
        if self._manager._stopping.is_set():
            raise TrainingCancelled("the trainer is stopping")

    def stage(self, stage: str, message: str) -> None:
        self._manager._update(self._job_id, persist=True, stage=stage, message=message)

    def rows(self, loaded: int, total: int) -> None:
        self._check()
        self._manager._update(self._job_id, rows_loaded=loaded, rows_total=total)

    def rounds(self, done: int, total: int) -> None:
        self._check()
        self._manager._update(self._job_id, rounds_done=done, rounds_total=total)

    def evaluated(self, evaluation: Evaluation) -> None:
        self._manager._update(self._job_id, evaluation=evaluation)


class JobManager:
    """Accepts jobs, runs them on a bounded pool, and lets callers follow them."""

    def __init__(
        self,
        pipeline: TrainingPipeline,
        workers: int = 1,
        max_pending: int = 8,
        store: JobStore | None = None,
        keep: int = 1000,
    ):
        self._pipeline = pipeline
        self._store = store
        self._keep = keep
        self._max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="training-job")
        self._changed = threading.Condition()
        self._jobs: dict[str, JobSnapshot] = {}
        #: Each running job's state as it entered each stage, for watchers that woke late.
        self._stage_entries: dict[str, list[JobSnapshot]] = {}
        self._stopping = threading.Event()
        for job in store.load(keep) if store else []:
            if not job.finished:
                job = dataclasses.replace(
                    job,
                    stage=Stage.FAILED,
                    error="the trainer stopped before the job finished",
                    updated_time=time.time(),
                )
                store.save(job)
            self._jobs[job.job_id] = job

    def submit(self, spec: JobSpec, requested_params: dict[str, Any]) -> JobSnapshot:
        """Accept a job (the spec is already checked); it runs when a worker is free."""
        if self._stopping.is_set():
            raise ResourceExhausted("the trainer is shutting down; not accepting jobs")
        now = time.time()
        spec = dataclasses.replace(spec, reason=clip_text(spec.reason))
        job = JobSnapshot(
            job_id=f"job-{uuid.uuid4().hex[:16]}",  # matches _JOB_ID
            spec=spec,
            requested_params=dict(requested_params),
            rounds_total=spec.params.num_boost_round,
            created_time=now,
            updated_time=now,
        )
        with self._changed:
            active = sum(1 for j in self._jobs.values() if not j.finished)
            if active >= self._max_pending:
                raise ResourceExhausted(
                    f"{active} training jobs are queued or running (limit {self._max_pending}); retry later"
                )
            self._jobs[job.job_id] = job
            self._forget_old()
        metrics.JOBS_ACTIVE.inc()
        self._save(job)
        log.info("job_accepted", job_id=job.job_id, reason=spec.reason, promote=spec.promote)
        self._pool.submit(self._run, job.job_id)
        return job

    def queued(self) -> int:
        """Jobs waiting for a worker."""
        with self._changed:
            return sum(1 for j in self._jobs.values() if j.stage == Stage.QUEUED)

    def get(self, job_id: str) -> JobSnapshot:
        with self._changed:
            job = self._jobs.get(job_id)
        if job is None and self._store is not None:
            job = self._store.get(job_id)  # an old job, no longer kept in memory
        if job is None:
            raise NotFound(f"job {job_id!r} does not exist")
        return job

    def watch(self, job_id: str, keep_going: Callable[[], bool], poll_seconds: float = 1.0) -> Iterator[JobSnapshot]:
        """The job's state now, then after every change, until it finishes
        (or `keep_going` turns false: the caller went away or ran out of time)."""
        job = self.get(job_id)
        yield job
        while not job.finished and keep_going():
            with self._changed:
                seen = job.sequence
                self._changed.wait_for(
                    lambda seen=seen: getattr(self._jobs.get(job_id), "sequence", seen) != seen, timeout=poll_seconds
                )
                latest = self._jobs.get(job_id, job)
                missed = [
                    entry
                    for entry in self._stage_entries.get(job_id, ())
                    if job.sequence < entry.sequence < latest.sequence
                ]
            yield from missed
            if latest.sequence != job.sequence:
                job = latest
                yield job

    def close(self, timeout: float = 10.0) -> None:
        """Stop: running jobs are cancelled at their next boosting round, queued ones fail."""
        self._stopping.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        with self._changed:
            self._changed.wait_for(
                lambda: all(j.finished or j.stage == Stage.QUEUED for j in self._jobs.values()),
                timeout=max(0.0, deadline - time.monotonic()),
            )
            queued = [j.job_id for j in self._jobs.values() if j.stage == Stage.QUEUED]
        for job_id in queued:
            self._finish(job_id, error="the trainer stopped before the job started")

    # -- internals --------------------------------------------------------------

    def _run(self, job_id: str) -> None:
        if self._stopping.is_set():
            return
        job = self.get(job_id)
        progress = _Progress(self, job_id)
        started = time.monotonic()
        try:
            outcome = self._pipeline.run(job.spec, progress, self._stopping.is_set)
        except TrainingCancelled:
            self._finish(job_id, error="the trainer stopped while the job was running")
        except RxcastError as exc:
            self._finish(job_id, error=exc.message)
        except Exception as exc:  # a bug, not a bad request: keep the traceback
            log.exception("job_crashed", job_id=job_id)
            self._finish(job_id, error=f"internal error: {type(exc).__name__}: {exc}")
        else:
            message = f"published v{outcome.version}"
            if job.spec.promote:
                message += f"; promoted to {job.spec.alias}" if outcome.promoted else "; not promoted"
            self._finish(
                job_id,
                evaluation=outcome.evaluation,
                version=outcome.version,
                promoted=outcome.promoted,
                error=outcome.refusal,
                message=message,
                succeeded=True,
            )
        log.info(
            "job_finished", job_id=job_id, stage=self.get(job_id).stage, seconds=round(time.monotonic() - started, 3)
        )

    def _finish(self, job_id: str, error: str = "", succeeded: bool = False, **fields: Any) -> None:
        stage = Stage.SUCCEEDED if succeeded else Stage.FAILED
        if not succeeded:
            fields.setdefault("message", "failed")
        self._update(job_id, persist=True, stage=stage, error=error, **fields)
        metrics.JOBS_FINISHED.labels(stage).inc()
        metrics.JOBS_ACTIVE.dec()

    def _update(self, job_id: str, persist: bool = False, **fields: Any) -> None:
        with self._changed:
            job = self._jobs[job_id]
            job = dataclasses.replace(job, **fields, updated_time=time.time(), sequence=job.sequence + 1)
            self._jobs[job_id] = job
            if "stage" in fields:
                self._stage_entries.setdefault(job_id, []).append(job)
            self._changed.notify_all()
        if persist:
            self._save(job)

    def _save(self, job: JobSnapshot) -> None:
        if self._store is None:
            return
        try:
            self._store.save(job)
        except OSError as exc:
            log.warning("job_record_unwritable", job_id=job.job_id, error=str(exc))

    def _forget_old(self) -> None:
        """Keep the newest `keep` finished jobs in memory (their records stay on disk)."""
        finished = [j for j in self._jobs.values() if j.finished]
        for job in sorted(finished, key=lambda j: j.created_time)[: max(0, len(self._jobs) - self._keep)]:
            del self._jobs[job.job_id]
            self._stage_entries.pop(job.job_id, None)
