"""The feature service's parquet files: one file per ingest batch, written
through the shared durable-write helper.

A reader (Feast's file offline store, or start-up recovery) sees a file
either whole or not at all: scratch files start with "_", which pyarrow and
dask skip when they read a directory of parquet files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rxcast.runtime.durable import atomic_write, fsync_directory, remove_scratch

__all__ = ["batch_path", "fsync_directory", "numbered_files", "remove_scratch", "write_parquet"]


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write `table` to `path` atomically and durably."""
    atomic_write(path, lambda sink: pq.write_table(table, sink, compression="zstd"))


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
