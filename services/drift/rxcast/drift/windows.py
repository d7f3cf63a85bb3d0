"""Windows of logged predictions per model version, closed by count and by time.

A window collects columns batch by batch (appends of whole arrays, no
per-row work) and closes when it holds `max_rows` rows, or when a row's
event time falls in a later time slot than the window's (slots are
`slot_ms` long and aligned to the epoch, e.g. one per UTC day). Rows that
arrive late for an already closed slot join the open window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

import numpy as np

from rxcast.runtime.errors import InvalidArgument


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
        return Batch({k: v[index] for k, v in self.features.items()}, self.predictions[index],
                     self.event_times_ms[index])

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


class WindowBuffer:
    """The open window of one model version."""

    def __init__(self, model_version: int, feature_names: Mapping[str, str], max_rows: int, slot_ms: int,
                 next_sequence: int = 1):
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

    def _batch(self) -> Batch:
        if not self._chunks:
            empty = {n: np.array([], dtype=float if k == "numeric" else object) for n, k in self.kinds.items()}
            return Batch(empty, np.array([], dtype=float), np.array([], dtype=np.int64))
        if len(self._chunks) > 1:
            self._chunks = [Batch.concat(self._chunks)]
        return self._chunks[0]
