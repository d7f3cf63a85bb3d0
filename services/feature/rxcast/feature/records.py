"""Inventory records as columns, and their validation.

A batch of records travels through the service as a RecordBatch: one NumPy
array per field, missing numbers as NaN and absent strings as "". Validation
is vectorized and reports every problem of every record, naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

import numpy as np

from rxcast.model import timebase
from rxcast.runtime.errors import InvalidArgument
from rxcast.runtime.validation import FORBIDDEN, MAX_ID_LENGTH, quote

#: Optional numeric fields of a record, each >= 0 (unit_price > 0).
NUMBERS = ("units_dispensed", "units_received", "units_on_hand", "prescriptions_written", "unit_price")
FLAGS = ("on_promotion", "stock_out")
#: Text is cut to this before it becomes a NumPy column (whose width is that
#: of the longest value), so one huge string cannot size a whole batch; a cut
#: value is still one character too long, and rejected as such.
_TEXT_CAP = MAX_ID_LENGTH + 1
#: Numbers above this are taken for entry errors, not inventory.
MAX_QUANTITY = 1e9


@dataclass(frozen=True)
class RecordBatch:
    """Inventory records as parallel columns (rows in request order)."""

    store_id: np.ndarray  # str
    medication_id: np.ndarray  # str
    business_day: np.ndarray  # int64 epoch day (0 where the text was invalid)
    units_dispensed: np.ndarray  # float64, NaN = missing
    units_received: np.ndarray
    units_on_hand: np.ndarray
    prescriptions_written: np.ndarray
    unit_price: np.ndarray
    on_promotion: np.ndarray  # bool
    stock_out: np.ndarray  # bool
    medication_category: np.ndarray  # str, "" = not given
    store_region: np.ndarray  # str, "" = not given

    def __len__(self) -> int:
        return len(self.store_id)

    def take(self, index: np.ndarray) -> RecordBatch:
        return RecordBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_columns(cls, columns: dict) -> tuple[RecordBatch, np.ndarray]:
        """Build a batch from raw columns (business_day as "YYYY-MM-DD" text);
        returns it with the mask of rows whose business_day parsed."""
        absent = [name for name in ("store_id", "medication_id", "business_day") if name not in columns]
        if absent:
            raise InvalidArgument(f"records: missing required column(s) {', '.join(absent)}")
        n = len(columns["store_id"])
        days, valid = timebase.parse_days(columns["business_day"])

        def text(name):
            values = columns.get(name)
            if values is None:
                return np.full(n, "", dtype=object)
            capped = np.empty(n, dtype=object)
            capped[:] = [v[:_TEXT_CAP] if isinstance(v, str) and len(v) > _TEXT_CAP else v for v in values]
            return capped

        def number(name):
            values = columns.get(name)
            return np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64)

        def flag(name):
            values = columns.get(name)
            return np.zeros(n, dtype=bool) if values is None else np.asarray(values, dtype=bool)

        batch = cls(
            store_id=text("store_id"),
            medication_id=text("medication_id"),
            business_day=days,
            **{name: number(name) for name in NUMBERS},
            **{name: flag(name) for name in FLAGS},
            medication_category=text("medication_category"),
            store_region=text("store_region"),
        )
        return batch, valid


@dataclass(frozen=True)
class RecordError:
    index: int
    field: str
    message: str


@dataclass(frozen=True)
class Limits:
    """What validation accepts."""

    today: int  # epoch day
    future_tolerance_days: int = 1
    earliest_day: int = timebase.parse_days(["2000-01-01"])[0][0]


def _text_problems(values: np.ndarray, field: str, required: bool = True) -> Iterable[tuple[np.ndarray, str, str]]:
    text = values.astype(str)
    stripped = np.char.strip(text)
    if required:
        yield stripped == "", field, "required, got an empty string"
    lengths = np.char.str_len(text)
    yield lengths > MAX_ID_LENGTH, field, f"at most {MAX_ID_LENGTH} characters"
    yield (stripped != text) & (stripped != ""), field, "must not start or end with whitespace"
    forbidden = np.fromiter((FORBIDDEN.search(v) is not None for v in text.tolist()), dtype=bool, count=len(text))
    yield forbidden, field, "must not contain control, invisible or bidi-format characters"


def validate(
    batch: RecordBatch,
    day_parsed: np.ndarray,
    limits: Limits,
    known_stores: Iterable[str] = (),
    known_medications: Iterable[str] = (),
    day_texts: np.ndarray | None = None,
    nan_given: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[RecordError]]:
    """Check every record; returns (valid mask, errors sorted by record index).

    A store or medication seen for the first time needs its region or
    category on some record of the batch (or on an earlier one). NaN means
    "missing" except where `nan_given` marks a NaN the sender wrote explicitly
    (a protobuf field set to NaN), which is rejected as non-finite.
    """
    n = len(batch)
    problems: list[tuple[np.ndarray, str, str]] = []
    problems += _text_problems(batch.store_id, "store_id")
    problems += _text_problems(batch.medication_id, "medication_id")
    problems += _text_problems(batch.store_region, "store_region", required=False)
    problems += _text_problems(batch.medication_category, "medication_category", required=False)
    day_text = batch.business_day  # only meaningful where parsed
    problems.append((~day_parsed, "business_day", "must be a date as YYYY-MM-DD"))
    latest = limits.today + limits.future_tolerance_days
    problems.append(
        (day_parsed & (day_text > latest), "business_day",
         f"is in the future (latest accepted: {timebase.day_text(latest)})")
    )  # fmt: skip
    problems.append(
        (day_parsed & (day_text < limits.earliest_day), "business_day",
         f"is before {timebase.day_text(limits.earliest_day)}")
    )  # fmt: skip
    for name in NUMBERS:
        values = getattr(batch, name)
        explicit_nan = (nan_given or {}).get(name)
        problems.append(
            (np.isinf(values) | (explicit_nan if explicit_nan is not None else False), name, "must be finite")
        )
        finite = np.isfinite(values)
        if name == "unit_price":
            problems.append((finite & (values <= 0), name, "must be > 0"))
        else:
            problems.append((finite & (values < 0), name, "must be >= 0"))
        problems.append((finite & (values > MAX_QUANTITY), name, f"must be <= {MAX_QUANTITY:g}"))

    problems.append(_first_sighting(batch.store_id, batch.store_region, set(known_stores), "store_region", "store"))
    problems.append(
        _first_sighting(batch.medication_id, batch.medication_category, set(known_medications),
                        "medication_category", "medication")
    )  # fmt: skip

    bad = np.zeros(n, dtype=bool)
    errors: list[RecordError] = []
    for mask, field, message in problems:
        hits = np.flatnonzero(mask)
        bad[hits] = True
        errors.extend(RecordError(int(i), field, _describe(batch, field, i, message, day_texts)) for i in hits)
    errors.sort(key=lambda e: e.index)
    return ~bad, errors


def _first_sighting(ids: np.ndarray, attribute: np.ndarray, known: set, field: str, what: str):
    given = np.char.strip(attribute.astype(str)) != ""
    introduced = known | set(ids[given].tolist())
    text = ids.astype(str)
    unknown = ~np.isin(text, np.asarray(sorted(introduced), dtype=str)) if introduced else np.ones(len(ids), bool)
    return unknown & ~given & (np.char.strip(text) != ""), field, f"required the first time a {what} is seen"


def _describe(batch: RecordBatch, field: str, i: int, message: str, day_texts) -> str:
    if field in NUMBERS:
        return f"{message}, got {float(getattr(batch, field)[i])!r}"
    if field == "business_day" and day_texts is not None:
        return f"{message}, got {quote(day_texts[i])}"
    return message
