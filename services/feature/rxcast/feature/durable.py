"""Files that survive a crash: written aside, flushed to disk, renamed into place.

A reader (Feast's file offline store, or start-up recovery) sees a file
either whole or not at all: scratch files start with "_", which pyarrow and
dask skip when they read a directory of parquet files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` atomically and durably."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f"_{path.name}.{os.getpid()}.tmp")
    with open(scratch, "wb") as sink:
        pq.write_table(table, sink, compression="zstd")
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(scratch, path)
    fsync_directory(path.parent)


def write_text(text: str, path: Path) -> None:
    """Replace a small text file atomically and durably."""
    path = Path(path)
    scratch = path.with_name(f"_{path.name}.{os.getpid()}.tmp")
    with open(scratch, "w") as sink:
        sink.write(text)
        sink.flush()
        os.fsync(sink.fileno())
    os.replace(scratch, path)
    fsync_directory(path.parent)


def remove_scratch(directory: Path) -> None:
    """Drop scratch files a crash left behind."""
    for leftover in Path(directory).glob("_*.tmp"):
        leftover.unlink(missing_ok=True)
