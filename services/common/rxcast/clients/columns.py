"""The feature value codecs: feature values on the wire and as NumPy arrays.

On the wire a column carries one value, status and event time per row. As
arrays a numeric column (DOUBLE, INT64, BOOL) is float64 with NaN where the
value is not PRESENT, a STRING column is str with "" there. Columns are read
by name (the service orders them as it likes). Columns of one kind are
converted together, one NumPy call for all of them.

A column whose lengths disagree with the row count is malformed: `strict`
decoding refuses it (training must not learn from a broken answer), lenient
decoding serves it as missing (a forecast falls back and says so).

PackedFeatures carry the same values as a few byte arrays (`encode_packed`,
`decode_packed`): one copy each way instead of a Python object per value,
which is most of an online answer's cost on either side of the wire.
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
        if not self.present:
            return np.zeros(self.rows, dtype=np.int64)
        names = list(self.present)
        present = np.stack([self.present[n] for n in names])
        stamps = np.stack([self.event_ms[n] for n in names])
        return np.where(present, stamps, 0).max(axis=0)

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
    missing = _all_missing(rows, [name for name in wanted if name not in values])
    values.update(missing.values)
    present.update(missing.present)
    event_ms.update(missing.event_ms)
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


_NUMERIC_TYPES = ("DOUBLE", "INT64", "BOOL")


def encode_packed(columns: Sequence) -> pb.PackedFeatures:
    """`columns` (each with name, value_type, values, statuses, event_ms arrays
    of equal length) as PackedFeatures; values not PRESENT go as NaN or ""."""
    numeric = [c for c in columns if c.value_type in _NUMERIC_TYPES]
    text = [c for c in columns if c.value_type not in _NUMERIC_TYPES]
    ordered = numeric + text
    if not ordered:
        return pb.PackedFeatures()
    # np.stack copies each block in one call; the blocks are then blanked in place.
    statuses = np.stack([c.statuses for c in ordered]).astype(np.uint8, copy=False)
    times = np.stack([c.event_ms for c in ordered]).astype("<i8", copy=False)
    missing = statuses != PRESENT
    strings: list[str] = []
    values = b""
    if numeric:
        block = np.stack([c.values for c in numeric]).astype("<f8", copy=False)
        block[missing[: len(numeric)]] = np.nan
        values = block.tobytes()
    if text:
        block = np.stack([c.values for c in text]).astype(object, copy=False)
        block[missing[len(numeric) :]] = ""
        strings = block.ravel().tolist()
    return pb.PackedFeatures(
        rows=statuses.shape[1],
        numeric_names=[c.name for c in numeric],
        numeric_values=values,
        string_names=[c.name for c in text],
        string_values=strings,
        statuses=statuses.tobytes(),
        event_times_unix_ms=times.tobytes(),
    )


def _packed_problem(packed: pb.PackedFeatures, rows: int) -> str:
    """Why `packed` cannot be read as `rows` rows ("" when it can)."""
    numeric, text = len(packed.numeric_names), len(packed.string_names)
    values = numeric + text
    expected = {
        "rows": (packed.rows, rows),
        "numeric_values bytes": (len(packed.numeric_values), 8 * numeric * rows),
        "string_values": (len(packed.string_values), text * rows),
        "statuses bytes": (len(packed.statuses), values * rows),
        "event_times_unix_ms bytes": (len(packed.event_times_unix_ms), 8 * values * rows),
    }
    wrong = [f"{field} {got} (expected {want})" for field, (got, want) in expected.items() if got != want]
    return f"feature service: a packed answer with {', '.join(wrong)}" if wrong else ""


def decode_packed(
    packed: pb.PackedFeatures, rows: int, wanted: Sequence[str], *, strict: bool = False
) -> DecodedColumns:
    """The `wanted` features of `rows` rows from PackedFeatures, as `decode_columns`
    reads columns: lenient, a malformed answer or an absent feature is missing on
    every row; strict, either is FailedPrecondition."""
    problem = _packed_problem(packed, rows)
    if problem:
        if strict:
            raise FailedPrecondition(problem)
        return _all_missing(rows, wanted)
    numeric_names, text_names = list(packed.numeric_names), list(packed.string_names)
    count = len(numeric_names) + len(text_names)
    statuses = np.frombuffer(packed.statuses, dtype=np.uint8).reshape(count, rows)
    times = np.frombuffer(packed.event_times_unix_ms, dtype="<i8").reshape(count, rows)
    numbers = np.frombuffer(packed.numeric_values, dtype="<f8").reshape(len(numeric_names), rows)
    # Read-only views of the message's bytes: the values are copied before they are blanked.
    found = statuses == PRESENT
    values: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    event_ms: dict[str, np.ndarray] = {}
    position = {name: k for k, name in enumerate(numeric_names)}
    numeric_rows = [position[name] for name in wanted if name in position]
    if numeric_rows:
        block = numbers[numeric_rows]  # a copy: fancy indexing
        block[~found[numeric_rows]] = np.nan
        values.update(zip((numeric_names[k] for k in numeric_rows), block))
    if text_names:
        strings = np.array(packed.string_values, dtype=str).reshape(len(text_names), rows)
        wanted_names = set(wanted)
        for k, name in enumerate(text_names):
            if name in wanted_names:
                row = len(numeric_names) + k
                values[name] = np.where(found[row], strings[k], "")
                position[name] = row
    absent = [name for name in wanted if name not in values]
    if strict and absent:
        raise FailedPrecondition(f"feature service: the answer lacks feature(s) {absent}")
    for name in wanted:
        if name in values:
            row = position[name]
            present[name], event_ms[name] = found[row], times[row]
    missing = _all_missing(rows, absent)
    values.update(missing.values)
    present.update(missing.present)
    event_ms.update(missing.event_ms)
    return DecodedColumns(rows, {name: values[name] for name in wanted}, present, event_ms)


def _all_missing(rows: int, names: Sequence[str]) -> DecodedColumns:
    return DecodedColumns(
        rows,
        {name: np.full(rows, np.nan) for name in names},
        {name: np.zeros(rows, dtype=bool) for name in names},
        {name: np.zeros(rows, dtype=np.int64) for name in names},
    )
