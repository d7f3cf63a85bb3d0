"""The derived features of `inventory_daily`: one code path for online and offline.

For an entity and a business day D that has a record, the derived row holds
D's own values and trailing aggregates over the windows ending on D. Every
derived row, whether it goes to the offline parquet files or to the online
store, comes out of `derive_rows`, computed from the record history, so
training and serving cannot disagree.

Aggregates skip missing values; an aggregate over a window with no value at
all is missing itself (NaN). Counts (promotion, stock-out and recorded days)
are always defined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rxcast.feature.history import RecordHistory

#: The longest trailing window of any aggregate, in days.
LONGEST_WINDOW = 28
#: Cells (entities × days) computed at once; bounds memory on wide replays.
MAX_CELLS = 4_000_000


@dataclass
class DerivedRows:
    """Derived rows as columns: entity codes, business days and features."""

    codes: np.ndarray
    days: np.ndarray
    features: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.codes)

    @staticmethod
    def concat(parts: list[DerivedRows]) -> DerivedRows:
        if not parts:
            return DerivedRows(np.zeros(0, np.int64), np.zeros(0, np.int64), {})
        if len(parts) == 1:
            return parts[0]
        return DerivedRows(
            np.concatenate([p.codes for p in parts]),
            np.concatenate([p.days for p in parts]),
            {name: np.concatenate([p.features[name] for p in parts]) for name in parts[0].features},
        )


def _trailing(values: np.ndarray, window: int, reduce=np.add) -> np.ndarray:
    """reduce over the `window` cells ending at each column (axis 1); the
    first window-1 columns only see what the matrix holds."""
    if reduce is np.maximum:
        pad = np.full((values.shape[0], window - 1), -np.inf)
    else:
        pad = np.zeros((values.shape[0], window - 1), dtype=values.dtype)
    padded = np.concatenate([pad, values], axis=1)
    view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=1)
    return reduce.reduce(view, axis=-1)


def _sum_or_nan(values: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    total = _trailing(np.where(valid, values, 0.0), window)
    count = _trailing(valid.astype(np.int64), window)
    return np.where(count > 0, total, np.nan)


def _calendar(days: np.ndarray) -> dict[str, np.ndarray]:
    dates = pd.DatetimeIndex(days.astype("datetime64[D]"))
    return {
        "day_of_week": ((days + 3) % 7).astype(np.int64),  # 1970-01-01 was a Thursday
        "day_of_year": dates.dayofyear.to_numpy(dtype=np.int64),
        "week_of_year": dates.isocalendar().week.to_numpy(dtype=np.int64),
    }


def _derive_window(history: RecordHistory, codes: np.ndarray, start: np.ndarray, end: np.ndarray) -> DerivedRows:
    first = int(start.min()) - (LONGEST_WINDOW - 1)
    last = int(end.max())
    days = np.arange(first, last + 1, dtype=np.int64)
    grid = history.gather(codes[:, None], days[None, :])
    present = grid["present"]

    dispensed = grid["units_dispensed"]
    dispensed_ok = present & ~np.isnan(dispensed)
    prescriptions = grid["prescriptions_written"]
    prescriptions_ok = present & ~np.isnan(prescriptions)
    received = grid["units_received"]
    received_ok = present & ~np.isnan(received)
    recorded_28 = _trailing(present.astype(np.int64), 28)
    dispensed_count_28 = _trailing(dispensed_ok.astype(np.int64), 28)
    dispensed_sum_28 = _trailing(np.where(dispensed_ok, dispensed, 0.0), 28)
    dispensed_max_28 = _trailing(np.where(dispensed_ok, dispensed, -np.inf), 28, np.maximum)
    with np.errstate(invalid="ignore", divide="ignore"):
        dispensed_mean_28 = np.where(dispensed_count_28 > 0, dispensed_sum_28 / dispensed_count_28, np.nan)
    promotion = grid["on_promotion"] & present
    stock_out = grid["stock_out"] & present

    matrices = {
        "dispensed_1d": dispensed,
        "dispensed_sum_7d": _sum_or_nan(dispensed, dispensed_ok, 7),
        "dispensed_sum_28d": np.where(dispensed_count_28 > 0, dispensed_sum_28, np.nan),
        "dispensed_mean_28d": dispensed_mean_28,
        "dispensed_max_28d": np.where(dispensed_count_28 > 0, dispensed_max_28, np.nan),
        "prescriptions_1d": prescriptions,
        "prescriptions_sum_7d": _sum_or_nan(prescriptions, prescriptions_ok, 7),
        "prescriptions_sum_28d": _sum_or_nan(prescriptions, prescriptions_ok, 28),
        "units_on_hand": grid["units_on_hand"],
        "units_received": received,
        "received_sum_7d": _sum_or_nan(received, received_ok, 7),
        "unit_price": grid["unit_price"],
        "on_promotion": promotion,
        "promotion_days_7d": _trailing(promotion.astype(np.int64), 7),
        "stock_out": stock_out,
        "stockout_days_7d": _trailing(stock_out.astype(np.int64), 7),
        "stockout_days_28d": _trailing(stock_out.astype(np.int64), 28),
        "days_recorded_28d": recorded_28,
    }
    wanted = present & (days[None, :] >= start[:, None]) & (days[None, :] <= end[:, None])
    rows, cols = np.nonzero(wanted)
    out_days = days[cols]
    features = {name: matrix[rows, cols] for name, matrix in matrices.items()}
    features.update(_calendar(out_days))
    return DerivedRows(codes[rows], out_days, features)


def derive_rows(history: RecordHistory, codes: np.ndarray, start: np.ndarray, end: np.ndarray) -> DerivedRows:
    """Derived rows of entities `codes` for every recorded day in [start, end]
    (per entity, inclusive), computed from `history`."""
    codes = np.asarray(codes, dtype=np.int64)
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    keep = end >= start
    codes, start, end = codes[keep], start[keep], end[keep]
    if codes.size == 0:
        return DerivedRows.concat([])
    # Entities with nearby ranges share a window; wide spreads are split so
    # no window grows past MAX_CELLS.
    order = np.argsort(start, kind="stable")
    codes, start, end = codes[order], start[order], end[order]
    parts, begin = [], 0
    while begin < len(codes):
        stop = begin + 1
        span_end = end[begin]
        while stop < len(codes):
            span_end = max(span_end, end[stop])
            width = span_end - start[begin] + LONGEST_WINDOW
            if (stop + 1 - begin) * width > MAX_CELLS:
                break
            stop += 1
        parts.append(_derive_window(history, codes[begin:stop], start[begin:stop], end[begin:stop]))
        begin = stop
    return DerivedRows.concat(parts)


def affected_ranges(
    history: RecordHistory, codes: np.ndarray, days: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entities and day ranges whose derived rows change when records (codes,
    days) are stored: each record's own day through the last day whose
    windows reach back to it (capped at the entity's latest record)."""
    frame = pd.DataFrame({"code": codes, "day": days}).groupby("code")["day"].agg(["min", "max"])
    entity = frame.index.to_numpy(dtype=np.int64)
    start = frame["min"].to_numpy(dtype=np.int64)
    end = np.minimum(frame["max"].to_numpy(dtype=np.int64) + LONGEST_WINDOW - 1, history.last_day(entity))
    return entity, start, end
