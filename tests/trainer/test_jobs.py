"""Training jobs: progress that watchers follow, failures, the bounded queue,
and records that survive a restart."""

from __future__ import annotations

import threading

import pytest

from rxcast.runtime.errors import NotFound, ResourceExhausted
from rxcast.trainer.jobs import JobManager, JobSnapshot, JobStore
from rxcast.trainer.pipeline import Stage
from tests.trainer.conftest import FAST, build_pipeline, spec_for


def test_watchers_see_every_stage_in_order_until_the_job_ends(tmp_path, world):
    manager = JobManager(build_pipeline(tmp_path / "registry", world), store=JobStore(tmp_path / "jobs"))
    job = manager.submit(spec_for(world, promote=True, reason="test"), {"num_boost_round": 40})
    assert job.stage == Stage.QUEUED
    seen = list(manager.watch(job.job_id, lambda: True))
    stages = [s.stage for s in seen]
    assert stages[-1] == Stage.SUCCEEDED
    order = [Stage.QUEUED, Stage.LOADING, Stage.TRAINING, Stage.EVALUATING, Stage.PUBLISHING, Stage.SUCCEEDED]
    # The state at once, then every later stage in order, even to a watcher that wakes up late.
    assert list(dict.fromkeys(stages)) == order[order.index(stages[0]) :]
    assert [s.sequence for s in seen] == sorted(s.sequence for s in seen)
    final = manager.get(job.job_id)
    assert final.version == 1 and final.promoted and final.rounds_done == FAST.num_boost_round
    assert final.rows_loaded > 0 and final.evaluation is not None and final.error == ""
    manager.close()


def test_a_failing_job_reports_why(tmp_path, world):
    manager = JobManager(build_pipeline(tmp_path, world))
    late = spec_for(world, start_day=world.last_day + 5, end_day=world.last_day + 60, promote=True)
    job = manager.submit(late, {})
    final = list(manager.watch(job.job_id, lambda: True))[-1]
    assert final.stage == Stage.FAILED
    assert "no labelled rows" in final.error
    assert final.version == 0 and not final.promoted
    with pytest.raises(NotFound):
        manager.get("job-nope")
    manager.close()


class _Blocking:
    """A pipeline whose jobs wait until released."""

    def __init__(self):
        self.release = threading.Event()

    def run(self, spec, report, should_stop):
        report.stage(Stage.LOADING, "waiting")
        while not self.release.wait(0.05):
            report.rows(0, 100)  # a progress report while stopping cancels the job
        raise NotFound("nothing to train on")


def test_the_queue_is_bounded_and_close_fails_what_is_left(tmp_path, world):
    pipeline = _Blocking()
    manager = JobManager(pipeline, workers=1, max_pending=2, store=JobStore(tmp_path))
    first = manager.submit(spec_for(world), {})
    second = manager.submit(spec_for(world), {})
    with pytest.raises(ResourceExhausted, match="limit 2"):
        manager.submit(spec_for(world), {})
    manager.close(timeout=5)
    assert "stopped while the job was running" in manager.get(first.job_id).error
    assert "stopped before the job started" in manager.get(second.job_id).error
    with pytest.raises(ResourceExhausted, match="shutting down"):
        manager.submit(spec_for(world), {})


def test_records_survive_a_restart_and_interrupted_jobs_read_as_failed(tmp_path, world):
    store = JobStore(tmp_path)
    done = JobSnapshot("job-done", spec_for(world), {"seed": 3}, stage=Stage.SUCCEEDED, version=4)
    running = JobSnapshot("job-running", spec_for(world), {}, stage=Stage.TRAINING)
    store.save(done)
    store.save(running)
    manager = JobManager(_Blocking(), store=store)
    assert manager.get("job-done") == done
    assert manager.get("job-done").requested_params == {"seed": 3}
    interrupted = manager.get("job-running")
    assert interrupted.stage == Stage.FAILED and "stopped before the job finished" in interrupted.error
    assert JobStore(tmp_path).load(10)[-1].stage == Stage.FAILED
    manager.close()


def test_jobs_no_longer_in_memory_are_read_from_their_records(tmp_path, world):
    store = JobStore(tmp_path)
    old = [JobSnapshot(f"job-{i:016x}", spec_for(world), {}, stage=Stage.SUCCEEDED, version=i) for i in range(3)]
    for job in old:
        store.save(job)
    manager = JobManager(_Blocking(), store=store, keep=1)
    assert [manager.get(job.job_id).version for job in old] == [0, 1, 2]
    with pytest.raises(NotFound):
        manager.get("job-../../etc/passwd")
    manager.close()
