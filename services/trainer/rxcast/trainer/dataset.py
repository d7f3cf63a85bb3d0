"""Training sets: what a source returns, and how a window is split in time.

A training set is columnar: one NumPy array per feature (numbers as float64
with NaN for missing values, categoricals as str with "" for missing), the
label of each row (realized demand over the horizon after the row's day),
each row's business day, and its entity keys. Sources (the feature service
in production) only have to produce this; everything downstream is pure.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

from rxcast.model.timebase import day_text
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument

#: Called with (rows loaded so far, rows expected in all) while a source loads.
LoadProgress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class FeatureSchema:
    """The features a source serves for the model, in model input order."""

    feature_names: tuple[str, ...]
    categorical: frozenset[str]
    #: The target's horizon as the source defines it; 0 when it does not say.
    horizon_days: int = 0


@dataclasses.dataclass(frozen=True)
class LoadRequest:
    """Rows of every entity on business days start_day..end_day (inclusive)."""

    start_day: int
    end_day: int
    #: Features to load besides the model's (a champion's, the baseline's).
    extra_features: tuple[str, ...] = ()
    #: Days of demand in each label; 0 means the source's own horizon.
    horizon_days: int = 0


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """Labelled rows, columnar. `columns` holds at least `schema`'s features."""

    schema: FeatureSchema
    columns: Mapping[str, np.ndarray]
    labels: np.ndarray  # float64, units over the horizon
    row_days: np.ndarray  # int64 epoch days
    store_ids: np.ndarray  # str
    medication_ids: np.ndarray  # str
    horizon_days: int

    def __post_init__(self) -> None:
        rows = len(self.labels)
        lengths = {name: len(values) for name, values in self.columns.items()}
        lengths |= {"row_days": len(self.row_days), "store_ids": len(self.store_ids)}
        lengths |= {"medication_ids": len(self.medication_ids)}
        wrong = {name: n for name, n in lengths.items() if n != rows}
        if wrong:
            raise InvalidArgument(f"training set: columns {wrong} differ from the {rows} labels")
        absent = [name for name in self.schema.feature_names if name not in self.columns]
        if absent:
            raise InvalidArgument(f"training set: features {absent} have no column")

    @property
    def rows(self) -> int:
        return len(self.labels)

    def take(self, selector: np.ndarray) -> TrainingSet:
        """The rows a boolean mask or index array selects."""
        return dataclasses.replace(
            self,
            columns={name: values[selector] for name, values in self.columns.items()},
            labels=self.labels[selector],
            row_days=self.row_days[selector],
            store_ids=self.store_ids[selector],
            medication_ids=self.medication_ids[selector],
        )


class TrainingSetSource(Protocol):
    """Where training sets come from (the feature service in production)."""

    def schema(self) -> FeatureSchema:
        """The model's features as the source serves them now."""

    def load(self, request: LoadRequest, progress: LoadProgress) -> TrainingSet:
        """Labelled rows of the request's days; rows whose horizon has not
        elapsed yet have no label and are left out."""


@dataclasses.dataclass(frozen=True)
class TimeSplit:
    """A window cut in time: train on the past, evaluate on the most recent days.

    Rows between the two parts are left out (the embargo) so that no training
    label covers a day that a holdout label covers too: a row of day D is
    labelled by days D+1..D+horizon, so the last training day is
    holdout_start - horizon.
    """

    train: TrainingSet
    holdout: TrainingSet
    holdout_start: int
    holdout_end: int
    last_train_day: int

    def describe(self) -> dict[str, str]:
        return {"start_day": day_text(self.holdout_start), "end_day": day_text(self.holdout_end)}


def split_by_time(data: TrainingSet, holdout_days: int, min_train_rows: int, min_holdout_rows: int) -> TimeSplit:
    """Hold out the last `holdout_days` labelled days; train on what precedes them."""
    if data.rows == 0:
        raise FailedPrecondition("training set: the window has no labelled rows (has its horizon elapsed yet?)")
    holdout_end = int(data.row_days.max())
    holdout_start = holdout_end - holdout_days + 1
    last_train_day = holdout_start - data.horizon_days
    in_holdout = data.row_days >= holdout_start
    in_train = data.row_days <= last_train_day
    train, holdout = data.take(in_train), data.take(in_holdout)
    first_day = int(data.row_days.min())
    if train.rows < min_train_rows:
        raise FailedPrecondition(
            f"window: {train.rows} training rows on days {day_text(first_day)}..{day_text(last_train_day)} "
            f"(before a {holdout_days}-day holdout and a {data.horizon_days}-day embargo); "
            f"at least {min_train_rows} are needed: widen the window"
        )
    if holdout.rows < min_holdout_rows:
        raise FailedPrecondition(
            f"window: {holdout.rows} holdout rows on days {day_text(holdout_start)}..{day_text(holdout_end)}; "
            f"at least {min_holdout_rows} are needed"
        )
    return TimeSplit(train, holdout, holdout_start, holdout_end, last_train_day)


def training_data_sha256(matrix: np.ndarray, labels: np.ndarray, feature_names: tuple[str, ...]) -> str:
    """A fingerprint of exactly what the model was fitted on."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(feature_names).encode())
    digest.update(np.ascontiguousarray(matrix, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.float64).tobytes())
    return digest.hexdigest()
