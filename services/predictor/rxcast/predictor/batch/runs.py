"""A batch run's record: what it scored, with which model, how far it got."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from dataclasses import dataclass

RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"


def new_run_id(now: float) -> str:
    """Sortable by start time, unique across processes."""
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    state: str
    as_of_ms: int
    model_version: int
    horizon_days: int
    reason: str
    started: float
    rows_total: int = 0
    rows_done: int = 0
    finished: float | None = None
    error: str = ""

    @property
    def finished_run(self) -> bool:
        return self.state in (SUCCEEDED, FAILED)

    def with_updates(self, **changes) -> RunRecord:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
