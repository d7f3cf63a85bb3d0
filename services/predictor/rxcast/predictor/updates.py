"""Model updates: poll the trainer's alias, download a new version, verify
it, load and warm it up, then swap it in. Any failure leaves the version
being served in place and is reported (log, metric, GetModelStatus)."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import grpc

from rxcast.model import ModelBundle, ModelManifest
from rxcast.predictor.holder import ModelHolder
from rxcast.predictor.serving import EntityFeatures, ServingModel
from rxcast.runtime.channels import as_domain_error, connect
from rxcast.runtime.errors import FailedPrecondition, RxcastError
from rxcast.runtime.logs import get_logger
from rxcast.trainer.v1 import trainer_pb2, trainer_pb2_grpc

log = get_logger("rxcast.predictor.updates")


@dataclass(frozen=True)
class LatestVersion:
    version: int
    sha256: str


@dataclass(frozen=True)
class DownloadedModel:
    version: int
    sha256: str
    size_bytes: int
    manifest_json: str
    data: bytes


class ModelSource(Protocol):
    """Where published versions come from (the trainer)."""

    def latest(self, alias: str) -> LatestVersion: ...

    def download(self, version: int) -> DownloadedModel: ...


class TrainerModelSource:
    """The trainer's GetLatestVersion and DownloadModel, with deadlines."""

    def __init__(self, address: str, poll_timeout: float = 2.0, download_timeout: float = 120.0):
        self._channel = connect(address, [trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"]], poll_timeout)
        self._stub = trainer_pb2_grpc.TrainerServiceStub(self._channel)
        self._poll_timeout = poll_timeout
        self._download_timeout = download_timeout

    def latest(self, alias: str) -> LatestVersion:
        try:
            answer = self._stub.GetLatestVersion(
                trainer_pb2.GetLatestVersionRequest(alias=alias), timeout=self._poll_timeout
            )
        except grpc.RpcError as exc:
            raise as_domain_error(exc, "trainer GetLatestVersion") from None
        return LatestVersion(answer.version, answer.sha256)

    def download(self, version: int) -> DownloadedModel:
        header = None
        chunks: list[bytes] = []
        try:
            for part in self._stub.DownloadModel(
                trainer_pb2.DownloadModelRequest(version=version), timeout=self._download_timeout
            ):
                if part.HasField("header"):
                    header = part.header
                else:
                    chunks.append(part.chunk)
        except grpc.RpcError as exc:
            raise as_domain_error(exc, f"trainer DownloadModel({version})") from None
        if header is None:
            raise FailedPrecondition(f"trainer DownloadModel({version}): no header in the stream")
        return DownloadedModel(header.version, header.sha256, header.size_bytes, header.manifest_json, b"".join(chunks))

    def close(self) -> None:
        self._channel.close()


def load_verified(downloaded: DownloadedModel, expected: LatestVersion, entity_features: EntityFeatures) -> ServingModel:
    """Check a download against its header and the poll's answer, then load it."""
    data = downloaded.data
    if downloaded.version != expected.version:
        raise FailedPrecondition(f"model {expected.version}: the trainer sent version {downloaded.version}")
    if len(data) != downloaded.size_bytes:
        raise FailedPrecondition(
            f"model {expected.version}: received {len(data)} bytes, the header announced {downloaded.size_bytes}"
        )
    digest = hashlib.sha256(data).hexdigest()
    for source, wanted in (("header", downloaded.sha256), ("alias", expected.sha256)):
        if wanted and digest != wanted:
            raise FailedPrecondition(
                f"model {expected.version}: checksum mismatch: sha256 {digest} but the {source} says {wanted}"
            )
    manifest = ModelManifest.from_json(downloaded.manifest_json)
    if manifest.version != expected.version:
        raise FailedPrecondition(f"model {expected.version}: its manifest says version {manifest.version}")
    if not manifest.sha256:
        manifest = manifest.with_updates(sha256=digest)
    return ServingModel.build(ModelBundle.from_bytes(data, manifest), entity_features)


def load_directory(path: Path, entity_features: EntityFeatures) -> ServingModel:
    """A version directory (manifest.json + model file), as the trainer's registry holds it."""
    return ServingModel.build(ModelBundle.load(Path(path)), entity_features)


class ModelPoller:
    """Polls `source` every `interval` seconds on a daemon thread."""

    def __init__(
        self,
        holder: ModelHolder,
        source: ModelSource,
        alias: str,
        interval: float,
        entity_features: EntityFeatures = EntityFeatures(),
        max_backoff: float = 60.0,
    ):
        self._holder = holder
        self._source = source
        self._alias = alias
        self._interval = interval
        self._entity_features = entity_features
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The poll thread and a batch run's start may poll at once; one downloads, the other sees it loaded.
        self._polling = threading.Lock()
        # A version that failed to verify or load is retried with backoff, not every poll.
        self._failed: dict[tuple[int, str], tuple[int, float]] = {}

    def poll_once(self) -> bool:
        """One poll; True when a new version was swapped in."""
        with self._polling:
            return self._poll()

    def _poll(self) -> bool:
        try:
            latest = self._source.latest(self._alias)
        except RxcastError as exc:
            self._holder.record_failure("poll", exc.message)
            return False
        finally:
            self._holder.record_poll()
        current = self._holder.peek()
        if latest.version <= 0 or (current is not None and current.version == latest.version):
            if current is not None and current.version == latest.version:
                self._holder.record_success()
            return False
        key = (latest.version, latest.sha256)
        failures, retry_at = self._failed.get(key, (0, 0.0))
        if time.monotonic() < retry_at:
            return False
        started = time.perf_counter()
        stage = "download"
        try:
            downloaded = self._source.download(latest.version)
            stage = "verify"
            model = load_verified(downloaded, latest, self._entity_features)
            stage = "load"
            model.warm_up()
        except RxcastError as exc:
            self._note_failure(key, failures)
            self._holder.record_failure(stage, exc.message)
            return False
        except Exception as exc:  # a model that breaks the loader must not stop the poller
            self._note_failure(key, failures)
            self._holder.record_failure(stage, f"model {latest.version}: {type(exc).__name__}: {exc}")
            return False
        self._failed.pop(key, None)
        self._holder.swap(model)
        log.info("model_loaded", version=model.version, seconds=round(time.perf_counter() - started, 3))
        return True

    def _note_failure(self, key: tuple[int, str], failures: int) -> None:
        delay = min(self._max_backoff, self._interval * (2**failures))
        self._failed[key] = (failures + 1, time.monotonic() + delay)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the poller outlives any single failed poll
                self._holder.record_failure("poll", f"{type(exc).__name__}: {exc}")
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
