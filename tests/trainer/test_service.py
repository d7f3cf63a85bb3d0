"""The trainer through gRPC, as real processes: a feature service seeded with
a simulated world, a trainer reading from it, a client training, gating,
rolling back and downloading."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from rxcast.clients import FeatureClient
from rxcast.model import ModelBundle
from rxcast.trainer.registry import ModelRegistry
from rxcast.trainer.v1 import trainer_pb2 as pb
from tests.scrape import metrics_text

WINDOW = pb.DayWindow(start_day="2025-01-01", end_day="2025-04-20")
QUICK = pb.TrainingParams(num_boost_round=30, learning_rate=0.1, num_leaves=15)


#: The alias this module's story moves, apart from the champion other tests use.
ALIAS = "story"


def train(client, params=QUICK, promote=True, reason="test", window=WINDOW, alias=ALIAS) -> list[pb.TrainingJob]:
    """Start a job and follow it to its end; returns every state seen."""
    request = pb.StartTrainingRequest(window=window, params=params, reason=reason, promote=promote, alias=alias)
    job = client.stub.StartTraining(request).job
    return list(client.watch(job.job_id, timeout=120))


def test_train_gate_rollback_and_download(client, tmp_path, feature):
    stub = client.stub
    updates = train(client, reason="first model")
    final = updates[-1]
    assert final.state == pb.JOB_STATE_SUCCEEDED, final.error
    seen = [u.state for u in updates]
    assert list(dict.fromkeys(seen)) == list(range(seen[0], pb.JOB_STATE_SUCCEEDED + 1))
    assert seen[0] in (pb.JOB_STATE_QUEUED, pb.JOB_STATE_LOADING)
    assert final.rounds_done == final.rounds_total == 30 and final.rows_loaded > 0
    assert final.promoted and final.version >= 1
    evaluation = final.evaluation
    assert evaluation.model.rows == evaluation.baseline.rows > 0
    assert evaluation.model.wape < evaluation.baseline.wape
    assert stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id=final.job_id)).job.version == final.version
    first = final.version

    latest = stub.GetLatestVersion(pb.GetLatestVersionRequest(alias=ALIAS))
    assert (latest.alias, latest.version) == (ALIAS, first)

    # A deliberately weak model is published but does not pass the gate.
    weak = train(client, pb.TrainingParams(num_boost_round=2, learning_rate=0.05), reason="weak")[-1]
    assert weak.state == pb.JOB_STATE_SUCCEEDED and not weak.promoted
    assert weak.evaluation.champion_version == first and "does not beat" in weak.error
    assert stub.GetLatestVersion(pb.GetLatestVersionRequest(alias=ALIAS)).version == first
    with pytest.raises(grpc.RpcError) as refused:
        stub.SetAlias(pb.SetAliasRequest(alias=ALIAS, version=weak.version, reason="try"))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "gate refused" in refused.value.details()

    forced = stub.SetAlias(pb.SetAliasRequest(alias=ALIAS, version=weak.version, force=True, reason="operator")).change
    assert (forced.from_version, forced.to_version, forced.kind) == (first, weak.version, "force")
    assert stub.GetLatestVersion(pb.GetLatestVersionRequest(alias=ALIAS)).version == weak.version
    back = stub.Rollback(pb.RollbackRequest(alias=ALIAS, reason="weak forecasts")).change
    assert (back.from_version, back.to_version, back.kind) == (weak.version, first, "rollback")
    history = stub.ListAliasHistory(pb.ListAliasHistoryRequest(alias=ALIAS)).changes
    assert [(c.kind, c.to_version) for c in history[:3]] == [
        ("rollback", first),
        ("force", weak.version),
        ("gate", first),
    ]
    assert history[0].reason == "weak forecasts"

    listed = stub.ListModelVersions(pb.ListModelVersionsRequest(page_size=1))
    assert [v.version for v in listed.versions] == [weak.version] and listed.next_page_token
    rest = stub.ListModelVersions(pb.ListModelVersionsRequest(page_token=listed.next_page_token)).versions
    by_number = {v.version: v for v in rest}
    assert ALIAS in by_number[first].aliases and by_number[first].evaluation.model.rows > 0
    assert by_number[first].reason == "first model" and not by_number[first].manifest_json

    # Download in small chunks: header first, bytes that match the checksum.
    responses = list(stub.DownloadModel(pb.DownloadModelRequest(alias=ALIAS, chunk_bytes=4096)))
    header = responses[0].header
    assert responses[0].WhichOneof("part") == "header" and header.version == first
    body = b"".join(r.chunk for r in responses[1:])
    assert all(r.WhichOneof("part") == "chunk" for r in responses[1:]) and len(responses) > 2
    assert len(body) == header.size_bytes and hashlib.sha256(body).hexdigest() == header.sha256
    described = stub.GetModelVersion(pb.GetModelVersionRequest(version=first, include_manifest=True)).version
    assert described.sha256 == header.sha256 and '"reference_profile"' in described.manifest_json

    manifest = client.download_to(tmp_path / "model", alias=ALIAS)
    bundle = ModelBundle.load(tmp_path / "model")
    assert bundle.version == manifest.version == first
    # The downloaded model forecasts from the feature service's own online features.
    with FeatureClient(feature.address, timeout=10) as features:
        online = features.online(["S0001", "S0002"], ["M0001", "M0002"], bundle.manifest.feature_names)
    forecasts = bundle.predict(online.values)
    assert forecasts.shape == (2,) and np.all(np.isfinite(forecasts)) and np.all(forecasts >= 0)


def _code(call, request):
    with pytest.raises(grpc.RpcError) as caught:
        result = call(request)
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    return caught.value.code(), caught.value.details()


@pytest.mark.parametrize(
    "rpc, request_, code, words",
    [
        ("GetModelVersion", pb.GetModelVersionRequest(version=999), "NOT_FOUND", "version 999 does not exist"),
        ("DownloadModel", pb.DownloadModelRequest(version=999), "NOT_FOUND", "version 999"),
        ("DownloadModel", pb.DownloadModelRequest(version=1, chunk_bytes=64 << 20), "INVALID_ARGUMENT", "chunk_bytes"),
        ("SetAlias", pb.SetAliasRequest(version=999, force=True), "NOT_FOUND", "version 999"),
        ("SetAlias", pb.SetAliasRequest(version=0), "INVALID_ARGUMENT", "version: must be > 0"),
        ("Rollback", pb.RollbackRequest(alias="canary"), "FAILED_PRECONDITION", "never moved"),
        ("GetLatestVersion", pb.GetLatestVersionRequest(alias="../x"), "INVALID_ARGUMENT", "alias"),
        ("GetTrainingJob", pb.GetTrainingJobRequest(job_id="job-none"), "NOT_FOUND", "job-none"),
        ("WatchTrainingJob", pb.WatchTrainingJobRequest(), "INVALID_ARGUMENT", "job_id"),
        ("ListModelVersions", pb.ListModelVersionsRequest(page_token="x"), "INVALID_ARGUMENT", "page_token"),
        ("StartTraining", pb.StartTrainingRequest(), "INVALID_ARGUMENT", "window"),
        (
            "StartTraining",
            pb.StartTrainingRequest(window=pb.DayWindow(start_day="2025-04-01", end_day="2025-03-01")),
            "INVALID_ARGUMENT",
            "end_day 2025-03-01 is before start_day 2025-04-01",
        ),
        (
            "StartTraining",
            pb.StartTrainingRequest(window=pb.DayWindow(start_day="2025-03-01", end_day="2025-03-10")),
            "INVALID_ARGUMENT",
            "too short",
        ),
        (
            "StartTraining",
            pb.StartTrainingRequest(window=pb.DayWindow(start_day="2025-13-01", end_day="2025-03-10")),
            "INVALID_ARGUMENT",
            "window.start_day",
        ),
        (
            "StartTraining",
            pb.StartTrainingRequest(window=WINDOW, params=pb.TrainingParams(learning_rate=2.0)),
            "INVALID_ARGUMENT",
            "params.learning_rate",
        ),
        (
            "StartTraining",
            pb.StartTrainingRequest(window=WINDOW, params=pb.TrainingParams(extra={"max_bin": "many"})),
            "INVALID_ARGUMENT",
            "params.extra['max_bin']",
        ),
    ],
)
def test_bad_requests_get_a_clear_status(client, rpc, request_, code, words):
    got, details = _code(getattr(client.stub, rpc), request_)
    assert got.name == code and words in details, details


def test_a_window_without_data_fails_the_job_and_moves_no_alias(client):
    before = client.stub.GetLatestVersion(pb.GetLatestVersionRequest())
    empty = pb.DayWindow(start_day="2024-01-01", end_day="2024-06-30")  # before the world begins
    final = train(client, window=empty, reason="nothing there", alias="")[-1]
    assert final.state == pb.JOB_STATE_FAILED and final.version == 0 and not final.promoted
    assert "no labelled rows" in final.error
    after = client.stub.GetLatestVersion(pb.GetLatestVersionRequest())
    assert (after.version, after.updated_time) == (before.version, before.updated_time)


def test_latest_version_polls_follow_moves_made_by_other_processes(client, trainer):
    """Predictors poll GetLatestVersion: it must see a move made outside this
    trainer process at once, from several pollers, without loading models."""
    registry = ModelRegistry(trainer.registry_dir)
    versions = registry.versions()
    assert len(versions) >= 2
    request = pb.GetLatestVersionRequest(alias="poll")
    assert client.stub.GetLatestVersion(request).version == 0
    for target in versions[:2]:
        registry.move_alias("poll", target, "force", "moved by another process")

        def poll(_):
            return {client.stub.GetLatestVersion(request).version for _ in range(50)}

        with ThreadPoolExecutor(4) as pool:
            seen = set().union(*pool.map(poll, range(4)))
        assert seen == {target}
        answer = client.stub.GetLatestVersion(request)
        assert answer.sha256 == registry.get(target).manifest.sha256 and answer.updated_time.seconds > 0


def test_operators_see_trainer_metrics(trainer, client):
    text = metrics_text(trainer.metrics_port)
    published = [line for line in text.splitlines() if line.startswith("rxcast_trainer_versions_published_total ")]
    assert published and float(published[0].split()[1]) >= 1
    assert 'rxcast_trainer_jobs_finished_total{outcome="succeeded"}' in text
    assert 'rxcast_trainer_last_holdout_metric{metric="wape",model="baseline"}' in text
    assert 'rxcast_trainer_stage_seconds_count{stage="training"}' in text
