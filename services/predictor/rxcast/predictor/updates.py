"""Model updates: poll the trainer's alias, download a new version, verify
it, load and warm it up, then swap it in. Any failure leaves the version
being served in place and is reported (log, metric, GetModelStatus)."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Protocol

from rxcast.clients import ChecksumMismatch, DownloadedModel, LatestVersion, TrainerClient
from rxcast.model import ModelBundle, ModelManifest
from rxcast.predictor.holder import ModelHolder
from rxcast.predictor.serving import EntityFeatures, ServingModel
from rxcast.runtime.errors import FailedPrecondition, RxcastError
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.predictor.updates")


class ModelSource(Protocol):
    """Where published versions come from (the trainer)."""

    def latest(self, alias: str) -> LatestVersion: ...

    def download(self, version: int) -> DownloadedModel: ...


class TrainerModelSource:
    """The trainer's GetLatestVersion and DownloadModel, with deadlines."""

    def __init__(self, address: str, poll_timeout: float = 2.0, download_timeout: float = 120.0):
        self._client = TrainerClient(address, timeout=poll_timeout, download_timeout=download_timeout)

    def latest(self, alias: str) -> LatestVersion:
        return self._client.latest(alias)

    def download(self, version: int) -> DownloadedModel:
        return self._client.download(version)

    def close(self) -> None:
        self._client.close()


def load_verified(
    downloaded: DownloadedModel, expected: LatestVersion, entity_features: EntityFeatures
) -> ServingModel:
    """Check a download (its bytes already match its header) against the poll's answer, then load it."""
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
        entity_features: EntityFeatures = EntityFeatures(),  # noqa: B008 - frozen, shared safely
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
            # The client checks a download's bytes as they arrive: a mismatch is a failed verification.
            self._holder.record_failure("verify" if isinstance(exc, ChecksumMismatch) else stage, exc.message)
            return False
        except Exception as exc:  # noqa: BLE001 - a model that breaks the loader must not stop the poller
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
            except Exception as exc:  # noqa: BLE001 - the poller outlives any single failed poll
                self._holder.record_failure("poll", f"{type(exc).__name__}: {exc}")
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
