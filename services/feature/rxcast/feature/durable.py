"""Files that survive a crash: written aside, flushed to disk, renamed into place.

A reader (Feast's file offline store, or start-up recovery) sees a file
either whole or not at all: scratch files start with "_", which pyarrow and
dask skip when they read a directory of parquet files.
"""

from __future__ import annotations

import os
import re
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


_NUMBERED = re.compile(r"^(batch|upto)-(\d{12})\.parquet$")


def batch_path(directory: Path, seq: int, kind: str = "batch") -> Path:
    """`batch-<seq>.parquet` holds one ingest batch; `upto-<seq>.parquet` the
    merge of every batch up to and including `seq`."""
    return Path(directory) / f"{kind}-{seq:012d}.parquet"


def numbered_files(directory: Path) -> list[tuple[str, int, Path]]:
    """(kind, seq, path) of the batch and merged files in `directory`."""
    found = []
    for path in Path(directory).iterdir():
        match = _NUMBERED.match(path.name)
        if match:
            found.append((match.group(1), int(match.group(2)), path))
    return found
