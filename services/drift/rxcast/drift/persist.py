"""Small durable-file helpers: atomic JSON documents and append-only JSON lines."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.persist")


def write_json(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON, atomically (write, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    with open(scratch, "w", encoding="utf-8") as out:
        json.dump(data, out, allow_nan=False)
        out.flush()
        os.fsync(out.fileno())
    os.replace(scratch, path)


def read_json(path: Path, default: Any = None) -> Any:
    if not path.exists():
        return default
    with open(path, encoding="utf-8") as source:
        return json.load(source)


class JsonLines:
    """An append-only file of JSON records, one per line, fsynced per append.

    A torn last line (a crash mid-write) is skipped on reading. `compact`
    rewrites the file with only the newest records, atomically.
    """

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, record: dict) -> None:
        line = json.dumps(record, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())

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

    def compact(self, records: list[dict]) -> None:
        scratch = self.path.with_name(self.path.name + ".tmp")
        with open(scratch, "w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, allow_nan=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, self.path)
