"""A full disk is a status, not a crash.

DiskGuard watches the free space under a service's data directory. Below
`min_free_bytes`, or after a write failed for want of space, the service
reports NOT_SERVING (load balancers send callers elsewhere) and refuses
writes with RESOURCE_EXHAUSTED; once there is room again it serves again.
The server bootstrap (rxcast.runtime.server) gives every service whose
settings have a `data_dir` and a `min_free_mb` one guard, and wires it to
health and to the interceptor.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rxcast.runtime.errors import ResourceExhausted
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.disk")

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` is a write that failed for want of space (OSError, or SQLite's own)."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    # Libraries re-raise the OS error without its errno (pyarrow) or in their own words (SQLite).
    text = str(exc)
    return isinstance(exc, OSError | sqlite3.OperationalError) and (
        "No space left on device" in text or "disk is full" in text
    )


class DiskGuard:
    """Free space under `path`, checked every `interval` seconds and before each write."""

    def __init__(self, path: Path | str, min_free_bytes: int, on_change: Callable[[bool], None] = lambda full: None):
        self.path = Path(path)
        self.min_free_bytes = min_free_bytes
        self.on_change = on_change
        self.full = False
        self._lock = threading.Lock()

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path).free

    def check(self, failed_write: bool = False) -> bool:
        """Update and return whether the disk counts as full."""
        free = self.free_bytes()
        full = failed_write or free < self.min_free_bytes
        with self._lock:
            changed, self.full = full != self.full, full
        if changed:
            (log.error if full else log.info)(
                "disk_full" if full else "disk_space_back", path=str(self.path), free=free
            )
            self.on_change(full)
        return full

    def require_space(self, what: str) -> None:
        """ResourceExhausted, before anything is written, when the disk is full."""
        if self.check():
            raise ResourceExhausted(
                f"the disk under the data directory is full ({self.free_bytes()} bytes free, at least "
                f"{self.min_free_bytes} needed); {what} stored nothing, retry once there is space"
            )

    def write_failed(self, exc: BaseException, what: str) -> ResourceExhausted:
        """The error for a write that failed for want of space; marks the disk full."""
        self.check(failed_write=True)
        return ResourceExhausted(f"the disk under the data directory is full: {what} failed ({exc.__class__.__name__})")

    def watch(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Re-check until `stop` is set (run in a thread): stop serving when space
        runs low, also between calls and under background writes (a training
        job, a checkpoint), and serve again once space is freed."""
        while not stop.wait(interval):
            try:
                self.check()
            except OSError:
                log.exception("disk_check_failed", path=str(self.path))


def guard_for(settings: Any) -> DiskGuard | None:
    """The guard of settings with a `min_free_mb` and a directory to guard (its
    `guarded_dir`, else its `data_dir`); None for a service keeping no state."""
    data_dir = getattr(settings, "guarded_dir", None) or getattr(settings, "data_dir", None)
    min_free_mb = getattr(settings, "min_free_mb", None)
    if not data_dir or min_free_mb is None:
        return None
    return DiskGuard(data_dir, min_free_mb * 1024 * 1024)
