"""State files that survive a crash at any instant: the one way rxcast writes them.

A file is written aside (a scratch name starting with "_" and ending ".tmp",
which pyarrow and dask skip when they read a directory), flushed and fsynced,
renamed over its target, and the directory fsynced, so a reader sees the old
file or the new one whole, never a torn one, and an acknowledged write is on
disk. Append-only logs fsync each append; a torn last line is skipped on read.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from rxcast.runtime.logs import get_logger
from rxcast.runtime.metrics import STATE_FILES_QUARANTINED

log = get_logger("rxcast.runtime.durable")

SCRATCH_PREFIX = "_"
SCRATCH_SUFFIX = ".tmp"
# _<target name>.<writer pid>-<random>.tmp: the pid tells a crash's leftover from a live writer's file.
_SCRATCH = re.compile(rf"^{SCRATCH_PREFIX}.*\.(\d+)-[0-9a-f]+{re.escape(SCRATCH_SUFFIX)}$")


def _scratch_path(path: Path) -> Path:
    return path.with_name(f"{SCRATCH_PREFIX}{path.name}.{os.getpid()}-{secrets.token_hex(6)}{SCRATCH_SUFFIX}")


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (a writer that may still use its files)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_directory(directory: Path | str) -> None:
    """Make a rename or a new entry in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], Any]) -> None:
    """Replace `path` with what `write` puts into the binary file it is given,
    atomically and durably. Concurrent writers of one path each get their own
    scratch file; the last rename wins whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = _scratch_path(path)
    try:
        with open(scratch, "xb") as sink:
            write(sink)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_synced(path: Path | str, data: bytes) -> None:
    """Write a new file and flush it to disk, without the rename: for files
    staged in a private directory that is itself committed by a rename."""
    with open(path, "wb") as sink:
        sink.write(data)
        sink.flush()
        os.fsync(sink.fileno())


def create_exclusive(path: Path | str, data: bytes) -> None:
    """Create `path` whole with `data`, or raise FileExistsError if it exists:
    concurrent writers of one name (threads or processes) get exactly one winner."""
    path = Path(path)
    scratch = _scratch_path(path)
    try:
        write_synced(scratch, data)
        os.link(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)
    fsync_directory(path.parent)


def write_bytes(path: Path | str, data: bytes) -> None:
    atomic_write(path, lambda sink: sink.write(data))


def write_text(path: Path | str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path | str, data: Any, **dumps: Any) -> None:
    """Replace `path` with `data` as JSON: strict (NaN and infinities refused)
    unless `allow_nan=True` is passed on to json.dumps."""
    write_text(path, json.dumps(data, **{"allow_nan": False, **dumps}))


def read_json(path: Path | str, default: Any = None) -> Any:
    """The JSON document at `path`, or `default` when there is none."""
    try:
        with open(path, encoding="utf-8") as source:
            return json.load(source)
    except FileNotFoundError:
        return default


def quarantine(path: Path | str, reason: str, missing_ok: bool = False) -> Path | None:
    """Rename a state file that cannot be read aside, to
    `<name>.corrupt-<UTC timestamp>`, log why and count it
    (rxcast_state_files_quarantined_total): the service starts from what is
    whole and the file stays for an operator to look at. With `missing_ok`,
    a file already gone (a concurrent reader quarantined it) returns None."""
    path = Path(path)
    if missing_ok and not path.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    suffix = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{suffix}")
        suffix += 1
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise
    fsync_directory(path.parent)
    STATE_FILES_QUARANTINED.inc()
    log.error("state file quarantined", path=str(path), moved_to=aside.name, reason=reason)
    return aside


def remove_scratch(directory: Path | str) -> int:
    """Drop the scratch files that writers which died left in `directory`
    (a live writer's file is left alone); returns how many were removed."""
    removed = 0
    for leftover in Path(directory).glob(f"{SCRATCH_PREFIX}*{SCRATCH_SUFFIX}"):
        match = _SCRATCH.match(leftover.name)
        if match and pid_alive(int(match.group(1))):
            continue
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


class JsonLines:
    """An append-only file of JSON records, one per line, fsynced per append.

    A torn last line (a crash mid-write) is skipped on reading, and the first
    append after it starts on a new line, so the torn line never swallows an
    acknowledged record. `compact` rewrites the file with only the records
    given, atomically.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tail_checked = False

    def append(self, record: dict, sync: bool = True) -> None:
        self.extend([record], sync)

    def extend(self, records: Iterable[dict], sync: bool = True) -> None:
        """Append records, durable when this returns; with `sync=False` they
        are only written, and durable once `sync()` returns (a caller can
        write under its lock and wait for the disk outside it, so that
        concurrent callers share the wait)."""
        lines = "".join(json.dumps(record, allow_nan=False) + "\n" for record in records)
        if not lines:
            return
        created = not self.path.exists()
        if not self._tail_checked:
            if not created and _ends_torn(self.path):
                lines = "\n" + lines
            self._tail_checked = True
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(lines)
            out.flush()
            if sync:
                os.fsync(out.fileno())
        if created:
            fsync_directory(self.path.parent)

    def sync(self) -> None:
        """Make every record appended so far durable."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        records = []
        with open(self.path, encoding="utf-8") as source:
            for number, line in enumerate(source, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("skipping unreadable record", path=str(self.path), line=number)
        return records

    def compact(self, records: Iterable[dict]) -> None:
        text = "".join(json.dumps(record, allow_nan=False) + "\n" for record in records)
        write_text(self.path, text)
        self._tail_checked = True


def _ends_torn(path: Path) -> bool:
    """Whether the file's last line lacks its newline (a crash mid-append)."""
    with open(path, "rb") as source:
        source.seek(0, os.SEEK_END)
        if source.tell() == 0:
            return False
        source.seek(-1, os.SEEK_END)
        return source.read(1) != b"\n"
