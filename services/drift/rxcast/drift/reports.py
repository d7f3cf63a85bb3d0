"""Drift reports and their bounded, persisted log."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

from rxcast.drift.scoring import FeatureResult, Scores
from rxcast.runtime.durable import JsonLines
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.reports")


@dataclasses.dataclass
class DriftReport:
    """One window (or ad-hoc data set) scored against one reference."""

    report_id: str
    model_version: int
    window_id: str
    window_start_ms: int
    window_end_ms: int
    reference_rows: int
    current_rows: int
    features: list[FeatureResult]
    prediction: FeatureResult | None
    verdict: str
    created_ms: int
    #: The window's MAE estimated from its inputs, and the band's upper bound
    #: (None without an error estimator in the reference).
    estimated_mae: float | None = None
    estimated_mae_upper: float | None = None

    @classmethod
    def from_scores(
        cls,
        report_id: str,
        model_version: int,
        window_id: str,
        start_ms: int,
        end_ms: int,
        reference_rows: int,
        scores: Scores,
        created_ms: int,
        estimate: tuple[float, float] | None = None,
    ) -> DriftReport:
        """A report of `scores`, with `estimate` as (estimated MAE, upper bound of its band)."""
        estimated_mae, upper = estimate if estimate is not None else (None, None)
        return cls(
            report_id,
            model_version,
            window_id,
            start_ms,
            end_ms,
            reference_rows,
            scores.current_rows,
            scores.features,
            scores.prediction,
            scores.verdict,
            created_ms,
            estimated_mae,
            upper,
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["features"] = [f.to_dict() for f in self.features]
        data["prediction"] = None if self.prediction is None else self.prediction.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        values = dict(data)
        values["features"] = [FeatureResult.from_dict(f) for f in data["features"]]
        values["prediction"] = None if data.get("prediction") is None else FeatureResult.from_dict(data["prediction"])
        return cls(**values)


class ReportLog:
    """The newest `keep` reports, in memory and (with a directory) on disk."""

    def __init__(self, directory: Path | None, keep: int):
        self.keep = keep
        self._lock = threading.Lock()
        self._file = None if directory is None else JsonLines(directory / "reports.jsonl")
        self._appended = 0
        records = self._file.read() if self._file else []
        self._reports = []
        for number, record in enumerate(records[-keep:], 1):
            try:
                self._reports.append(DriftReport.from_dict(record))
            except (TypeError, KeyError, ValueError, AttributeError) as exc:  # a report that does not fit: skipped
                log.warning("skipping unreadable report record", record=number, error=str(exc))

    def add(self, report: DriftReport) -> None:
        with self._lock:
            self._reports.append(report)
            del self._reports[: -self.keep]
            if self._file is None:
                return
            self._file.append(report.to_dict())
            self._appended += 1
            # Rewrite once the file holds twice what is kept, so it stays bounded.
            if self._appended >= self.keep:
                self._file.compact([r.to_dict() for r in self._reports])
                self._appended = 0

    def list(self, model_version: int = 0, limit: int = 50) -> list[DriftReport]:
        with self._lock:
            chosen = [r for r in reversed(self._reports) if not model_version or r.model_version == model_version]
        return chosen[:limit]

    def get(self, report_id: str) -> DriftReport | None:
        with self._lock:
            return next((r for r in self._reports if r.report_id == report_id), None)
