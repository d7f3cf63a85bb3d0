"""Windows of logged predictions per model version, closed by count and by time.

A window collects columns batch by batch (appends of whole arrays, no
per-row work) and closes when it holds `max_rows` rows, or when a row's
event time falls in a later time slot than the window's (slots are
`slot_ms` long and aligned to the epoch, e.g. one per UTC day). Rows that
arrive late for an already closed slot join the open window. The engine
also closes an older version's window when a newer version's rows of a
later slot arrive: a version that was replaced logs no more rows, and its
last window would otherwise never close.

Batches, windows and open buffers turn into JSON (`to_dict`) and back
(`from_dict`) for the service's state files; see rxcast.drift.codec.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from rxcast.drift.codec import (
    StateError,
    floats_to_text,
    integer,
    ints_to_text,
    list_to_strings,
    require,
    strings_to_list,
    text_to_floats,
    text_to_ints,
)
from rxcast.runtime.errors import InvalidArgument

NUMERIC, CATEGORICAL = "numeric", "categorical"


@dataclasses.dataclass
class Batch:
    """Columns of logged rows, all of one length."""

    features: dict[str, np.ndarray]
    predictions: np.ndarray
    event_times_ms: np.ndarray

    def __post_init__(self) -> None:
        n = self.event_times_ms.size
        if self.predictions.size != n or any(len(c) != n for c in self.features.values()):
            lengths = {k: len(v) for k, v in self.features.items()}
            raise InvalidArgument(
                f"rows: columns differ in length (event times {n}, predictions {self.predictions.size}, "
                f"features {lengths})"
            )

    def __len__(self) -> int:
        return int(self.event_times_ms.size)

    def take(self, index: np.ndarray | slice) -> Batch:
        return Batch(
            {k: v[index] for k, v in self.features.items()}, self.predictions[index], self.event_times_ms[index]
        )

    def select(self, kinds: Mapping[str, str]) -> Batch:
        """The columns named in `kinds`; one this batch lacks is all missing."""
        n = len(self)
        return Batch(
            {
                name: self.features[name]
                if name in self.features
                else np.full(n, np.nan)
                if kind == NUMERIC
                else np.full(n, "", dtype=object)
                for name, kind in kinds.items()
            },
            self.predictions,
            self.event_times_ms,
        )

    def to_dict(self) -> dict[str, Any]:
        """Columns as JSON: numeric ones as float64 bytes, string ones as lists."""
        features = {}
        for name, column in self.features.items():
            if column.dtype.kind in "fiub":
                features[name] = {NUMERIC: floats_to_text(column)}
            else:
                features[name] = {CATEGORICAL: strings_to_list(column)}
        return {
            "features": features,
            "predictions": floats_to_text(self.predictions),
            "event_times_ms": ints_to_text(self.event_times_ms),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Batch:
        data = require(data, ("features", "predictions", "event_times_ms"), "rows")
        if not isinstance(data["features"], dict):
            raise StateError("rows.features: expected an object")
        features = {}
        for name, column in data["features"].items():
            if isinstance(column, dict) and NUMERIC in column:
                features[name] = text_to_floats(column[NUMERIC], f"rows.features.{name}")
            elif isinstance(column, dict) and CATEGORICAL in column:
                features[name] = list_to_strings(column[CATEGORICAL], f"rows.features.{name}")
            else:
                raise StateError(f"rows.features.{name}: neither numeric nor categorical")
        try:
            return cls(
                features,
                text_to_floats(data["predictions"], "rows.predictions"),
                text_to_ints(data["event_times_ms"], "rows.event_times_ms"),
            )
        except InvalidArgument as exc:
            raise StateError(exc.message) from None

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        names = batches[0].features
        return Batch(
            {name: np.concatenate([b.features[name] for b in batches]) for name in names},
            np.concatenate([b.predictions for b in batches]),
            np.concatenate([b.event_times_ms for b in batches]),
        )


@dataclasses.dataclass
class Window:
    """A window's rows and identity."""

    model_version: int
    sequence: int
    rows: Batch
    opened_ms: int

    @property
    def window_id(self) -> str:
        return f"v{self.model_version}-w{self.sequence}"

    @property
    def start_ms(self) -> int:
        return int(self.rows.event_times_ms.min()) if len(self.rows) else 0

    @property
    def end_ms(self) -> int:
        return int(self.rows.event_times_ms.max()) if len(self.rows) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "sequence": self.sequence,
            "opened_ms": self.opened_ms,
            "rows": self.rows.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Window:
        data = require(data, ("model_version", "sequence", "opened_ms", "rows"), "window")
        return cls(
            integer(data["model_version"], "window.model_version"),
            integer(data["sequence"], "window.sequence"),
            Batch.from_dict(data["rows"]),
            integer(data["opened_ms"], "window.opened_ms"),
        )


