"""The durable log of accepted inventory records.

Each accepted batch becomes one parquet file, `batch-<seq>.parquet`, written
before the batch is acknowledged; the record history is rebuilt from these
files at start-up, later batches replacing earlier copies of a key. The log
is compacted into one file once it holds many, so start-up stays quick. A
file that cannot be read is quarantined at start-up and the rest loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rxcast.feature import durable
from rxcast.feature.records import FLAGS, NUMBERS, RecordBatch
from rxcast.runtime.durable import quarantine

SCHEMA = pa.schema(
    [
        ("store_id", pa.string()),
        ("medication_id", pa.string()),
        ("business_day", pa.int32()),
        *[(name, pa.float64()) for name in NUMBERS],
        *[(name, pa.bool_()) for name in FLAGS],
        ("medication_category", pa.string()),
        ("store_region", pa.string()),
    ]
)


def _table(batch: RecordBatch) -> pa.Table:
    columns = batch.columns()
    arrays = []
    for field in SCHEMA:
        values = columns[field.name]
        if pa.types.is_string(field.type):
            values = values.astype(str)
        arrays.append(pa.array(values, type=field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def _batch(table: pa.Table) -> RecordBatch:
    columns = {}
    for field in SCHEMA:
        column = table.column(field.name)
        if pa.types.is_floating(field.type):
            columns[field.name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
        elif pa.types.is_boolean(field.type):
            columns[field.name] = column.to_numpy(zero_copy_only=False).astype(bool)
        elif pa.types.is_integer(field.type):
            columns[field.name] = column.to_numpy(zero_copy_only=False).astype(np.int64)
        else:
            columns[field.name] = column.to_numpy(zero_copy_only=False).astype(object)
    return RecordBatch(**columns)


class RecordLog:
    """Append-only parquet batches of records under `directory`."""

    def __init__(self, directory: Path, compact_after: int = 64):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        durable.remove_scratch(self.directory)
        self.compact_after = compact_after

    def _files(self) -> list[tuple[str, int, Path]]:
        return durable.numbered_files(self.directory)

    def _live(self) -> list[tuple[int, Path]]:
        """(seq, path) of the files that hold the log, oldest first: the newest
        compacted file (covering every seq up to its own) and the batches after it."""
        files = self._files()
        compacted = max((seq for kind, seq, _ in files if kind == "upto"), default=-1)
        live = [(seq, path) for kind, seq, path in files if kind == "upto" and seq == compacted]
        live += [(seq, path) for kind, seq, path in files if kind == "batch" and seq > compacted]
        return sorted(live)

    def is_batch_file(self, seq: int) -> bool:
        """Whether `seq` is still a batch of its own (not merged by compaction)."""
        return durable.batch_path(self.directory, seq).exists()

    def last_seq(self) -> int:
        return max((seq for _, seq, _ in self._files()), default=0)

    def append(self, seq: int, batch: RecordBatch) -> None:
        durable.write_parquet(_table(batch), durable.batch_path(self.directory, seq))

    def read(self, after: int = -1) -> Iterator[tuple[int, RecordBatch]]:
        """(seq, batch) of every live file, oldest first; only seqs > `after`
        when given (a compacted file counts as its highest seq)."""
        for seq, path in self._live():
            if seq > after:
                try:
                    table = pq.read_table(path, schema=SCHEMA)
                except (pa.ArrowException, OSError) as exc:
                    # Start from what is whole; the file stays aside for an operator.
                    quarantine(path, f"unreadable record log file: {str(exc)[:200]}")
                    continue
                yield seq, _batch(table)

    def compact_if_needed(self) -> bool:
        """Merge the live files into one when there are many; old files go
        only once the merged one is durable, so a crash loses nothing."""
        live = self._live()
        if len(live) < self.compact_after:
            return False
        tables = [pq.read_table(path, schema=SCHEMA) for _, path in live]
        merged = pa.concat_tables(tables)
        upto = live[-1][0]
        durable.write_parquet(merged, durable.batch_path(self.directory, upto, "upto"))
        for kind, seq, path in self._files():
            if seq <= upto and not (kind == "upto" and seq == upto):
                path.unlink(missing_ok=True)
        durable.fsync_directory(self.directory)
        return True
