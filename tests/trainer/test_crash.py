"""A trainer killed in the middle of publishing: no half-written version is
ever visible, the interrupted job reads as failed after a restart, and the
next publish works."""

from __future__ import annotations

import signal

import grpc
import pytest

from rxcast.clients import TrainerClient
from rxcast.model import ModelBundle
from rxcast.trainer.faults import CRASH_ENV
from rxcast.trainer.v1 import trainer_pb2 as pb
from tests.trainer.conftest import start_trainer

WINDOW = pb.DayWindow(start_day="2025-01-01", end_day="2025-04-20")
PARAMS = pb.TrainingParams(num_boost_round=20, learning_rate=0.1)


def test_sigkill_mid_publish_leaves_no_partial_version(tmp_path, feature):
    crashing = start_trainer(tmp_path, feature, env={CRASH_ENV: "publish:manifest_staged"}, name="crashing")
    with TrainerClient(crashing.address) as client:
        job = client.stub.StartTraining(pb.StartTrainingRequest(window=WINDOW, params=PARAMS, promote=True)).job
        with pytest.raises(grpc.RpcError) as cut:
            for _ in client.watch(job.job_id, timeout=60):
                pass
    assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
    assert crashing.process.wait(30) == -signal.SIGKILL

    registry = tmp_path / "registry"
    # The model and manifest were fully staged, yet nothing is visible.
    staged = list((registry / "staging").iterdir())
    assert len(staged) == 1 and {p.name for p in staged[0].iterdir()} == {"model.txt", "manifest.json"}
    assert list((registry / "versions").iterdir()) == []

    restarted = start_trainer(tmp_path, feature, name="restarted")
    try:
        with TrainerClient(restarted.address) as client:
            assert list((registry / "staging").iterdir()) == []
            assert client.stub.ListModelVersions(pb.ListModelVersionsRequest()).versions == []
            assert client.stub.GetLatestVersion(pb.GetLatestVersionRequest()).version == 0
            interrupted = client.stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job.job_id)).job
            assert interrupted.state == pb.JOB_STATE_FAILED
            assert "stopped before the job finished" in interrupted.error

            again = client.stub.StartTraining(pb.StartTrainingRequest(window=WINDOW, params=PARAMS, promote=True)).job
            final = list(client.watch(again.job_id, timeout=60))[-1]
            assert final.state == pb.JOB_STATE_SUCCEEDED and final.version == 1 and final.promoted
            assert client.stub.GetLatestVersion(pb.GetLatestVersionRequest()).version == 1
        assert ModelBundle.load(registry / "versions" / "0000000001").version == 1
    finally:
        restarted.stop()


def test_sigterm_stops_a_running_job_promptly_and_records_why(tmp_path, feature):
    trainer = start_trainer(tmp_path, feature, "--grace-seconds", "20", name="stopping")
    long_job = pb.TrainingParams(num_boost_round=100_000, learning_rate=0.001)
    with TrainerClient(trainer.address) as client:
        job = client.stub.StartTraining(pb.StartTrainingRequest(window=WINDOW, params=long_job, promote=True)).job
        for update in client.watch(job.job_id, timeout=60):
            if update.rounds_done > 0:
                break
    assert trainer.stop(timeout=30) == 0

    restarted = start_trainer(tmp_path, feature, name="after-stop")
    try:
        with TrainerClient(restarted.address) as client:
            stopped = client.stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job.job_id)).job
            assert stopped.state == pb.JOB_STATE_FAILED and "stopped while the job was running" in stopped.error
            assert 0 < stopped.rounds_done < 100_000
            assert client.stub.ListModelVersions(pb.ListModelVersionsRequest()).versions == []
    finally:
        restarted.stop()
