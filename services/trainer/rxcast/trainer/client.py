"""A client of the trainer service: what the CLI, the tests and other
services use to train, follow jobs and fetch model versions."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import grpc

from rxcast.model import ModelManifest
from rxcast.runtime.channels import connect
from rxcast.runtime.errors import FailedPrecondition
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc

TRAINER_SERVICE = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"]
DEFAULT_ADDRESS = "127.0.0.1:50052"


class TrainerClient:
    """A channel to the trainer with a default deadline on every call."""

    def __init__(self, address: str = "", timeout: float = 30.0):
        self.address = address or os.environ.get("RXCAST_TRAINER_ADDRESS", DEFAULT_ADDRESS)
        self.timeout = timeout
        self.channel = connect(self.address, [TRAINER_SERVICE], default_timeout=timeout)
        self.stub = trainer_pb2_grpc.TrainerServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> TrainerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def watch(self, job_id: str, timeout: float = 24 * 3600.0) -> Iterator[trainer_pb2.TrainingJob]:
        """A job's states until it ends."""
        for update in self.stub.WatchTrainingJob(trainer_pb2.WatchTrainingJobRequest(job_id=job_id), timeout=timeout):
            yield update.job

    def download(self, out_dir: Path | str, version: int = 0, alias: str = "", chunk_bytes: int = 0) -> ModelManifest:
        """Fetch a version into `out_dir` (model file and manifest.json), checked
        against its sha256; the directory then loads with ModelBundle.load."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        request = trainer_pb2.DownloadModelRequest(version=version, alias=alias, chunk_bytes=chunk_bytes)
        responses = self.stub.DownloadModel(request)
        try:
            first = next(responses)
        except StopIteration:
            raise FailedPrecondition("download ended before its header") from None
        if first.WhichOneof("part") != "header":
            raise FailedPrecondition("download did not start with a header")
        header = first.header
        manifest = ModelManifest.from_json(header.manifest_json)
        partial = out / f".{manifest.model_file}.partial"
        digest = hashlib.sha256()
        size = 0
        try:
            with open(partial, "wb") as handle:
                for response in responses:
                    digest.update(response.chunk)
                    size += len(response.chunk)
                    handle.write(response.chunk)
            if size != header.size_bytes or digest.hexdigest() != header.sha256:
                raise FailedPrecondition(
                    f"v{header.version}: received {size} bytes with sha256 {digest.hexdigest()}, "
                    f"expected {header.size_bytes} bytes with {header.sha256}"
                )
            os.replace(partial, out / manifest.model_file)
        except (grpc.RpcError, FailedPrecondition):
            partial.unlink(missing_ok=True)
            raise
        (out / "manifest.json").write_text(header.manifest_json)
        return manifest
