"""The model registry: immutable, numbered model versions and aliases.

Layout (a directory by default; every file maps onto one object-store key):

    versions/0000000042/model.txt       the LightGBM model file
    versions/0000000042/manifest.json   its manifest (rxcast.model.ModelManifest)
    aliases/champion.json               pointer: the version an alias names now
    history/champion/0000000007.json    one immutable record per alias move
    staging/<pid>-<id>/                 publishes in progress (never read)

Publishing writes both files of a version into a private staging directory,
syncs them, and commits by renaming the directory to the next free version
number. The rename is atomic and fails if the number is taken, so a version
is either wholly visible or absent, and concurrent publishers (threads or
processes) get distinct numbers by retrying with the next one. On an object
store the same commit is a conditional put (if-none-match) of the manifest,
written after the model file.

An alias moves under an exclusive file lock: the move's history record is
written first (the commit point), then the pointer is replaced. A process
that dies between the two leaves the pointer one move behind; opening the
registry, or the next move, brings it up to date from the history.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rxcast.model import ModelBundle, ModelManifest
from rxcast.model.bundle import sha256_bytes
from rxcast.runtime.durable import (
    create_exclusive,
    fsync_directory,
    pid_alive,
    quarantine,
    remove_scratch,
    write_json,
    write_synced,
)
from rxcast.runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, RxcastError
from rxcast.runtime.logs import get_logger
from rxcast.runtime.validation import clip_text, quote
from rxcast.trainer.faults import crash_point

log = get_logger("rxcast.trainer.registry")

DEFAULT_ALIAS = "champion"
MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.txt"
#: A refitted version\'s holdout-judged model, next to the shipped one.
VALIDATION_FILE = "validation_model.txt"
_DIGITS = 10
# \A..\Z, not ^..$: "$" also matches before a final newline, and "x\n" would
# name the file aliases/x\n.json.
_ALIAS_NAME = re.compile(r"\A[a-z][a-z0-9_.-]{0,62}\Z")
ALIAS_KINDS = ("gate", "force", "rollback")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _key(number: int) -> str:
    return f"{number:0{_DIGITS}d}"


def _number(name: str) -> int | None:
    return int(name) if len(name) == _DIGITS and name.isdigit() else None


def alias_name(name: str) -> str:
    """The alias a request names ("" means champion), checked."""
    name = name or DEFAULT_ALIAS
    if not _ALIAS_NAME.match(name):
        raise InvalidArgument(f"alias: must be a lowercase letter then up to 62 of [a-z0-9_.-], got {quote(name)}")
    return name


@dataclasses.dataclass(frozen=True)
class VersionInfo:
    """A committed version: its manifest and where its model file is."""

    version: int
    manifest: ModelManifest
    model_path: Path
    size_bytes: int


@dataclasses.dataclass(frozen=True)
class AliasChange:
    """One recorded move of an alias."""

    alias: str
    from_version: int
    to_version: int
    reason: str
    kind: str
    time: str
    sequence: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AliasState:
    """Where an alias points now, and since when."""

    alias: str
    version: int
    sequence: int
    updated_time: str


class ModelRegistry:
    """Model versions and aliases under one root directory."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self._versions = self.root / "versions"
        self._aliases = self.root / "aliases"
        self._history = self.root / "history"
        self._staging = self.root / "staging"
        for directory in (self._versions, self._aliases, self._history, self._staging):
            directory.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.root / ".lock"
        self._cache_lock = threading.Lock()
        self._infos: dict[int, VersionInfo] = {}
        self._pointers: dict[str, tuple[tuple[int, int, int], AliasState]] = {}
        self._sweep_abandoned()
        for alias in self.alias_names():
            with self._exclusive():
                self._reconcile(alias)

    # -- versions -------------------------------------------------------------

    def publish(self, model_text: bytes, manifest: ModelManifest, validation_text: bytes | None = None) -> VersionInfo:
        """Commit a new version; returns it with its number, sha256 and time.
        `validation_text`: the model the holdout judged, when the shipped one
        was refitted after it (kept for fair gate comparisons later)."""
        stage = self._staging / f"{os.getpid()}-{uuid.uuid4().hex}"
        stage.mkdir()
        try:
            write_synced(stage / MODEL_FILE, model_text)
            if validation_text is not None:
                write_synced(stage / VALIDATION_FILE, validation_text)
            crash_point("publish:model_staged")
            manifest = manifest.with_updates(sha256=sha256_bytes(model_text), model_file=MODEL_FILE)
            while True:
                number = self.latest_version() + 1
                manifest = manifest.with_updates(version=number, created_time=_now())
                write_synced(stage / MANIFEST_FILE, manifest.to_json().encode("utf-8"))
                fsync_directory(stage)
                crash_point("publish:manifest_staged")
                try:
                    os.rename(stage, self._versions / _key(number))
                except OSError:
                    if (self._versions / _key(number)).exists():
                        continue  # another publisher took the number: take the next
                    raise
                break
            fsync_directory(self._versions)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        crash_point("publish:committed")
        log.info("version_published", version=number, sha256=manifest.sha256, bytes=len(model_text))
        return self.get(number)

    def versions(self) -> list[int]:
        """Committed version numbers, ascending."""
        numbers = (_number(entry.name) for entry in os.scandir(self._versions))
        return sorted(n for n in numbers if n is not None)

    def latest_version(self) -> int:
        """The highest committed version number; 0 when there is none."""
        found = self.versions()
        return found[-1] if found else 0

    def get(self, version: int) -> VersionInfo:
        """A committed version; NotFound if there is no such version."""
        with self._cache_lock:
            info = self._infos.get(version)
        if info is not None:
            return info
        directory = self._versions / _key(version) if version > 0 else None
        if directory is None or not directory.is_dir():
            raise NotFound(f"version {version} does not exist (latest is {self.latest_version()})")
        try:
            manifest = ModelManifest.from_json((directory / MANIFEST_FILE).read_text())
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RxcastError) as exc:
            # Left in place (its number stays taken); listings skip it.
            log.error("manifest_unreadable", version=version, error=str(exc)[:200])
            raise FailedPrecondition(f"version {version}: its manifest is unreadable") from None
        model_path = directory / manifest.model_file
        info = VersionInfo(version, manifest, model_path, model_path.stat().st_size)
        with self._cache_lock:
            self._infos[version] = info
        return info

    def readable(self, versions: list[int]) -> list[VersionInfo]:
        """The versions of `versions` whose manifest reads; one that does not is skipped (and logged)."""
        found = []
        for version in versions:
            try:
                found.append(self.get(version))
            except FailedPrecondition:
                continue
        return found

    def load_bundle(self, version: int) -> ModelBundle:
        """A version loaded and checked against its sha256, ready to predict."""
        return ModelBundle.load(self.get(version).model_path.parent)

    def load_validation_bundle(self, version: int) -> ModelBundle | None:
        """The model a refitted version's holdout judged (its out-of-sample
        stand-in on the days it was refitted on); None for a version that was
        not refitted."""
        info = self.get(version)
        fit = info.manifest.fit
        if not fit.get("validation_sha256"):
            return None
        manifest = info.manifest.with_updates(
            sha256=fit["validation_sha256"],
            categorical_levels={k: tuple(v) for k, v in fit["validation_categorical_levels"].items()},
        )
        return ModelBundle.from_bytes((info.model_path.parent / VALIDATION_FILE).read_bytes(), manifest)

    # -- aliases --------------------------------------------------------------

    def alias_names(self) -> list[str]:
        names = {p.stem for p in self._aliases.glob("*.json")} | {p.name for p in self._history.iterdir() if p.is_dir()}
        return sorted(n for n in names if _ALIAS_NAME.match(n))

    def alias(self, name: str) -> AliasState | None:
        """Where an alias points; None if it never pointed anywhere.

        Cheap enough to call on every poll: a stat of the pointer, and a read
        only when it was replaced since the last call.
        """
        name = alias_name(name)
        path = self._pointer_path(name)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._pointers.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        state = self._read_pointer(name)
        if state is not None:
            self._pointers[name] = (key, state)
        return state

    def aliases_by_version(self) -> dict[int, list[str]]:
        """Every alias that points somewhere, by the version it points at."""
        found: dict[int, list[str]] = {}
        for name in self.alias_names():
            state = self.alias(name)
            if state is not None and state.version:
                found.setdefault(state.version, []).append(name)
        return found

    def aliases_of(self, version: int) -> list[str]:
        """The aliases pointing at `version` now."""
        return self.aliases_by_version().get(version, [])

    def resolve(self, version: int, alias: str) -> VersionInfo:
        """A version by number, or (number 0) the one an alias points at."""
        if version < 0:
            raise InvalidArgument(f"version: must be >= 0, got {version}")
        if version > 0:
            return self.get(version)
        name = alias_name(alias)
        state = self.alias(name)
        if state is None or state.version == 0:
            raise NotFound(f"alias {name!r} points at no version yet")
        return self.get(state.version)

    def move_alias(
        self, name: str, to_version: int, kind: str, reason: str, expected_from: int | None = None
    ) -> AliasChange:
        """Point an alias at a version and record the move.

        With `expected_from`, the move happens only if the alias still points
        there (0: nowhere), so a decision taken on the old state cannot be
        applied to a newer one; Aborted otherwise.
        """
        name = alias_name(name)
        if kind not in ALIAS_KINDS:
            raise InvalidArgument(f"kind: must be one of {ALIAS_KINDS}, got {kind!r}")
        self.get(to_version)
        with self._exclusive():
            current = self._reconcile(name)
            from_version = current.version if current else 0
            if expected_from is not None and from_version != expected_from:
                raise Aborted(f"alias {name!r} moved from v{expected_from} to v{from_version} meanwhile; decide again")
            change = AliasChange(
                alias=name,
                from_version=from_version,
                to_version=to_version,
                reason=clip_text(reason),
                kind=kind,
                time=_now(),
                sequence=(current.sequence if current else 0) + 1,
            )
            self._record(change)
            crash_point("alias:recorded")
            self._write_pointer(change)
        log.info("alias_moved", alias=name, from_version=from_version, to_version=to_version, kind=kind, reason=reason)
        return change

    def history(self, name: str) -> list[AliasChange]:
        """Every move of an alias, newest first."""
        name = alias_name(name)
        directory = self._history / name
        if not directory.is_dir():
            return []
        numbers = sorted(
            (n for n in (_number(p.stem) for p in directory.glob("*.json")) if n is not None), reverse=True
        )
        changes = (self._read_change(directory / f"{_key(n)}.json") for n in numbers)
        return [c for c in changes if c is not None]

    def previous_version(self, name: str) -> int:
        """The version an alias pointed at before its last move."""
        changes = self.history(name)
        if not changes:
            raise FailedPrecondition(f"alias {alias_name(name)!r} has never moved: nothing to roll back to")
        if changes[0].from_version == 0:
            raise FailedPrecondition(
                f"alias {alias_name(name)!r} pointed nowhere before v{changes[0].to_version}: nothing to roll back to"
            )
        return changes[0].from_version

    # -- internals --------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the registry's alias lock (across threads and processes)."""
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _pointer_path(self, name: str) -> Path:
        return self._aliases / f"{name}.json"

    def _read_pointer(self, name: str) -> AliasState | None:
        """The pointer file; None if there is none or it was unreadable (then
        quarantined: `_reconcile` rewrites it from the newest history record)."""
        path = self._pointer_path(name)
        try:
            data = json.loads(path.read_text())
            return AliasState(name, int(data["version"]), int(data["sequence"]), str(data["updated_time"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            quarantine(path, f"unreadable alias pointer: {exc}", missing_ok=True)
            return None

    def _read_change(self, path: Path) -> AliasChange | None:
        """One history record; None if it was unreadable (then quarantined)."""
        try:
            data = json.loads(path.read_text())
            return AliasChange(**{f.name: data[f.name] for f in dataclasses.fields(AliasChange)})
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            quarantine(path, f"unreadable alias history record: {exc}", missing_ok=True)
            return None

    def _reconcile(self, name: str) -> AliasState | None:
        """The alias's state, with the pointer brought up to its newest recorded move."""
        current = self._read_pointer(name)
        changes = self.history(name)
        if changes and (current is None or changes[0].sequence > current.sequence):
            log.warning("alias_pointer_repaired", alias=name, to_version=changes[0].to_version)
            self._write_pointer(changes[0])
            current = self._read_pointer(name)
        return current

    def _record(self, change: AliasChange) -> None:
        directory = self._history / change.alias
        directory.mkdir(exist_ok=True)
        # FileExistsError if the sequence is taken: the commit point of a move.
        create_exclusive(
            directory / f"{_key(change.sequence)}.json", json.dumps(change.to_dict(), sort_keys=True).encode()
        )

    def _write_pointer(self, change: AliasChange) -> None:
        pointer = {
            "alias": change.alias,
            "version": change.to_version,
            "sequence": change.sequence,
            "updated_time": change.time,
        }
        write_json(self._pointer_path(change.alias), pointer, sort_keys=True)

    def _sweep_abandoned(self) -> None:
        """Remove staging directories and temp files of processes that died."""
        for entry in self._staging.iterdir():
            pid = entry.name.split("-", 1)[0]
            if pid.isdigit() and not pid_alive(int(pid)):
                log.info("staging_swept", path=str(entry))
                shutil.rmtree(entry, ignore_errors=True)
        for directory in (self._aliases, *[p for p in self._history.iterdir() if p.is_dir()]):
            remove_scratch(directory)
