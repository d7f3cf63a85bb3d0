"""Scoring forecasts on a holdout: the model, the naive baseline, the champion.

All three are scored on the same rows with the same actuals. The champion is
scored through its own bundle: its own feature list and its own encoder (its
categorical levels), exactly as a predictor serving it would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, get_args

import numpy as np

from rxcast.model import ModelBundle
from rxcast.runtime.errors import FailedPrecondition, RxcastError
from rxcast.trainer.dataset import TrainingSet

#: Trailing 7-day units dispensed: the naive seasonal baseline's input.
BASELINE_FEATURE = "dispensed_sum_7d"
BASELINE_DAYS = 7
MetricName = Literal["mae", "rmse", "wape"]
METRIC_NAMES: tuple[str, ...] = get_args(MetricName)


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Accuracy of forecasts against actuals, in units over the horizon."""

    mae: float
    rmse: float
    wape: float
    rows: int

    def get(self, name: str) -> float:
        return float(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metrics:
        return cls(float(data["mae"]), float(data["rmse"]), float(data["wape"]), int(data["rows"]))


def score(actual: np.ndarray, predicted: np.ndarray) -> Metrics:
    """MAE, RMSE and WAPE (sum |error| / sum actual) of `predicted`."""
    actual = np.asarray(actual, dtype=np.float64)
    error = np.asarray(predicted, dtype=np.float64) - actual
    total = float(actual.sum())
    if actual.size == 0 or total <= 0.0:
        raise FailedPrecondition(f"holdout: {actual.size} rows with {total:g} units of demand; WAPE is undefined")
    absolute = np.abs(error)
    return Metrics(
        mae=float(absolute.mean()),
        rmse=float(np.sqrt(np.mean(error * error))),
        wape=float(absolute.sum() / total),
        rows=int(actual.size),
    )


def error_statistics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Moments of the error (actual - forecast) on the holdout, in units (the
    reference profile holds the same errors on the scale of Poisson noise)."""
    error = np.asarray(actual, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    return {
        "mean": float(error.mean()),
        "std": float(error.std(ddof=1)) if error.size > 1 else 0.0,
        "mae": float(np.abs(error).mean()),
        "rows": int(error.size),
    }


def naive_baseline(columns: Mapping[str, np.ndarray], horizon_days: int) -> np.ndarray:
    """The trailing 7-day mean carried over the horizon; 0 where unknown."""
    if BASELINE_FEATURE not in columns:
        raise FailedPrecondition(f"holdout: the baseline feature {BASELINE_FEATURE!r} was not loaded")
    trailing = np.asarray(columns[BASELINE_FEATURE], dtype=np.float64)
    return np.nan_to_num(trailing / BASELINE_DAYS * horizon_days, nan=0.0, posinf=0.0, neginf=0.0)


def champion_predictions(champion: ModelBundle, holdout: TrainingSet, num_threads: int) -> np.ndarray:
    """The champion's forecasts for the holdout rows, through its own encoder.

    FailedPrecondition when the champion cannot be judged on these rows (it
    forecasts another horizon, or needs features the holdout lacks).
    """
    if champion.manifest.horizon_days != holdout.horizon_days:
        raise FailedPrecondition(
            f"champion v{champion.version} forecasts {champion.manifest.horizon_days} days, "
            f"the holdout's labels cover {holdout.horizon_days}"
        )
    try:
        return champion.predict(holdout.columns, num_threads=num_threads)
    except RxcastError as exc:
        raise FailedPrecondition(f"champion v{champion.version} cannot score the holdout: {exc.message}") from None


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """A model's holdout metrics next to the baseline's and the champion's."""

    model: Metrics
    baseline: Metrics
    holdout: dict[str, str]
    champion: Metrics | None = None
    champion_version: int = 0
    #: Why the champion has no metrics although there is one.
    champion_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "baseline": self.baseline.to_dict(),
            "champion": None if self.champion is None else self.champion.to_dict(),
            "champion_version": self.champion_version,
            "champion_note": self.champion_note,
            "holdout": dict(self.holdout),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        champion = data.get("champion")
        return cls(
            model=Metrics.from_dict(data["model"]),
            baseline=Metrics.from_dict(data["baseline"]),
            holdout=dict(data.get("holdout", {})),
            champion=None if not champion else Metrics.from_dict(champion),
            champion_version=int(data.get("champion_version", 0)),
            champion_note=str(data.get("champion_note", "")),
        )


def evaluate(
    predictions: np.ndarray,
    holdout: TrainingSet,
    holdout_window: dict[str, str],
    champion: ModelBundle | None,
    num_threads: int,
) -> Evaluation:
    """Score the model's holdout forecasts, the baseline and the champion."""
    model = score(holdout.labels, predictions)
    baseline = score(holdout.labels, naive_baseline(holdout.columns, holdout.horizon_days))
    if champion is None:
        return Evaluation(model, baseline, holdout_window)
    try:
        champion_metrics = score(holdout.labels, champion_predictions(champion, holdout, num_threads))
    except FailedPrecondition as exc:
        return Evaluation(model, baseline, holdout_window, None, champion.version, exc.message)
    return Evaluation(model, baseline, holdout_window, champion_metrics, champion.version)
