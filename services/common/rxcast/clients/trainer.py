"""The trainer's client: model versions (poll, download with checksum),
training jobs, manifests, training policies and retraining triggers."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc

from rxcast.clients.base import ServiceClient
from rxcast.model import ModelManifest
from rxcast.runtime import timestamps
from rxcast.runtime.durable import atomic_write, write_text
from rxcast.runtime.errors import FailedPrecondition
from rxcast.runtime.tls import Trust
from rxcast.trainer.v1 import trainer_pb2 as pb
from rxcast.trainer.v1 import trainer_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50052"


class ChecksumMismatch(FailedPrecondition):
    """A download's bytes do not match the size or sha256 its header announced."""


@dataclass(frozen=True)
class LatestVersion:
    """The version an alias names (0: none yet) and its sha256."""

    version: int
    sha256: str


@dataclass(frozen=True)
class DownloadedModel:
    """A version's model file and manifest, checked against the stream's header."""

    version: int
    sha256: str
    size_bytes: int
    manifest_json: str
    data: bytes


class TrainerClient(ServiceClient):
    SERVICE = pb.DESCRIPTOR.services_by_name["TrainerService"]
    STUB = trainer_pb2_grpc.TrainerServiceStub
    NAME = "trainer"

    def __init__(
        self,
        address: str = "",
        *,
        timeout: float = 30.0,
        download_timeout: float = 120.0,
        max_message_mb: int = 64,
        trust: Trust | None = None,
    ):
        address = address or os.environ.get("RXCAST_TRAINER_ADDRESS", DEFAULT_ADDRESS)
        super().__init__(address, timeout=timeout, max_message_mb=max_message_mb, trust=trust)
        self.download_timeout = download_timeout

    def latest(self, alias: str, *, timeout: float | None = None) -> LatestVersion:
        try:
            answer = self.stub.GetLatestVersion(pb.GetLatestVersionRequest(alias=alias), timeout=timeout)
        except grpc.RpcError as exc:
            raise self.failed(exc, "GetLatestVersion") from None
        return LatestVersion(answer.version, answer.sha256)

    def manifest(self, version: int) -> dict[str, Any] | None:
        """A version's manifest as a dict; None when the trainer does not know the version."""
        try:
            answer = self.stub.GetModelVersion(pb.GetModelVersionRequest(version=version, include_manifest=True))
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise self.failed(exc, f"GetModelVersion({version})") from None
        try:
            return json.loads(answer.version.manifest_json or "{}")
        except json.JSONDecodeError:
            raise FailedPrecondition(f"trainer: the manifest of version {version} is not JSON") from None

    def list_versions(self, page_size: int = 1000) -> list[pb.ModelVersion]:
        """Every published version, newest first, following the pages."""
        versions: list[pb.ModelVersion] = []
        token = ""
        try:
            while True:
                answer = self.stub.ListModelVersions(pb.ListModelVersionsRequest(page_size=page_size, page_token=token))
                versions.extend(answer.versions)
                token = answer.next_page_token
                if not token:
                    return versions
        except grpc.RpcError as exc:
            raise self.failed(exc, "ListModelVersions") from None

    def alias_history(self, alias: str = "") -> list[pb.AliasChange]:
        """Every move of `alias` (empty: the champion), newest first."""
        try:
            return list(self.stub.ListAliasHistory(pb.ListAliasHistoryRequest(alias=alias)).changes)
        except grpc.RpcError as exc:
            raise self.failed(exc, "ListAliasHistory") from None

    def rollback(self, alias: str, to_version: int = 0, reason: str = "") -> pb.RollbackResponse:
        """Point `alias` back at `to_version` (0: the version it named before)."""
        request = pb.RollbackRequest(alias=alias, to_version=to_version, reason=reason)
        try:
            return self.stub.Rollback(request)
        except grpc.RpcError as exc:
            raise self.failed(exc, "Rollback") from None

    def start_training(self, request: pb.StartTrainingRequest) -> pb.TrainingJob:
        try:
            return self.stub.StartTraining(request).job
        except grpc.RpcError as exc:
            raise self.failed(exc, "StartTraining") from None

    def submit_trigger(
        self,
        trigger_id: str,
        kind: str,
        changed_ms: int,
        reason: str,
        aliases: Sequence[str] = (),
    ) -> pb.SubmitTriggerResponse:
        """Hand the trainer a reason to retrain; the same `trigger_id` again is
        the same trigger. The answer says whether it was new and, per alias,
        the newest business day from which its job can run."""
        request = pb.SubmitTriggerRequest(
            trigger_id=trigger_id, kind=kind, changed_at=timestamps.from_ms(changed_ms), reason=reason[:2000],
            aliases=list(aliases),
        )  # fmt: skip
        try:
            return self.stub.SubmitTrigger(request)
        except grpc.RpcError as exc:
            raise self.failed(exc, "SubmitTrigger") from None

    def set_policy(self, policy: pb.TrainingPolicy) -> pb.TrainingPolicy:
        try:
            return self.stub.SetTrainingPolicy(pb.SetTrainingPolicyRequest(policy=policy)).policy
        except grpc.RpcError as exc:
            raise self.failed(exc, "SetTrainingPolicy") from None

    def policies(self) -> list[pb.PolicyStatus]:
        """Every alias's training policy and where it stands."""
        try:
            return list(self.stub.ListTrainingPolicies(pb.ListTrainingPoliciesRequest()).policies)
        except grpc.RpcError as exc:
            raise self.failed(exc, "ListTrainingPolicies") from None

    def job(self, job_id: str) -> pb.TrainingJob:
        try:
            return self.stub.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job_id)).job
        except grpc.RpcError as exc:
            raise self.failed(exc, f"GetTrainingJob({job_id})") from None

    def watch(self, job_id: str, timeout: float = 24 * 3600.0) -> Iterator[pb.TrainingJob]:
        """A job's states until it ends."""
        for update in self.stub.WatchTrainingJob(pb.WatchTrainingJobRequest(job_id=job_id), timeout=timeout):
            yield update.job

    def download(self, version: int = 0, alias: str = "", chunk_bytes: int = 0) -> DownloadedModel:
        """A version (or the one `alias` names) into memory, checked against
        the size and sha256 its header announces."""
        buffer = io.BytesIO()
        header = self._stream(version, alias, chunk_bytes, buffer)
        return DownloadedModel(
            header.version, header.sha256, header.size_bytes, header.manifest_json, buffer.getvalue()
        )

    def download_to(
        self, out_dir: Path | str, version: int = 0, alias: str = "", chunk_bytes: int = 0
    ) -> ModelManifest:
        """A version into `out_dir` (model file and manifest.json), checked
        against its sha256; the directory then loads with ModelBundle.load.
        A failed download leaves no model file behind."""
        out = Path(out_dir)
        headers: list[pb.ModelFileHeader] = []
        scratch = out / ".download"
        atomic_write(scratch, lambda sink: headers.append(self._stream(version, alias, chunk_bytes, sink)))
        manifest = ModelManifest.from_json(headers[0].manifest_json)
        os.replace(scratch, out / manifest.model_file)
        write_text(out / "manifest.json", headers[0].manifest_json)
        return manifest

    def _stream(self, version: int, alias: str, chunk_bytes: int, sink: IO[bytes]) -> pb.ModelFileHeader:
        what = f"DownloadModel({version or alias or 'champion'})"
        request = pb.DownloadModelRequest(version=version, alias=alias, chunk_bytes=chunk_bytes)
        header = None
        digest = hashlib.sha256()
        size = 0
        try:
            for part in self.stub.DownloadModel(request, timeout=self.download_timeout):
                if part.WhichOneof("part") == "header":
                    header = part.header
                    continue
                if header is None:
                    raise FailedPrecondition(f"trainer {what}: the stream did not start with a header")
                digest.update(part.chunk)
                size += len(part.chunk)
                sink.write(part.chunk)
        except grpc.RpcError as exc:
            raise self.failed(exc, what) from None
        if header is None:
            raise FailedPrecondition(f"trainer {what}: no header in the stream")
        if size != header.size_bytes or (header.sha256 and digest.hexdigest() != header.sha256):
            raise ChecksumMismatch(
                f"model {header.version}: checksum mismatch: received {size} bytes with sha256 {digest.hexdigest()}, "
                f"the trainer's header announced {header.size_bytes} bytes with {header.sha256}"
            )
        return header
