"""Logged predictions kept for matching the actuals that arrive later.

Rows are keyed by (store, medication, event time); the newest `max_rows`
are kept. Matching and the collector's queries are vectorized joins.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

_COLUMNS = ["store_id", "medication_id", "event_ms", "model_version", "prediction", "matched", "asked_ms"]


class PredictionLog:
    def __init__(self, max_rows: int):
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._chunks: list[pd.DataFrame] = []
        self._frame = pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            _COLUMNS, [object, object, np.int64, np.int64, float, bool, np.int64], strict=True)})

    def __len__(self) -> int:
        with self._lock:
            return len(self._consolidated())

    def add(self, model_version: int, store_ids: np.ndarray, medication_ids: np.ndarray, event_ms: np.ndarray,
            predictions: np.ndarray) -> None:
        chunk = pd.DataFrame({
            "store_id": store_ids.astype(object),
            "medication_id": medication_ids.astype(object),
            "event_ms": event_ms.astype(np.int64),
            "model_version": np.int64(model_version),
            "prediction": predictions.astype(float),
            "matched": False,
            "asked_ms": np.int64(0),
        })
        with self._lock:
            self._chunks.append(chunk)
            if len(self._chunks) >= 64:
                self._consolidated()

    def _consolidated(self) -> pd.DataFrame:
        if self._chunks:
            frame = pd.concat([self._frame, *self._chunks], ignore_index=True)
            # A key logged twice (e.g. by the online and the batch predictor) keeps its newest row.
            frame = frame.drop_duplicates(["store_id", "medication_id", "event_ms"], keep="last")
            self._frame = frame.iloc[-self.max_rows:].reset_index(drop=True)
            self._chunks = []
        return self._frame

    def match(self, store_ids: np.ndarray, medication_ids: np.ndarray, event_ms: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each actual: whether a logged prediction matches it, the
        prediction's model version and value. Matched rows are marked."""
        query = pd.DataFrame({"store_id": store_ids.astype(object), "medication_id": medication_ids.astype(object),
                              "event_ms": event_ms.astype(np.int64), "position": np.arange(store_ids.size)})
        with self._lock:
            frame = self._consolidated()
            keyed = frame.reset_index().rename(columns={"index": "row"})
            joined = query.merge(keyed[["store_id", "medication_id", "event_ms", "row", "model_version",
                                        "prediction"]], on=["store_id", "medication_id", "event_ms"], how="left")
            found = joined["row"].notna().to_numpy()
            if found.any():
                frame.loc[joined.loc[found, "row"].astype(np.int64).to_numpy(), "matched"] = True
        joined = joined.sort_values("position")
        found = joined["row"].notna().to_numpy()
        versions = joined["model_version"].fillna(0).astype(np.int64).to_numpy()
        predictions = joined["prediction"].to_numpy(dtype=float)
        return found, versions, predictions

    def unmatched(self, limit: int, asked_before_ms: int, now_ms: int) -> pd.DataFrame:
        """Up to `limit` of the oldest unmatched rows not asked about since
        `asked_before_ms`; they are marked as asked at `now_ms`."""
        with self._lock:
            frame = self._consolidated()
            chosen = frame.index[(~frame["matched"]) & (frame["asked_ms"] <= asked_before_ms)][:limit]
            frame.loc[chosen, "asked_ms"] = now_ms
            return frame.loc[chosen, ["store_id", "medication_id", "event_ms"]].copy()