class WindowBuffer:
    """The open window of one model version."""

    def __init__(
        self, model_version: int, feature_names: Mapping[str, str], max_rows: int, slot_ms: int, next_sequence: int = 1
    ):
        if max_rows < 1 or slot_ms < 1:
            raise InvalidArgument("windows: max_rows and slot length must be >= 1")
        self.model_version = model_version
        self.kinds = dict(feature_names)  # name -> "numeric" | "categorical"
        self.max_rows = max_rows
        self.slot_ms = slot_ms
        self.sequence = next_sequence
        self._chunks: list[Batch] = []
        self._rows = 0
        self._slot: int | None = None
        self._opened_ms = 0

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def slot(self) -> int | None:
        """The open window's time slot (None while it is empty)."""
        return self._slot

    def add(self, batch: Batch, now_ms: int) -> Iterator[Window]:
        """Append `batch`; yield each window it closes."""
        slots = batch.event_times_ms // self.slot_ms
        while len(batch):
            if self._slot is None:
                self._slot = int(slots.min())
                self._opened_ms = now_ms
            index = np.flatnonzero(slots <= self._slot)[: self.max_rows - self._rows]
            if index.size:
                self._chunks.append(batch.take(index))
                self._rows += int(index.size)
            rest = np.ones(len(batch), dtype=bool)
            rest[index] = False
            batch, slots = batch.take(rest), slots[rest]
            # Full, or rows of a later slot wait: this window is done.
            if self._rows >= self.max_rows or len(batch):
                closed = self.close()
                if closed is not None:
                    yield closed

    def peek(self, now_ms: int) -> Window:
        """The open window as it stands, without closing it."""
        return Window(self.model_version, self.sequence, self._batch(), self._opened_ms or now_ms)

    def close(self) -> Window | None:
        """Close the open window; None when it is empty."""
        if not self._rows:
            self._slot = None
            return None
        window = Window(self.model_version, self.sequence, self._batch(), self._opened_ms)
        self.sequence += 1
        self._chunks, self._rows, self._slot = [], 0, None
        return window

    def copy(self) -> WindowBuffer:
        """This open window as it stands, unaffected by later rows (their
        arrays are never changed in place, so they are shared)."""
        return self.with_kinds(self.kinds)

    def with_kinds(self, kinds: Mapping[str, str]) -> WindowBuffer:
        """This open window with the columns of `kinds` (the features windowed
        changed): a feature no longer windowed is dropped, a new one is missing
        in the rows so far."""
        other = WindowBuffer(self.model_version, kinds, self.max_rows, self.slot_ms, self.sequence)
        if self._rows:
            rows = self._batch()
            other._chunks = [rows if set(rows.features) == set(other.kinds) else rows.select(other.kinds)]
            other._rows = self._rows
            other._slot, other._opened_ms = self._slot, self._opened_ms
        return other

    def to_dict(self) -> dict[str, Any]:
        """The open window: its rows, slot and place in the sequence."""
        return {
            "model_version": self.model_version,
            "kinds": dict(self.kinds),
            "sequence": self.sequence,
            "slot": self._slot,
            "opened_ms": self._opened_ms,
            "rows": self._batch().to_dict() if self._rows else None,
        }

    @classmethod
    def from_dict(cls, data: Any, max_rows: int, slot_ms: int) -> WindowBuffer:
        """An open window as saved, closing by the `max_rows` and `slot_ms`
        configured now (a window already past a smaller limit closes with the
        next rows)."""
        data = require(data, ("model_version", "kinds", "sequence", "slot", "opened_ms", "rows"), "open window")
        kinds = data["kinds"]
        if not isinstance(kinds, dict) or not all(k in (NUMERIC, CATEGORICAL) for k in kinds.values()):
            raise StateError("open window.kinds: expected feature names mapped to numeric or categorical")
        buffer = cls(
            integer(data["model_version"], "open window.model_version"),
            kinds,
            max_rows,
            slot_ms,
            integer(data["sequence"], "open window.sequence"),
        )
        if data["rows"] is not None:
            rows = Batch.from_dict(data["rows"])
            if set(rows.features) != set(kinds):
                raise StateError("open window: its columns are not its features")
            if len(rows):
                buffer._chunks, buffer._rows = [rows], len(rows)
                buffer._slot = None if data["slot"] is None else integer(data["slot"], "open window.slot")
                buffer._opened_ms = integer(data["opened_ms"], "open window.opened_ms")
        return buffer

    def _batch(self) -> Batch:
        if not self._chunks:
            empty = {n: np.array([], dtype=float if k == NUMERIC else object) for n, k in self.kinds.items()}
            return Batch(empty, np.array([], dtype=float), np.array([], dtype=np.int64))
        if len(self._chunks) > 1:
            self._chunks = [Batch.concat(self._chunks)]
        return self._chunks[0]
