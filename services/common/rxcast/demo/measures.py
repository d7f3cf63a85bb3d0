"""The numbers of the report, computed from a demo run's ledger: accuracy per
day and per period, latency, freshness, time to adapt and compute cost, for
each serving mode. Pure functions over plain data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rxcast.demo.ledger import DayLog, Ledger, ModeDay, TrainingLog

MODES = ("online", "batch")


def _mode(log: DayLog, mode: str) -> ModeDay:
    return log.online if mode == "online" else log.batch


def _compared(log: DayLog) -> np.ndarray:
    """Rows both modes answered and whose actual is known: both modes are
    judged on exactly the same rows."""
    if log.actuals is None:
        return np.zeros(len(log.store_ids), dtype=bool)
    return log.actual_found & np.isfinite(log.online.forecasts) & np.isfinite(log.batch.forecasts)


def _errors(forecasts: np.ndarray, actuals: np.ndarray) -> dict[str, float]:
    if actuals.size == 0:
        return {"mae": np.nan, "wape": np.nan}
    absolute = np.abs(forecasts - actuals)
    total = actuals.sum()
    return {"mae": float(absolute.mean()), "wape": float(absolute.sum() / total) if total > 0 else np.nan}


def day_errors(log: DayLog) -> dict | None:
    """MAE and WAPE per mode for one day; None until its horizon has elapsed."""
    ok = _compared(log)
    if not ok.any():
        return None
    row = {"day": log.day, "rows": int(ok.sum())}
    for mode in MODES:
        for name, value in _errors(_mode(log, mode).forecasts[ok], log.actuals[ok]).items():
            row[f"{mode}_{name}"] = value
    return row


def daily_accuracy(ledger: Ledger) -> pd.DataFrame:
    """One row per played day whose horizon has elapsed: MAE and WAPE per mode."""
    return pd.DataFrame([row for log in ledger.days if (row := day_errors(log)) is not None])


def event_days(ledger: Ledger) -> list[tuple[dt.date, str]]:
    played = {log.day for log in ledger.days}
    return [
        (dt.date.fromisoformat(e["business_day"]), e["kind"])
        for e in ledger.events
        if dt.date.fromisoformat(e["business_day"]) in played
    ]


def accuracy_by_period(ledger: Ledger) -> pd.DataFrame:
    """Pooled MAE and WAPE per mode before the first event and between events."""
    events = event_days(ledger)
    bounds = [(None, "before any event")] + [(day, f"after {kind} ({day})") for day, kind in events]
    rows = []
    for i, (start, label) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else None
        logs = [
            log
            for log in ledger.days
            if (start is None or log.day >= start) and (end is None or log.day < end) and _compared(log).any()
        ]
        if not logs:
            continue
        row = {"period": label, "days": len(logs)}
        actuals = np.concatenate([log.actuals[_compared(log)] for log in logs])
        for mode in MODES:
            forecasts = np.concatenate([_mode(log, mode).forecasts[_compared(log)] for log in logs])
            for name, value in _errors(forecasts, actuals).items():
                row[f"{mode}_{name}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def latency(ledger: Ledger) -> dict[str, dict[str, float]]:
    """Per mode: p50 and p99 of one call's latency (ms) and the keys per call."""
    out = {}
    for mode in MODES:
        calls = (
            np.concatenate([np.asarray(_mode(log, mode).latencies_ms) for log in ledger.days])
            if ledger.days
            else np.zeros(0)
        )
        keys = sum(len(log.store_ids) for log in ledger.days)
        out[mode] = {
            "calls": int(calls.size),
            "p50_ms": float(np.percentile(calls, 50)) if calls.size else np.nan,
            "p99_ms": float(np.percentile(calls, 99)) if calls.size else np.nan,
            "keys_per_call": keys / calls.size if calls.size else np.nan,
        }
    return out


def window_ends(ledger: Ledger) -> dict[int, dt.date]:
    """Per model version the run trained: the newest day it learnt from (the
    end of its window when it was refitted on every labelled row)."""
    return {t.version: t.trained_through or dt.date.fromisoformat(t.window[1]) for t in ledger.trainings if t.version}


def model_age_days(ends: dict[int, dt.date], log: DayLog, mode: str) -> np.ndarray:
    """Per forecast: days from the end of its model's training window to the forecast."""
    age = {v: float((log.day - end).days) for v, end in ends.items()}
    return np.array([age.get(v, np.nan) for v in _mode(log, mode).versions.tolist()], dtype=float)


