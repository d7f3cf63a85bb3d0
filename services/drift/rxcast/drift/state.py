"""The drift engine's state on disk: a checkpoint of the engine, a snapshot
of the logged predictions, and a journal of what happened since.

Under `<data_dir>/state/`:

  engine.json            open windows, windows closed but not yet scored,
                         concept-drift monitors and bookkeeping; rewritten
                         whole (`atomic_write`) each time a window closes
  predictions.npz        logged predictions awaiting actuals; rewritten when
                         the journal holds as many rows again as it (at least
                         COMPACT_MIN_ROWS), and at a graceful stop
  journal/<n>.jsonl      one fsynced line per call since: the rows of a
                         LogPredictions batch, a flush, the outcome of a
                         LogActuals call (keys matched, monitors' new states)

A call's journal record is on disk (fsynced) before the call returns, which
is what makes a call acknowledged: a SIGKILL after it loses nothing. Records
are written under the engine's lock, in the order of the changes they
describe, and fsynced outside it: calls that arrive together share one fsync. The journal
is cut into segments; each checkpoint starts a new segment and records its
number, so on start the engine takes the checkpoint and replays the segments
from there, and segments older than both checkpoints are deleted.

Every file carries a format version. A file that cannot be read (corrupt,
truncated, of an unknown version) is renamed aside (`<name>.corrupt-<time>`)
and logged, and the service starts from what is whole. No pickle: JSON
(rxcast.drift.codec) and .npz read with allow_pickle=False.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from rxcast.drift.codec import StateError
from rxcast.runtime.durable import JsonLines, atomic_write, quarantine, read_json, remove_scratch, write_json
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.state")

ENGINE_FORMAT = "rxcast.drift.engine/1"
PREDICTIONS_FORMAT = "rxcast.drift.predictions/1"
JOURNAL_FORMAT = "rxcast.drift.journal/1"
#: The journal's logged-prediction rows that make a snapshot of the prediction log due, at least.
COMPACT_MIN_ROWS = 50_000

_SEGMENT = re.compile(r"^(\d{12})\.jsonl$")


@dataclasses.dataclass
class Recovered:
    """What was found on disk at start."""

    #: The engine checkpoint, or None (none written yet, or quarantined).
    engine: dict[str, Any] | None = None
    #: The checkpoint was unreadable and set aside: its windows are lost.
    engine_lost: bool = False
    #: The prediction-log snapshot (metadata and arrays), or None.
    predictions: tuple[dict[str, Any], dict[str, np.ndarray]] | None = None
    #: Journal segments to replay, oldest first: (segment number, records).
    segments: list[tuple[int, list[dict]]] = dataclasses.field(default_factory=list)

    @property
    def engine_from(self) -> int:
        """The first segment whose records the engine checkpoint does not hold."""
        return int(self.engine["segment"]) if self.engine else 0

    @property
    def predictions_from(self) -> int:
        return int(self.predictions[0]["segment"]) if self.predictions else 0


class StateStore:
    """The files of one engine's state; the engine serializes calls to
    `append`/`rotate` under its lock, checkpoints may be written from any thread."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.journal_dir = self.directory / "journal"
        self.engine_path = self.directory / "engine.json"
        self.predictions_path = self.directory / "predictions.npz"
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self._segment = 0
        self._journal: JsonLines | None = None
        self._write_lock = threading.Lock()
        # Journal records written, and written and fsynced; the lock makes one fsync at a time.
        self._written = self._synced = 0
        self._sync_lock = threading.Lock()
        self._engine_segment = 0
        self._predictions_segment = 0
        #: Segments holding a record that could not be applied: set aside, not deleted, once checkpointed.
        self.damaged: set[int] = set()

    # ------------------------------------------------------------ start

    def recover(self) -> Recovered:
        """Read what is on disk, quarantining what cannot be read, and open a
        new journal segment after the newest one found."""
        remove_scratch(self.directory)
        remove_scratch(self.journal_dir)
        found = Recovered()
        found.engine, found.engine_lost = self._load_engine()
        found.predictions = self._load_predictions()
        self._engine_segment, self._predictions_segment = found.engine_from, found.predictions_from
        newest = -1
        for number, path in self.segments():
            newest = number
            if number < min(found.engine_from, found.predictions_from):
                continue
            try:
                found.segments.append((number, self._read_segment(path)))
            except StateError as exc:
                quarantine(path, str(exc))
        # A new segment: never append after a line a crash may have torn.
        self._open(max(newest + 1, found.engine_from, found.predictions_from))
        return found

    def _load_engine(self) -> tuple[dict[str, Any] | None, bool]:
        try:
            doc = read_json(self.engine_path)
        except (ValueError, UnicodeDecodeError) as exc:
            quarantine(self.engine_path, f"not JSON: {exc}")
            return None, True
        if doc is None:
            return None, False
        if not isinstance(doc, dict) or doc.get("format") != ENGINE_FORMAT or not _is_segment(doc.get("segment")):
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            quarantine(self.engine_path, f"format {found!r} is not {ENGINE_FORMAT!r}")
            return None, True
        return doc, False

    def _load_predictions(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        if not self.predictions_path.exists():
            return None
        try:
            with np.load(self.predictions_path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            meta = json.loads(str(arrays.pop("meta")))
            if not isinstance(meta, dict) or meta.get("format") != PREDICTIONS_FORMAT:
                found = meta.get("format") if isinstance(meta, dict) else None
                raise StateError(f"format {found!r} is not {PREDICTIONS_FORMAT!r}")
            if not _is_segment(meta.get("segment")):
                raise StateError("segment: expected an integer >= 0")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, StateError) as exc:
            quarantine(self.predictions_path, f"unreadable: {exc}")
            return None
        return meta, arrays

    def _read_segment(self, path: Path) -> list[dict]:
        records = JsonLines(path).read()
        if not records:
            return []
        header = records[0]
        if not isinstance(header, dict) or header.get("format") != JOURNAL_FORMAT:
            found = header.get("format") if isinstance(header, dict) else None
            raise StateError(f"format {found!r} is not {JOURNAL_FORMAT!r}")
        return records[1:]

    # ------------------------------------------------------------ journal

    def segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.journal_dir.iterdir():
            match = _SEGMENT.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    @property
    def segment(self) -> int:
        return self._segment

    def _segment_path(self, number: int) -> Path:
        return self.journal_dir / f"{number:012d}.jsonl"

    def _open(self, number: int) -> None:
        if self._journal is not None:
            self._journal.sync()  # what was written to the segment left is on disk before the next one takes over
        journal = JsonLines(self._segment_path(number))
        journal.append({"format": JOURNAL_FORMAT, "segment": number})
        self._segment, self._journal = number, journal

    def append(self, record: dict[str, Any]) -> int:
        """Write a record; it is durable once `sync` of the number returned
        has returned. Callers write in order under their lock and wait for
        the disk outside it, so calls that arrive together share one fsync
        (group commit)."""
        self._journal.append(record, sync=False)
        self._written += 1
        return self._written

    @property
    def written(self) -> int:
        """How many records have been written (the number of the newest)."""
        return self._written

    def sync(self, written: int) -> None:
        if self._synced >= written:
            return
        with self._sync_lock:
            if self._synced >= written:  # the fsync of a call ahead covered this record
                return
            # Every record up to `target` is in the current segment or in an
            # earlier one, which was fsynced as it was left (`_open`).
            target, segment = self._written, self._journal
            try:
                segment.sync()
            except FileNotFoundError:
                pass  # left since (and fsynced then), and deleted after checkpoints that hold it
            self._synced = max(self._synced, target)

    def rotate(self) -> int:
        """Start a new segment; returns its number, the first a checkpoint
        taken now does not hold."""
        self._open(self._segment + 1)
        return self._segment

    # ------------------------------------------------------------ checkpoints

    def write_engine(self, doc: dict[str, Any], segment: int) -> None:
        """Save the engine checkpoint taken when segment `segment` began; an
        older one than the last saved is dropped."""
        with self._write_lock:
            if segment < self._engine_segment:
                return
            write_json(self.engine_path, {"format": ENGINE_FORMAT, "segment": segment, **doc})
            self._engine_segment = segment
            self._drop_old()

    def write_predictions(self, meta: dict[str, Any], arrays: dict[str, np.ndarray], segment: int) -> None:
        with self._write_lock:
            if segment < self._predictions_segment:
                return
            header = np.array(json.dumps({"format": PREDICTIONS_FORMAT, "segment": segment, **meta}))
            atomic_write(self.predictions_path, lambda sink: np.savez(sink, meta=header, **arrays))
            self._predictions_segment = segment
            self._drop_old()

    def _drop_old(self) -> None:
        keep_from = min(self._engine_segment, self._predictions_segment)
        for number, path in self.segments():
            if number >= keep_from:
                break
            if number in self.damaged:
                quarantine(path, "a record could not be applied; the others are in the checkpoints")
                self.damaged.discard(number)
            else:
                path.unlink(missing_ok=True)


def _is_segment(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
