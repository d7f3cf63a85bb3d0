"""The FeatureColumn codec: feature values on the wire and as NumPy arrays.

On the wire a column carries one value, status and event time per row. As
arrays a numeric column (DOUBLE, INT64, BOOL) is float64 with NaN where the
value is not PRESENT, a STRING column is str with "" there. Columns are read
by name (the service orders them as it likes). Columns of one kind are
converted together, one NumPy call for all of them.

A column whose lengths disagree with the row count is malformed: `strict`
decoding refuses it (training must not learn from a broken answer), lenient
decoding serves it as missing (a forecast falls back and says so).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from rxcast.feature.v1 import feature_pb2 as pb
from rxcast.runtime.errors import FailedPrecondition

PRESENT = pb.FEATURE_STATUS_PRESENT
_NUMERIC_KINDS = ("double_values", "int64_values", "bool_values")


@dataclass(frozen=True)
class DecodedColumns:
    """Feature values for `rows` rows, by feature name."""

    rows: int
    values: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    event_ms: dict[str, np.ndarray]

    def newest_ms(self) -> np.ndarray:
        """Per row, the newest event time among its present values (0 when none)."""
        newest = np.zeros(self.rows, dtype=np.int64)
        for name, present in self.present.items():
            np.maximum(newest, np.where(present, self.event_ms[name], 0), out=newest)
        return newest

    def stamped_after(self, instants_ms: np.ndarray) -> dict[str, int]:
        """Per feature, how many present values are stamped after their row's
        instant: a point-in-time leak when the rows are training rows."""
        leaks = {}
        for name, present in self.present.items():
            count = int(np.count_nonzero(present & (self.event_ms[name] > instants_ms)))
            if count:
                leaks[name] = count
        return leaks


def _numbers(column: pb.FeatureColumn):
    kind = column.WhichOneof("values")
    return getattr(column, kind).values if kind in _NUMERIC_KINDS else ()


def _size(column: pb.FeatureColumn) -> int:
    kind = column.WhichOneof("values")
    return len(getattr(column, kind).values) if kind else 0


def _block(containers: Iterable, dtype, shape: tuple[int, int]) -> np.ndarray:
    """Repeated fields of equal length as one 2-D array (np.fromiter walks
    them in C; np.array would treat each container as a generic sequence)."""
    return np.fromiter(itertools.chain.from_iterable(containers), dtype=dtype, count=shape[0] * shape[1]).reshape(shape)


def decode_columns(
    columns: Sequence[pb.FeatureColumn], rows: int, wanted: Sequence[str], *, strict: bool = False
) -> DecodedColumns:
    """The `wanted` features of `rows` rows from the service's columns.

    Lenient (the default): a wanted feature that is absent or malformed is
    missing on every row. Strict: either is FailedPrecondition naming it.
    """
    by_name = {}
    for column in columns:
        if len(column.statuses) == rows and len(column.event_times_unix_ms) == rows and _size(column) == rows:
            by_name[column.name] = column
        elif strict and column.name in wanted:
            raise FailedPrecondition(
                f"feature service: feature {column.name!r} has {len(column.statuses)} statuses, "
                f"{len(column.event_times_unix_ms)} event times and {_size(column)} values for {rows} rows"
            )
    if strict:
        absent = [name for name in wanted if name not in by_name]
        if absent:
            raise FailedPrecondition(f"feature service: the answer lacks feature(s) {absent}")
    text = [n for n in wanted if n in by_name and by_name[n].WhichOneof("values") == "string_values"]
    numeric = [n for n in wanted if n in by_name and n not in text]
    values: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    event_ms: dict[str, np.ndarray] = {}
    for names, is_text in ((numeric, False), (text, True)):
        if not names:
            continue
        group = [by_name[n] for n in names]
        shape = (len(group), rows)
        found = _block((c.statuses for c in group), np.int32, shape) == PRESENT
        times = _block((c.event_times_unix_ms for c in group), np.int64, shape)
        if is_text:
            block = np.array([v for c in group for v in c.string_values.values], dtype=str).reshape(shape)
            block[~found] = ""
        else:
            block = _block((_numbers(c) for c in group), np.float64, shape)
            block[~found] = np.nan
        values.update(zip(names, block))
        present.update(zip(names, found))
        event_ms.update(zip(names, times))
    for name in wanted:
        if name not in values:
            values[name] = np.full(rows, np.nan)
            present[name] = np.zeros(rows, dtype=bool)
            event_ms[name] = np.zeros(rows, dtype=np.int64)
    return DecodedColumns(rows, values, present, event_ms)


_WIRE_KINDS = {
    "DOUBLE": ("double_values", pb.DoubleList),
    "INT64": ("int64_values", pb.Int64List),
    "STRING": ("string_values", pb.StringList),
    "BOOL": ("bool_values", pb.BoolList),
}


def encode_column(
    name: str, value_type: str, values: np.ndarray, statuses: np.ndarray, event_ms: np.ndarray | list[int]
) -> pb.FeatureColumn:
    """One column for the wire; `value_type` is DOUBLE, INT64, STRING or BOOL.
    `event_ms` may be a list already (columns sharing event times convert them once)."""
    field, kind = _WIRE_KINDS[value_type]
    return pb.FeatureColumn(
        name=name,
        statuses=np.asarray(statuses).tolist(),
        event_times_unix_ms=event_ms if isinstance(event_ms, list) else np.asarray(event_ms).tolist(),
        **{field: kind(values=np.asarray(values).tolist())},
    )