def freshness_daily(ledger: Ledger) -> pd.DataFrame:
    """Per day and mode: median feature age (hours) and model age (days)."""
    ends = window_ends(ledger)
    rows = []
    for log in ledger.days:
        row = {"day": log.day}
        for mode in MODES:
            ages = _mode(log, mode).feature_age_s
            row[f"{mode}_feature_age_h"] = float(np.nanmedian(ages)) / 3600 if np.isfinite(ages).any() else np.nan
            model = model_age_days(ends, log, mode)
            row[f"{mode}_model_age_d"] = float(np.nanmedian(model)) if np.isfinite(model).any() else np.nan
            row[f"{mode}_version"] = int(np.max(_mode(log, mode).versions)) if len(log.store_ids) else 0
        rows.append(row)
    return pd.DataFrame(rows)


def freshness(ledger: Ledger) -> dict[str, dict[str, float]]:
    """Per mode over all forecasts: median and p99 of feature age (hours) and model age (days)."""
    ends = window_ends(ledger)
    out = {}
    for mode in MODES:
        features = np.concatenate([_mode(log, mode).feature_age_s for log in ledger.days]) / 3600
        models = np.concatenate([model_age_days(ends, log, mode) for log in ledger.days])
        out[mode] = {
            "feature_age_h_p50": float(np.nanmedian(features)),
            "feature_age_h_p99": float(np.nanpercentile(features, 99)),
            "model_age_d_p50": float(np.nanmedian(models)),
            "model_age_d_p99": float(np.nanpercentile(models, 99)),
        }
    return out


@dataclass
class Served:
    """A champion and when it was trained and first served by each mode."""

    version: int
    trained_day: dt.date
    online_day: dt.date | None
    batch_day: dt.date | None


@dataclass
class Adaptation:
    event: str
    day: dt.date
    #: The data day of the window that opened the first incident whose cause began after the event.
    first_incident_day: dt.date | None
    first_incident: str
    #: The first champion promoted after the event.
    promoted: Served | None
    #: The first champion fitted on rows from after the event (the stricter reading).
    fitted: Served | None

    def days_after(self, day: dt.date | None) -> int | None:
        return None if day is None else (day - self.day).days

    # The stricter reading, by name: what the end-to-end test checks.
    @property
    def version(self) -> int | None:
        return self.fitted.version if self.fitted else None

    @property
    def online_day(self) -> dt.date | None:
        return self.fitted.online_day if self.fitted else None

    @property
    def batch_day(self) -> dt.date | None:
        return self.fitted.batch_day if self.fitted else None


def _first_serving(ledger: Ledger, mode: str, training: TrainingLog | None) -> dt.date | None:
    """The first played day on which `mode` served `training`'s version or a later one of its alias."""
    if training is None:
        return None
    later = {t.version for t in ledger.trainings if t.alias == training.alias and t.version >= training.version}
    for log in ledger.days:
        if log.day >= training.day and np.isin(_mode(log, mode).versions, list(later)).any():
            return log.day
    return None


def _first_training(ledger: Ledger, alias: str, day: dt.date, fitted_after: bool) -> TrainingLog | None:
    """The first version promoted to `alias` after `day` (fitted on rows from after it, if asked)."""
    for t in ledger.trainings:
        if not t.promoted or (t.alias and t.alias != alias):
            continue
        if (t.trained_through is not None and t.trained_through >= day) if fitted_after else t.day >= day:
            return t
    return None


def _served(ledger: Ledger, day: dt.date, fitted_after: bool) -> Served | None:
    """Each mode's first model after the event, from its own alias."""
    online = _first_training(ledger, "online", day, fitted_after)
    batch = _first_training(ledger, "batch", day, fitted_after)
    if online is None and batch is None:
        return None
    first = online or batch
    return Served(
        first.version, first.day, _first_serving(ledger, "online", online), _first_serving(ledger, "batch", batch)
    )


