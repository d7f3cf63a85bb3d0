"""The drift service's domain: references, windows, scoring, actuals,
detectors and alerts, with no transport in it.

State under `data_dir`:
  references/v<N>.json   each version's reference profile
  reports.jsonl          the newest reports (bounded)
  alerts.jsonl           every alert raised
  episodes.json          the open drift episodes
  state.pkl              open windows and detector states, written on stop
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge

from rxcast.drift import alerts as alert_kinds
from rxcast.drift.alerts import Alert, AlertBook
from rxcast.drift.detectors import DetectorSettings, ErrorStreamMonitor, forecast_residuals
from rxcast.drift.matching import PredictionLog
from rxcast.runtime.durable import read_json, write_json
from rxcast.model.profile import PREDICTION, ReferenceProfile
from rxcast.drift.reports import DriftReport, ReportLog
from rxcast.drift.scoring import DATA_QUALITY, DRIFT, INSUFFICIENT_DATA, Thresholds, score
from rxcast.drift.windows import Batch, Window, WindowBuffer
from rxcast.runtime.errors import AlreadyExists, InvalidArgument, NotFound, RxcastError
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.engine")

ROWS_INGESTED = Counter("rxcast_drift_rows_total", "Prediction-log rows received, by outcome.", ["outcome"])
WINDOWS_SCORED = Counter("rxcast_drift_windows_scored_total", "Closed windows scored, by verdict.", ["verdict"])
ALERTS_RAISED = Counter("rxcast_drift_alerts_total", "Alerts raised (one per episode), by kind.", ["kind"])
ACTUALS = Counter("rxcast_drift_actuals_total", "Actuals received, by whether a logged prediction matched.",
                  ["outcome"])
DETECTOR_STATE = Gauge("rxcast_drift_detector_state", "Concept-drift detector state per model version.",
                       ["model_version", "quantity"])
OPEN_WINDOW_ROWS = Gauge("rxcast_drift_open_window_rows", "Rows in each version's open window.", ["model_version"])

NUMERIC, CATEGORICAL = "numeric", "categorical"


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    #: A window closes at this many rows...
    window_rows: int = 5000
    #: ...or when rows of a later time slot of this length arrive (slots align to the epoch).
    window_seconds: float = 86_400.0
    #: Reports kept (in memory and on disk).
    max_reports: int = 1000
    #: Consecutive clean windows that end a drift episode.
    clean_windows: int = 3
    #: Errors without a detection that end a concept-drift episode.
    concept_clean_samples: int = 10_000
    #: Logged predictions kept for matching actuals.
    max_logged_predictions: int = 1_000_000
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)
    #: Features not scored: those that move by construction (the calendar).
    ignore_features: tuple[str, ...] = ()
    detectors: DetectorSettings = dataclasses.field(default_factory=DetectorSettings)

    def __post_init__(self) -> None:
        if self.window_rows < 1 or self.window_seconds <= 0:
            raise InvalidArgument("windows: window_rows must be >= 1 and window_seconds > 0")
        if min(self.max_reports, self.clean_windows, self.max_logged_predictions, self.concept_clean_samples) < 1:
            raise InvalidArgument(
                "max_reports, clean_windows, concept_clean_samples and max_logged_predictions must be >= 1")


@dataclasses.dataclass
class LogOutcome:
    accepted: int = 0
    rejected: int = 0
    reports: list[DriftReport] = dataclasses.field(default_factory=list)
    alerts: list[Alert] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ActualsOutcome:
    matched: int = 0
    unmatched: int = 0
    alerts: list[Alert] = dataclasses.field(default_factory=list)


#: Fetches a version's reference profile (as found in its manifest), or None.
ReferenceSource = Callable[[int], "dict | None"]
#: Called with each new alert; returns the id of a retraining job it started, or "".
AlertHook = Callable[[Alert], str]


class DriftEngine:
    def __init__(self, settings: EngineSettings | None = None, data_dir: Path | str | None = None,
                 reference_source: ReferenceSource | None = None, on_alert: AlertHook | None = None,
                 clock: Callable[[], float] = time.time):
        self.settings = settings or EngineSettings()
        self.data_dir = None if data_dir is None else Path(data_dir)
        self._reference_source = reference_source
        self._on_alert = on_alert
        self._clock = clock
        self._lock = threading.RLock()
        self._references: dict[int, ReferenceProfile] = {}
        self._windows: dict[int, WindowBuffer] = {}
        self._monitors: dict[int, ErrorStreamMonitor] = {}
        self._concept_clean: dict[int, int] = {}
        self._last_data_ms: dict[int, int] = {}
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            for path in sorted((self.data_dir / "references").glob("v*.json")):
                version = int(path.stem[1:])
                self._references[version] = ReferenceProfile.from_dict(read_json(path))
        self.reports = ReportLog(self.data_dir, self.settings.max_reports)
        self.alerts = AlertBook(self.data_dir, self.settings.clean_windows)
        self.predictions = PredictionLog(self.settings.max_logged_predictions)
        self._restore_state()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # ------------------------------------------------------------ references

    def register_reference(self, model_version: int, profile: Mapping[str, Any]) -> ReferenceProfile:
        """Register a version's profile; the same profile again is a no-op."""
        _check_version(model_version)
        reference = ReferenceProfile.from_dict(profile)
        canonical = reference.to_dict()
        with self._lock:
            existing = self._references.get(model_version)
            if existing is not None:
                if json.dumps(existing.to_dict(), sort_keys=True) != json.dumps(canonical, sort_keys=True):
                    raise AlreadyExists(f"model_version {model_version}: a different reference profile is registered; "
                                        "model versions are immutable")
                return existing
            if self.data_dir is not None:
                write_json(self.data_dir / "references" / f"v{model_version}.json", canonical)
            self._references[model_version] = reference
        log.info("reference registered", model_version=model_version, rows=reference.rows,
                 features=len(reference.features))
        return reference

    def reference(self, model_version: int) -> ReferenceProfile:
        """A version's reference, fetched from the reference source when unknown."""
        _check_version(model_version)
        with self._lock:
            known = self._references.get(model_version)
        if known is not None:
            return known
        if self._reference_source is not None:
            fetched = self._reference_source(model_version)
            if fetched:
                return self.register_reference(model_version, fetched)
        raise NotFound(f"model_version {model_version}: no reference profile registered"
                       + ("" if self._reference_source else " (and no trainer to fetch it from)"))

    def versions(self) -> list[int]:
        with self._lock:
            return sorted(self._references)

    # ------------------------------------------------------------ predictions

    def log_predictions(self, model_version: int, store_ids: np.ndarray, medication_ids: np.ndarray,
                        event_ms: np.ndarray, features: Mapping[str, np.ndarray], predictions: np.ndarray,
                        source: str = "") -> LogOutcome:
        """Window one batch of prediction logs. Batches that do not fit the
        version's reference (unknown version, features or shapes) are
        rejected whole, with the reason logged; closed windows are scored."""
        _check_version(model_version)
        rows = int(predictions.size)
        outcome = LogOutcome()
        try:
            reference = self.reference(model_version)
            batch = self._batch(reference, event_ms, features, predictions, store_ids, medication_ids)
        except (NotFound, InvalidArgument) as exc:
            # Unusable rows are rejected; a trainer that cannot be reached right
            # now fails the call instead (UNAVAILABLE), so the sender keeps them.
            self.reject(model_version, rows, source, exc.message)
            outcome.rejected = rows
            return outcome
        if store_ids.size:
            self.predictions.add(model_version, store_ids, medication_ids, event_ms, predictions)
        closed: list[Window] = []
        with self._lock:
            buffer = self._buffer(model_version, reference)
            closed.extend(buffer.add(batch, self._now_ms()))
            OPEN_WINDOW_ROWS.labels(str(model_version)).set(buffer.rows)
        ROWS_INGESTED.labels("accepted").inc(rows)
        outcome.accepted = rows
        for window in closed:
            report, raised = self._score_closed(window, reference)
            outcome.reports.append(report)
            outcome.alerts.extend(raised)
        return outcome

    def reject(self, model_version: int, rows: int, source: str, reason: str) -> None:
        """Count and log a batch of prediction logs that cannot be used."""
        log.warning("prediction logs rejected", model_version=model_version, rows=rows, source=source, reason=reason)
        ROWS_INGESTED.labels("rejected").inc(rows)

    def _batch(self, reference: ReferenceProfile, event_ms: np.ndarray, features: Mapping[str, np.ndarray],
               predictions: np.ndarray, store_ids: np.ndarray, medication_ids: np.ndarray) -> Batch:
        unknown = sorted(set(features) - set(reference.features))
        if unknown:
            raise InvalidArgument(f"features {unknown} are not in the reference profile")
        if store_ids.size and (store_ids.size != predictions.size or medication_ids.size != predictions.size):
            raise InvalidArgument("keys: one store and medication id per prediction")
        columns = {}
        for name in reference.features:
            if name in self.settings.ignore_features:
                continue
            kind = reference.kind(name)
            column = features.get(name)
            if column is None:
                column = np.full(predictions.size, np.nan if kind == NUMERIC else "", dtype=float if kind == NUMERIC
                                 else object)
            elif kind == NUMERIC and column.dtype.kind not in "fiu":
                raise InvalidArgument(f"feature {name} is numeric in the reference but was sent as strings")
            elif kind == CATEGORICAL and column.dtype.kind in "fiu":
                raise InvalidArgument(f"feature {name} is categorical in the reference but was sent as numbers")
            columns[name] = column
        if event_ms.size != predictions.size:
            raise InvalidArgument(f"event_times_unix_ms: {event_ms.size} for {predictions.size} predictions")
        return Batch(columns, predictions.astype(float), event_ms.astype(np.int64))

    def _buffer(self, model_version: int, reference: ReferenceProfile) -> WindowBuffer:
        buffer = self._windows.get(model_version)
        if buffer is None:
            kinds = {n: reference.kind(n) for n in reference.features if n not in self.settings.ignore_features}
            buffer = WindowBuffer(model_version, kinds, self.settings.window_rows,
                                  int(self.settings.window_seconds * 1000))
            self._windows[model_version] = buffer
        return buffer

    def flush(self, model_version: int) -> DriftReport | None:
        """Close and score a version's open window now (e.g. at the end of a day's batch)."""
        reference = self.reference(model_version)
        with self._lock:
            buffer = self._windows.get(model_version)
            window = buffer.close() if buffer else None
        if window is None:
            return None
        return self._score_closed(window, reference)[0]

    def _score_closed(self, window: Window, reference: ReferenceProfile) -> tuple[DriftReport, list[Alert]]:
        report = self._report(window, reference)
        self.reports.add(report)
        WINDOWS_SCORED.labels(report.verdict).inc()
        log.info("window scored", model_version=window.model_version, window_id=window.window_id,
                 rows=report.current_rows, verdict=report.verdict)
        return report, self._alerts_for(report)

    def _report(self, window: Window, reference: ReferenceProfile) -> DriftReport:
        rows = window.rows
        scores = score(reference, rows.features, rows.predictions if reference.prediction else None,
                       self.settings.thresholds, self.settings.ignore_features)
        return DriftReport.from_scores(uuid.uuid4().hex, window.model_version, window.window_id, window.start_ms,
                                       window.end_ms, reference.rows, scores, self._now_ms())

    def _alerts_for(self, report: DriftReport) -> list[Alert]:
        results = [*report.features, *([report.prediction] if report.prediction else [])]
        if all(r.verdict == INSUFFICIENT_DATA for r in results):
            return []  # nothing was judged: neither a firing nor a clean window
        drifted = [r for r in report.features if r.verdict == DRIFT]
        quality = [r for r in results if r.verdict == DATA_QUALITY]
        prediction = [r for r in [report.prediction] if r is not None and r.verdict == DRIFT]
        raised = []
        for kind, fired in ((alert_kinds.DATA_DRIFT, drifted), (alert_kinds.DATA_QUALITY, quality),
                            (alert_kinds.PREDICTION_DRIFT, prediction)):
            alert = self.alerts.observe(
                report.model_version, kind, {r.feature: r.reason for r in fired}, report_id=report.report_id,
                data_ms=report.window_end_ms, now_ms=self._now_ms(),
            )
            if alert is not None:
                raised.append(self._raised(alert))
        return raised

    def _raised(self, alert: Alert) -> Alert:
        ALERTS_RAISED.labels(alert.kind).inc()
        log.warning("drift alert", alert_id=alert.alert_id, kind=alert.kind, model_version=alert.model_version,
                    features=alert.features, reason=alert.reason)
        if self._on_alert is not None:
            try:
                job_id = self._on_alert(alert)
            except RxcastError as exc:
                log.warning("retrain trigger failed", alert_id=alert.alert_id, reason=exc.message)
                job_id = ""
            if job_id:
                self.alerts.set_retrain_job(alert.alert_id, job_id)
                alert.retrain_job_id = job_id
        return alert

    # ------------------------------------------------------------ scoring on request

    def score_window(self, model_version: int, window_id: str = "") -> DriftReport:
        """The open window scored as it stands (not closed, not stored), or a
        closed window's stored report."""
        reference = self.reference(model_version)
        if window_id:
            for report in self.reports.list(model_version, self.settings.max_reports):
                if report.window_id == window_id:
                    return report
            raise NotFound(f"window_id {window_id!r}: no report kept for it (model_version {model_version})")
        with self._lock:
            buffer = self._windows.get(model_version)
            if buffer is None or buffer.rows == 0:
                raise NotFound(f"model_version {model_version}: the open window has no rows")
            window = buffer.peek(self._now_ms())
        return self._report(window, reference)

    def score_data(self, model_version: int, features: Mapping[str, np.ndarray],
                   predictions: np.ndarray | None) -> DriftReport:
        reference = self.reference(model_version)
        if not features and (predictions is None or predictions.size == 0):
            raise InvalidArgument("features: no data to score")
        scores = score(reference, features, predictions, self.settings.thresholds, self.settings.ignore_features)
        return DriftReport.from_scores(uuid.uuid4().hex, model_version, "", 0, 0, reference.rows, scores,
                                       self._now_ms())

    # ------------------------------------------------------------ actuals

    def log_actuals(self, store_ids: np.ndarray, medication_ids: np.ndarray, event_ms: np.ndarray,
                    actuals: np.ndarray) -> ActualsOutcome:
        n = actuals.size
        if store_ids.size != n or medication_ids.size != n or event_ms.size != n:
            raise InvalidArgument(f"actuals: keys ({store_ids.size}, {medication_ids.size}), event times "
                                  f"({event_ms.size}) and actuals ({n}) must be of one length")
        outcome = ActualsOutcome()
        if n == 0:
            return outcome
        found, versions, predictions = self.predictions.match(store_ids, medication_ids, event_ms)
        outcome.matched = int(found.sum())
        outcome.unmatched = int(n - outcome.matched)
        ACTUALS.labels("matched").inc(outcome.matched)
        ACTUALS.labels("unmatched").inc(outcome.unmatched)
        losses = np.abs(forecast_residuals(actuals, predictions))
        for version in np.unique(versions[found]).tolist():
            mine = found & (versions == version)
            outcome.alerts.extend(self._feed_errors(int(version), losses[mine], int(event_ms[mine].max())))
        return outcome

    def _feed_errors(self, model_version: int, losses: np.ndarray, data_ms: int) -> list[Alert]:
        with self._lock:
            monitor = self._monitors.get(model_version)
            if monitor is None:
                reference = self._references.get(model_version)
                errors = None if reference is None or reference.error is None or reference.error.count == 0 \
                    else reference.error.sketch
                monitor = ErrorStreamMonitor(self.settings.detectors, errors, seed=model_version)
                self._monitors[model_version] = monitor
            before, level_before = monitor.samples, monitor.level_total
            detections = monitor.update(losses)
            for quantity, value in monitor.state().items():
                DETECTOR_STATE.labels(str(model_version), quantity).set(value)
            fed, level = monitor.samples - before, monitor.level_total - level_before
        raised = []
        if detections:
            self._concept_clean[model_version] = (0, 0.0)
            alert = self.alerts.observe(
                model_version, alert_kinds.CONCEPT_DRIFT, {PREDICTION: "; ".join(d.describe() for d in detections)},
                detector=detections[0].detector, data_ms=data_ms, now_ms=self._now_ms(),
            )
            if alert is not None:
                raised.append(self._raised(alert))
        else:
            self._concept_steps(model_version, fed, level, monitor.floor)
        return raised

    def _concept_steps(self, model_version: int, fed: int, level: float, floor: float) -> None:
        """Judge the errors since the last detection in steps of
        concept_clean_samples / clean_windows. The detectors adapt to a new
        error level after they fire, so silence alone does not end an episode:
        a step counts as clean only when its mean u is back below the floor;
        a step still above it keeps the open episode open."""
        step = max(1, self.settings.concept_clean_samples // self.settings.clean_windows)
        stored = self._concept_clean.get(model_version, (0, 0.0))
        count, total = stored if isinstance(stored, tuple) else (stored, 0.0)
        count, total = count + fed, total + level
        steps = count // step
        if steps:
            mean = total / count
            if mean < floor:
                for _ in range(steps):
                    self.alerts.observe(model_version, alert_kinds.CONCEPT_DRIFT, {})
            elif self.alerts.open_episodes(model_version, alert_kinds.CONCEPT_DRIFT):
                self.alerts.observe(model_version, alert_kinds.CONCEPT_DRIFT,
                                    {PREDICTION: f"error level {mean:.3f} still above {floor:.3f}"})
            count, total = count - steps * step, total - mean * steps * step
        self._concept_clean[model_version] = (count, total)

    def detector_states(self) -> dict[int, dict[str, float]]:
        with self._lock:
            return {v: m.state() for v, m in self._monitors.items()}

    # ------------------------------------------------------------ lists and watching

    def list_reports(self, model_version: int = 0, limit: int = 0) -> list[DriftReport]:
        if model_version < 0 or limit < 0:
            raise InvalidArgument("model_version and limit must be >= 0")
        return self.reports.list(model_version, limit or 50)

    def list_alerts(self, model_version: int = 0, limit: int = 0) -> list[Alert]:
        if model_version < 0 or limit < 0:
            raise InvalidArgument("model_version and limit must be >= 0")
        return self.alerts.list(model_version, limit or 100)

    def watch_alerts(self, after_alert_id: int, active: Callable[[], bool]) -> Iterator[Alert]:
        if after_alert_id < -1:
            raise InvalidArgument(f"after_alert_id: must be >= -1, got {after_alert_id}")
        return self.alerts.watch(after_alert_id, active)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Persist open windows and detector states; end watchers."""
        self.alerts.close()
        if self.data_dir is None:
            return
        with self._lock:
            state = {"windows": self._windows, "monitors": self._monitors, "concept_clean": self._concept_clean}
            scratch = self.data_dir / "state.pkl.tmp"
            with open(scratch, "wb") as out:
                pickle.dump(state, out)
            scratch.replace(self.data_dir / "state.pkl")

    def _restore_state(self) -> None:
        path = None if self.data_dir is None else self.data_dir / "state.pkl"
        if path is None or not path.exists():
            return
        try:
            with open(path, "rb") as source:
                state = pickle.load(source)
            self._windows = state["windows"]
            self._monitors = state["monitors"]
            self._concept_clean = state["concept_clean"]
        except Exception as exc:  # a state file from another version: start the windows afresh
            log.warning("open windows and detector states not restored", error=str(exc))
        path.unlink()


def _check_version(model_version: int) -> None:
    if model_version <= 0:
        raise InvalidArgument(f"model_version: must be > 0, got {model_version}")