def adaptation(ledger: Ledger) -> list[Adaptation]:
    """Per injected event: when the drift service opened an incident for a
    cause that began after it (before the next event), and when each serving
    mode first served a model promoted to its alias after it, and one fitted
    on rows from after it."""
    events = event_days(ledger)
    out = []
    for i, (day, kind) in enumerate(events):
        until = events[i + 1][0] if i + 1 < len(events) else None
        caused = [
            incident
            for incident in ledger.incidents
            if (began := incident.changed_day or incident.day) >= day and (until is None or began < until)
        ]
        first = min(caused, key=lambda incident: (incident.day, incident.incident_id)) if caused else None
        out.append(
            Adaptation(
                kind,
                day,
                first.day if first else None,
                f"{first.kind} ({', '.join(first.features[:3])})" if first else "",
                _served(ledger, day, fitted_after=False),
                _served(ledger, day, fitted_after=True),
            )
        )
    return out


def recovery_days(ledger: Ledger, baseline_days: int = 14, tolerance: float = 0.10) -> list[dict]:
    """Per event and mode: days until the mode's daily MAE is back within
    `tolerance` of its pooled MAE over the `baseline_days` before the event
    (and stays there two more days); None if it never is in the played days."""
    daily = daily_accuracy(ledger)
    out = []
    if daily.empty:
        return out
    for day, kind in event_days(ledger):
        row: dict = {"event": kind, "day": day}
        for mode in MODES:
            before = daily[(daily["day"] < day) & (daily["day"] >= day - dt.timedelta(days=baseline_days))]
            if before.empty:
                row[mode] = None
                continue
            level = float(np.average(before[f"{mode}_mae"], weights=before["rows"]))
            after = daily[daily["day"] >= day].reset_index(drop=True)
            within = (after[f"{mode}_mae"] <= level * (1 + tolerance)).to_numpy()
            steady = [i for i in range(len(within)) if within[i : i + 3].all() and len(within[i : i + 3]) == 3]
            row[f"{mode}_level"] = level
            row[mode] = (after["day"][steady[0]] - day).days if steady else None
        out.append(row)
    return out


def training_cost(ledger: Ledger) -> dict[str, dict[str, float]]:
    """Per mode (its alias): training jobs, promotions, wall and CPU seconds training."""
    out = {}
    for mode in MODES:
        jobs = [t for t in ledger.trainings if t.alias == mode]
        out[mode] = {
            "jobs": len(jobs),
            "promoted": sum(t.promoted for t in jobs),
            "cpu_s": sum(t.cpu_seconds for t in jobs),
            "wall_s": sum(t.wall_seconds for t in jobs),
        }
    return out


def cost(ledger: Ledger) -> dict[str, dict[str, float]]:
    """CPU seconds per 1,000 forecasts and per played day, per mode. Online:
    the online predictor and the feature service while forecasts are asked
    for. Batch: the batch predictor and the feature service during runs, plus
    the batch predictor during lookups."""
    cpu = ledger.cpu
    days = max(len(ledger.days), 1)
    served = sum(len(log.store_ids) for log in ledger.days)
    online = cpu.get(("online", "predictor-online"), 0.0) + cpu.get(("online", "feature"), 0.0)
    run = cpu.get(("batch-run", "predictor-batch"), 0.0) + cpu.get(("batch-run", "feature"), 0.0)
    lookup = cpu.get(("batch-lookup", "predictor-batch"), 0.0)
    scored = sum(r.rows for r in ledger.batch_runs if r.state == "succeeded")
    return {
        "online": {
            "cpu_s": online,
            "per_1000": 1000 * online / max(served, 1),
            "per_day": online / days,
            "predictions": served,
        },
        "batch": {
            "cpu_s": run + lookup,
            "per_1000": 1000 * (run + lookup) / max(served, 1),
            "per_day": (run + lookup) / days,
            "predictions": served,
            "run_cpu_s": run,
            "lookup_cpu_s": lookup,
            "rows_scored": scored,
            "run_per_1000_scored": 1000 * run / max(scored, 1),
        },
    }


def pooled_mae(ledger: Ledger, start: dt.date, end: dt.date | None) -> tuple[float, float, int]:
    """MAE of each mode over the days in [start, end) whose actuals are known,
    pooled over rows; and the number of days."""
    logs = [log for log in ledger.days if log.day >= start and (end is None or log.day < end) and _compared(log).any()]
    if not logs:
        return np.nan, np.nan, 0
    actuals = np.concatenate([log.actuals[_compared(log)] for log in logs])
    online = np.concatenate([log.online.forecasts[_compared(log)] for log in logs])
    batch = np.concatenate([log.batch.forecasts[_compared(log)] for log in logs])
    return float(np.abs(online - actuals).mean()), float(np.abs(batch - actuals).mean()), len(logs)
