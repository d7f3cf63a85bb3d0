"""The drift service's domain: references, windows, scoring, actuals,
detectors and alerts, with no transport in it.

State under `data_dir`:
  references/v<N>.json   each version's reference profile
  reports.jsonl          the newest reports (bounded)
  alerts.jsonl           every alert raised
  episodes.json          the open drift episodes
  state/                 open windows, concept-drift monitors, the segments'
                         day buckets and logged predictions awaiting
                         actuals: checkpoints and a journal (rxcast.drift.state)

A LogPredictions or LogActuals call is acknowledged when it returns: its
rows, or its matches and the monitors' new states, are in the journal
(fsynced) by then, so a SIGKILL after it loses none of them.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge

from rxcast.drift import alerts as alert_kinds
from rxcast.drift import incidents as incident_kinds
from rxcast.drift.alerts import Alert, AlertBook
from rxcast.drift.codec import (
    StateError,
    integer,
    list_to_strings,
    number,
    require,
    strings_to_list,
    text_to_uints,
    uints_to_text,
)
from rxcast.drift.detectors import DetectorSettings, ErrorStreamMonitor
from rxcast.drift.evidence import feature_evidence
from rxcast.drift.incidents import Firing, Incident, IncidentBook, WindowRef
from rxcast.drift.matching import PredictionLog, Snapshot, entity_time_keys
from rxcast.drift.reports import DriftReport, ReportLog
from rxcast.drift.scoring import DATA_QUALITY, DRIFT, INSUFFICIENT_DATA, FeatureResult, Thresholds, score
from rxcast.drift.seasonal import SeasonalDay, SeasonalSettings, yoy_feature
from rxcast.drift.segments import SegmentDay, SegmentErrors, SegmentSettings, segment_feature
from rxcast.drift.state import COMPACT_MIN_ROWS, StateStore
from rxcast.drift.windows import Batch, Window, WindowBuffer
from rxcast.model.error_estimator import forecast_level
from rxcast.model.profile import PREDICTION, ReferenceProfile, stratum_keys
from rxcast.model.residuals import POISSON_SCALE, forecast_residuals
from rxcast.model.timebase import DAY_MS
from rxcast.runtime.durable import quarantine, read_json, write_json
from rxcast.runtime.errors import AlreadyExists, InvalidArgument, NotFound, RxcastError, Unavailable
from rxcast.runtime.logs import get_logger
from rxcast.runtime.validation import quote

log = get_logger("rxcast.drift.engine")

ROWS_INGESTED = Counter("rxcast_drift_rows_total", "Prediction-log rows received, by outcome.", ["outcome"])
WINDOWS_SCORED = Counter("rxcast_drift_windows_scored_total", "Closed windows scored, by verdict.", ["verdict"])
ALERTS_RAISED = Counter("rxcast_drift_alerts_total", "Alerts raised (one per episode), by kind.", ["kind"])
INCIDENTS = Counter("rxcast_drift_incidents_total", "Incidents opened and resolved, by kind.", ["kind", "event"])
ACTUALS = Counter(
    "rxcast_drift_actuals_total", "Actuals received, by whether a logged prediction matched.", ["outcome"]
)
DETECTOR_STATE = Gauge(
    "rxcast_drift_detector_state", "Concept-drift detector state per model version.", ["model_version", "quantity"]
)
ESTIMATED_ERROR = Gauge(
    "rxcast_drift_estimated_mae", "The newest window's MAE estimated from its inputs.", ["model_version"]
)
ESTIMATED_ERROR_UPPER = Gauge(
    "rxcast_drift_estimated_mae_upper",
    "The upper bound of the newest window's estimated MAE: the band at its forecast level.",
    ["model_version"],
)
SEGMENT_ERROR = Gauge(
    "rxcast_drift_segment_error_ratio",
    "A segment's newest judged day: its mean scaled loss over the median of its previous days.",
    ["line", "segment"],
)
YEAR_OVER_YEAR = Gauge(
    "rxcast_drift_year_over_year_ratio",
    "A segment's newest judged day of inputs: its mean over the same weekday's a year before, over the trend since.",
    ["segment"],
)
OPEN_WINDOW_ROWS = Gauge("rxcast_drift_open_window_rows", "Rows in each version's open window.", ["model_version"])

NUMERIC, CATEGORICAL = "numeric", "categorical"
#: The "feature" a concept-drift incident names: the error stream.
ERRORS = "errors"
#: The "feature" a performance incident names: the error estimated before labels.
ESTIMATED_ERROR_FEATURE = "estimated_error"
#: What a version's error monitor judges: its whole stream (segments are judged apart).
_WHOLE_STREAM = frozenset({ERRORS})
#: Stratified references kept per engine (merging strata costs milliseconds, not nothing).
_STRATA_CACHE = 256


@dataclasses.dataclass(frozen=True)
class EngineSettings:
    #: A window closes at this many rows...
    window_rows: int = 5000
    #: ...or when rows of a later time slot of this length arrive (slots align to the epoch).
    window_seconds: float = 86_400.0
    #: Reports kept (in memory and on disk).
    max_reports: int = 1000
    #: Consecutive clean windows that end a drift episode (and resolve an incident).
    clean_windows: int = 3
    #: Consecutive windows in which a cause fires before it opens an incident.
    confirm_windows: int = 2
    #: A distribution shift starts an incident only at this many times its effect floor.
    incident_effect: float = 2.0
    #: Days after an incident's change in which a family starting to fire with it,
    #: or a rise of the error, joins it (event time); later, it is a cause of its own.
    incident_follow_days: float = 14.0
    #: Errors without a detection that end a concept-drift episode.
    concept_clean_samples: int = 10_000
    #: Logged predictions kept for matching actuals.
    max_logged_predictions: int = 1_000_000
    thresholds: Thresholds = dataclasses.field(default_factory=Thresholds)
    #: Features not scored: those that move by construction (the calendar).
    ignore_features: tuple[str, ...] = ()
    detectors: DetectorSettings = dataclasses.field(default_factory=DetectorSettings)
    #: Errors judged within segments (medication categories) against their own recent days.
    segments: SegmentSettings = dataclasses.field(default_factory=SegmentSettings)
    #: Segments' daily inputs judged against the same weekday a year before.
    seasonal: SeasonalSettings = dataclasses.field(default_factory=SeasonalSettings)

    def __post_init__(self) -> None:
        if self.window_rows < 1 or self.window_seconds <= 0:
            raise InvalidArgument("windows: window_rows must be >= 1 and window_seconds > 0")
        if self.incident_follow_days < 0:
            raise InvalidArgument("incident_follow_days: must be >= 0")
        if (
            min(
                self.max_reports,
                self.clean_windows,
                self.confirm_windows,
                self.max_logged_predictions,
                self.concept_clean_samples,
            )
            < 1
        ):
            raise InvalidArgument(
                "max_reports, clean_windows, confirm_windows, concept_clean_samples and max_logged_predictions must be >= 1"
            )


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
#: Called with each new incident a retrained model can address; returns the id of the job it started, or "".
IncidentHook = Callable[[Incident], str]


class DriftEngine:
    def __init__(
        self,
        settings: EngineSettings | None = None,
        data_dir: Path | str | None = None,
        reference_source: ReferenceSource | None = None,
        on_alert: AlertHook | None = None,
        on_incident: IncidentHook | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.settings = settings or EngineSettings()
        self.data_dir = None if data_dir is None else Path(data_dir)
        self._reference_source = reference_source
        self._on_alert = on_alert
        self._on_incident = on_incident
        self._clock = clock
        # Guards windows, monitors and concept bookkeeping, and orders the journal.
        self._lock = threading.RLock()
        self._references: dict[int, ReferenceProfile] = {}
        self._windows: dict[int, WindowBuffer] = {}
        # Closed windows not scored yet: checkpoints hold them, so a crash before their report does not lose them.
        self._closing: dict[str, Window] = {}
        self._monitors: dict[int, ErrorStreamMonitor] = {}
        # Per version: (errors since the last judged step, their sum of scaled losses).
        self._concept_clean: dict[int, tuple[int, float]] = {}
        # Per version: the sequence a new window buffer starts at (after the windows reported, when state was lost).
        self._first_sequence: dict[int, int] = {}
        # (version, strata of a window) -> the reference on that population.
        # Concept-drift incidents opened under the lock, announced after it.
        self._concept_opened: list[Incident] = []
        self._strata_cache: dict[tuple[int, frozenset[str]], ReferenceProfile] = {}
        self._state: StateStore | None = None
        # Logged-prediction rows journaled since the last snapshot of the prediction log, and rows it held.
        self._journaled_rows = 0
        self._snapshot_rows = 0
        self._compacting = False
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._load_references()
            self._state = StateStore(self.data_dir / "state")
        self.reports = ReportLog(self.data_dir, self.settings.max_reports)
        self.alerts = AlertBook(self.data_dir, self.settings.clean_windows)
        self.incidents = IncidentBook(
            self.data_dir,
            self.settings.confirm_windows,
            self.settings.clean_windows,
            int(self.settings.incident_follow_days * 86_400_000),
        )
        self.predictions = PredictionLog(self.settings.max_logged_predictions)
        self.segments = SegmentErrors(self.settings.segments)
        if self._state is not None:
            self._recover()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _load_references(self) -> None:
        for path in sorted((self.data_dir / "references").glob("v*.json")):
            try:
                version = int(path.stem[1:])
                self._references[version] = ReferenceProfile.from_dict(read_json(path))
            except (ValueError, KeyError, TypeError, RxcastError) as exc:
                # Fetched again from the trainer when its version's logs arrive.
                quarantine(path, f"not a reference profile: {getattr(exc, 'message', exc)}")

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
                    raise AlreadyExists(
                        f"model_version {model_version}: a different reference profile is registered; "
                        "model versions are immutable"
                    )
                return existing
            if self.data_dir is not None:
                write_json(self.data_dir / "references" / f"v{model_version}.json", canonical)
            self._references[model_version] = reference
        log.info(
            "reference registered", model_version=model_version, rows=reference.rows, features=len(reference.features)
        )
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
        raise NotFound(
            f"model_version {model_version}: no reference profile registered"
            + ("" if self._reference_source else " (and no trainer to fetch it from)")
        )

    def versions(self) -> list[int]:
        with self._lock:
            return sorted(self._references)

    # ------------------------------------------------------------ predictions

    def log_predictions(
        self,
        model_version: int,
        store_ids: np.ndarray,
        medication_ids: np.ndarray,
        event_ms: np.ndarray,
        features: Mapping[str, np.ndarray],
        predictions: np.ndarray,
        source: str = "",
        sync: bool = True,
    ) -> LogOutcome:
        """Window one batch of prediction logs. Batches that do not fit the
        version's reference (unknown version, features or shapes) are
        rejected whole, with the reason logged; closed windows are scored.
        The batch is on disk when this returns; with `sync=False` once
        `sync()` has returned (a call of many batches waits once)."""
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
        # The source is the version's model line: a newer version supersedes an older one only on its own line.
        if rows:
            self.incidents.record_line(model_version, source)
        record = (
            None
            if self._state is None or not rows
            else {
                "op": "log",
                "model_version": model_version,
                "store_ids": strings_to_list(store_ids),
                "medication_ids": strings_to_list(medication_ids),
                "rows": batch.to_dict(),
            }
        )
        with self._lock:
            written = self._journal(record)
            closed = self._add_rows(model_version, reference, batch, store_ids, medication_ids)
        if sync:
            self._sync(written)
        ROWS_INGESTED.labels("accepted").inc(rows)
        outcome.accepted = rows
        for window in closed:
            report, raised = self._score_closed(
                window, reference if window.model_version == model_version else self.reference(window.model_version)
            )
            outcome.reports.append(report)
            outcome.alerts.extend(raised)
        if closed:
            self._checkpoint()
        self._compact_if_due()
        return outcome

    def _add_rows(
        self,
        model_version: int,
        reference: ReferenceProfile,
        batch: Batch,
        store_ids: np.ndarray,
        medication_ids: np.ndarray,
    ) -> list[Window]:
        """Keep a batch's predictions for their actuals and window its rows;
        the windows it closes (held for scoring). Under the lock."""
        if store_ids.size:
            self.predictions.add(
                model_version, store_ids, medication_ids, batch.event_times_ms, batch.predictions, self._segments(batch)
            )
            self._journaled_rows += int(store_ids.size)
        kinds = self._kinds(reference)
        buffer = self._windows.get(model_version)
        if buffer is None:
            buffer = WindowBuffer(
                model_version,
                kinds,
                self.settings.window_rows,
                int(self.settings.window_seconds * 1000),
                self._first_sequence.get(model_version, 1),
            )
        elif buffer.kinds != kinds:  # the features windowed changed (--ignore-features) since it opened
            buffer = buffer.with_kinds(kinds)
        self._windows[model_version] = buffer
        closed = list(buffer.add(batch if set(batch.features) == set(kinds) else batch.select(kinds), self._now_ms()))
        if len(batch):
            # An older version's window of an earlier slot is done: a replaced version logs
            # no more rows, and a batch run logs its rows at one instant.
            slot = int(batch.event_times_ms.min()) // buffer.slot_ms
            for older in sorted(v for v in self._windows if v < model_version):
                retired = self._windows[older]
                if retired.slot is not None and retired.slot < slot and (window := retired.close()) is not None:
                    closed.append(window)
                    OPEN_WINDOW_ROWS.labels(str(older)).set(0)
        for window in closed:
            self._closing[window.window_id] = window
        OPEN_WINDOW_ROWS.labels(str(model_version)).set(buffer.rows)
        return closed

    def reject(self, model_version: int, rows: int, source: str, reason: str) -> None:
        """Count and log a batch of prediction logs that cannot be used."""
        log.warning("prediction logs rejected", model_version=model_version, rows=rows, source=source, reason=reason)
        ROWS_INGESTED.labels("rejected").inc(rows)

    def _batch(
        self,
        reference: ReferenceProfile,
        event_ms: np.ndarray,
        features: Mapping[str, np.ndarray],
        predictions: np.ndarray,
        store_ids: np.ndarray,
        medication_ids: np.ndarray,
    ) -> Batch:
        unknown = sorted(set(features) - set(reference.features))
        if unknown:
            raise InvalidArgument(f"features {unknown} are not in the reference profile")
        if store_ids.size and (store_ids.size != predictions.size or medication_ids.size != predictions.size):
            raise InvalidArgument("keys: one store and medication id per prediction")
        columns = {}
        for name, kind in self._kinds(reference).items():
            column = features.get(name)
            if column is None:
                column = np.full(
                    predictions.size, np.nan if kind == NUMERIC else "", dtype=float if kind == NUMERIC else object
                )
            elif kind == NUMERIC and column.dtype.kind not in "fiu":
                raise InvalidArgument(f"feature {name} is numeric in the reference but was sent as strings")
            elif kind == CATEGORICAL and column.dtype.kind in "fiu":
                raise InvalidArgument(f"feature {name} is categorical in the reference but was sent as numbers")
            columns[name] = column
        if event_ms.size != predictions.size:
            raise InvalidArgument(f"event_times_unix_ms: {event_ms.size} for {predictions.size} predictions")
        return Batch(columns, predictions.astype(float), event_ms.astype(np.int64))

    def _segments(self, batch: Batch) -> np.ndarray | None:
        """Each row's segment (the column `segments.by` names), if the batch holds it."""
        by = self.settings.segments.by
        return batch.features.get(by) if by else None

    def _kinds(self, reference: ReferenceProfile) -> dict[str, str]:
        """The columns windowed: those scored, and those naming a row's
        stratum (a weekday is not scored, but says which reference applies)."""
        return {
            n: reference.kind(n)
            for n in reference.features
            if n not in self.settings.ignore_features or n in reference.strata_by
        }

    def flush(self, model_version: int) -> DriftReport | None:
        """Close and score a version's open window now (e.g. at the end of a day's batch)."""
        reference = self.reference(model_version)
        with self._lock:
            buffer = self._windows.get(model_version)
            if buffer is None or buffer.rows == 0:
                return None
            written = self._journal({"op": "flush", "model_version": model_version})
            window = buffer.close()
            self._closing[window.window_id] = window
            OPEN_WINDOW_ROWS.labels(str(model_version)).set(0)
        self._sync(written)
        report = self._score_closed(window, reference)[0]
        self._checkpoint()
        return report

    def _score_closed(self, window: Window, reference: ReferenceProfile) -> tuple[DriftReport, list[Alert]]:
        """Score a closed window, keep its report, observe its alerts and
        incidents. The report is the mark that a window was scored: after a
        crash, closed windows without one are scored on start."""
        report = self._report(window, reference)
        self.reports.add(report)
        with self._lock:
            self._closing.pop(window.window_id, None)
        WINDOWS_SCORED.labels(report.verdict).inc()
        log.info(
            "window scored",
            model_version=window.model_version,
            window_id=window.window_id,
            rows=report.current_rows,
            verdict=report.verdict,
        )
        raised = self._alerts_for(report)
        self._incidents_for(report, window, reference)
        return report, raised

    def _report(self, window: Window, reference: ReferenceProfile) -> DriftReport:
        rows = window.rows
        scores = score(
            self._like_for_like(window.model_version, reference, rows.features),
            rows.features,
            rows.predictions if reference.prediction else None,
            self.settings.thresholds,
            self.settings.ignore_features,
        )
        return DriftReport.from_scores(
            uuid.uuid4().hex,
            window.model_version,
            window.window_id,
            window.start_ms,
            window.end_ms,
            reference.rows,
            scores,
            self._now_ms(),
            estimate=self._estimate(window, reference),
        )

    def _estimate(self, window: Window, reference: ReferenceProfile) -> tuple[float, float] | None:
        """The window's MAE estimated from its inputs by the version's error
        estimator, with the band's upper bound at the window's forecast level;
        None without an estimator, the columns it reads or a forecast above zero."""
        estimator = reference.error_estimator
        if estimator is None or window.rows.predictions.size == 0:
            return None
        upper = estimator.band(window.rows.predictions)
        if upper is None:
            return None
        try:
            estimated = float(estimator.estimate(window.rows.features, window.rows.predictions).mean())
        except InvalidArgument as exc:
            log.warning("error not estimated", model_version=window.model_version, reason=exc.message)
            return None
        return estimated, upper

    def _like_for_like(
        self, model_version: int, reference: ReferenceProfile, features: Mapping[str, np.ndarray]
    ) -> ReferenceProfile:
        """The reference on the window's population: the strata (region,
        weekday) its rows belong to, in the window's proportions (cached per
        version and mix: daily windows of a steady chain repeat seven)."""
        if not reference.strata or any(name not in features for name in reference.strata_by):
            return reference
        keys, counts = np.unique(stratum_keys(features, reference.strata_by, reference.categorical), return_counts=True)
        mix = frozenset(zip(keys.tolist(), counts.tolist(), strict=True))
        cache_key = (model_version, mix)
        with self._lock:
            cached = self._strata_cache.get(cache_key)
        if cached is None:
            cached = reference.for_strata(dict(mix))
            with self._lock:
                if len(self._strata_cache) >= _STRATA_CACHE:
                    self._strata_cache.pop(next(iter(self._strata_cache)))
                self._strata_cache[cache_key] = cached
        return cached

    def _alerts_for(self, report: DriftReport) -> list[Alert]:
        results = [*report.features, *([report.prediction] if report.prediction else [])]
        if all(r.verdict == INSUFFICIENT_DATA for r in results):
            return []  # nothing was judged: neither a firing nor a clean window
        drifted = [r for r in report.features if r.verdict == DRIFT]
        quality = [r for r in results if r.verdict == DATA_QUALITY]
        prediction = [r for r in [report.prediction] if r is not None and r.verdict == DRIFT]
        raised = []
        for kind, fired in (
            (alert_kinds.DATA_DRIFT, drifted),
            (alert_kinds.DATA_QUALITY, quality),
            (alert_kinds.PREDICTION_DRIFT, prediction),
        ):
            alert = self.alerts.observe(
                report.model_version,
                kind,
                {r.feature: r.reason for r in fired},
                report_id=report.report_id,
                data_ms=report.window_end_ms,
                now_ms=self._now_ms(),
            )
            if alert is not None:
                raised.append(self._raised(alert))
        return raised

    def _incidents_for(self, report: DriftReport, window: Window, reference: ReferenceProfile) -> None:
        """Feed a scored window to the incident book: input and prediction
        drift as one kind (the outputs move with the inputs), data quality
        apart, each with its evidence. A window of the newest version of its
        line so far supersedes the line's older versions."""
        for incident in self.incidents.supersede(window.model_version, self._now_ms()):
            INCIDENTS.labels(incident.kind, "handed_over").inc()
        results = [*report.features, *([report.prediction] if report.prediction else [])]
        if all(r.verdict == INSUFFICIENT_DATA for r in results):
            return
        compared = self._like_for_like(window.model_version, reference, window.rows.features)
        columns = {**window.rows.features, PREDICTION: window.rows.predictions}
        where = WindowRef(window.window_id, window.start_ms, window.end_ms)
        thresholds = self.settings.thresholds
        # A unit change is broken data, not a changed world: it pages and retrains nothing.
        units = {r.feature: unit_change(r, thresholds) for r in results if r.verdict == DRIFT}
        quality = [r for r in results if r.verdict == DATA_QUALITY or units.get(r.feature)]
        drift = [r for r in results if r.verdict == DRIFT and not units.get(r.feature)]
        # Data quality first: drift its broken columns cause (the predictions too) joins its incident.
        for kind, fired in ((incident_kinds.DATA_QUALITY, quality), (incident_kinds.DATA_DRIFT, drift)):
            firing = Firing(
                {r.feature: units.get(r.feature) or r.reason for r in fired},
                {
                    r.feature: feature_evidence(r, _column_profile(compared, r.feature), columns.get(r.feature))
                    for r in fired
                },
                frozenset(
                    r.feature
                    for r in fired
                    if kind == incident_kinds.DATA_DRIFT and not _major(r, thresholds, self.settings.incident_effect)
                ),
            )
            for incident in self.incidents.observe(window.model_version, kind, firing, where, self._now_ms()):
                self._opened(incident)
        performance = self._estimated_error(report, reference, window.rows.predictions)
        if performance is not None:
            for incident in self.incidents.observe(
                window.model_version, incident_kinds.PERFORMANCE, performance, where, self._now_ms()
            ):
                self._opened(incident)

    def _estimated_error(
        self, report: DriftReport, reference: ReferenceProfile, predictions: np.ndarray
    ) -> Firing | None:
        """The window's estimated MAE (on its report) judged against the band
        calibrated on the version's holdout days at the level of the window's
        `predictions`: a firing when above it, a clean window when not; None
        when the window has no estimate."""
        estimator = reference.error_estimator
        if estimator is None or report.estimated_mae is None or report.estimated_mae_upper is None:
            return None
        estimated, upper = report.estimated_mae, report.estimated_mae_upper
        ESTIMATED_ERROR.labels(str(report.model_version)).set(estimated)
        ESTIMATED_ERROR_UPPER.labels(str(report.model_version)).set(upper)
        if estimated <= upper:
            return Firing({})
        level = forecast_level(predictions)  # above zero: the window has a band
        reason = (
            f"estimated MAE {estimated:.3f} above the band {upper:.3f}: {estimated / level:.3f} of the "
            f"mean forecast {level:.3f} (holdout days {estimator.daily_mean:.3f} ± {estimator.daily_std:.3f})"
        )
        evidence = {
            "estimated_mae": estimated,
            "upper": upper,
            "mean_forecast": level,
            "relative_error": estimated / level,
            "relative_upper": estimator.upper,
            "holdout_daily_mean": estimator.daily_mean,
            "holdout_daily_std": estimator.daily_std,
            "calibration": estimator.calibration,
        }
        return Firing({ESTIMATED_ERROR_FEATURE: reason}, {ESTIMATED_ERROR_FEATURE: evidence})

    def _opened(self, incident: Incident) -> None:
        """Count a new incident and hand a retraining cause to the hook;
        data-quality incidents page (through the notifier) and retrain nothing:
        a model trained on broken data learns the break."""
        INCIDENTS.labels(incident.kind, "opened").inc()
        if self._on_incident is None or incident.kind not in incident_kinds.RETRAINING_KINDS:
            return
        try:
            job_id = self._on_incident(incident)
        except RxcastError as exc:
            log.warning("retraining trigger failed", incident_id=incident.incident_id, reason=exc.message)
            return
        if job_id:
            self.incidents.set_retrain_job(incident.incident_id, job_id, self._now_ms())

    def _raised(self, alert: Alert) -> Alert:
        ALERTS_RAISED.labels(alert.kind).inc()
        log.warning(
            "drift alert",
            alert_id=alert.alert_id,
            kind=alert.kind,
            model_version=alert.model_version,
            features=alert.features,
            reason=alert.reason,
        )
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
            raise NotFound(f"window_id {quote(window_id)}: no report kept for it (model_version {model_version})")
        with self._lock:
            buffer = self._windows.get(model_version)
            if buffer is None or buffer.rows == 0:
                raise NotFound(f"model_version {model_version}: the open window has no rows")
            window = buffer.peek(self._now_ms())
        return self._report(window, reference)

    def score_data(
        self, model_version: int, features: Mapping[str, np.ndarray], predictions: np.ndarray | None
    ) -> DriftReport:
        reference = self.reference(model_version)
        if not features and (predictions is None or predictions.size == 0):
            raise InvalidArgument("features: no data to score")
        scores = score(reference, features, predictions, self.settings.thresholds, self.settings.ignore_features)
        return DriftReport.from_scores(
            uuid.uuid4().hex, model_version, "", 0, 0, reference.rows, scores, self._now_ms()
        )

    # ------------------------------------------------------------ actuals

    def log_actuals(
        self,
        store_ids: np.ndarray,
        medication_ids: np.ndarray,
        event_ms: np.ndarray,
        actuals: np.ndarray,
        sync: bool = True,
    ) -> ActualsOutcome:
        """Match actuals to logged predictions and feed their errors to the
        versions' monitors; on disk when this returns (see log_predictions)."""
        n = actuals.size
        if store_ids.size != n or medication_ids.size != n or event_ms.size != n:
            raise InvalidArgument(
                f"actuals: keys ({store_ids.size}, {medication_ids.size}), event times "
                f"({event_ms.size}) and actuals ({n}) must be of one length"
            )
        outcome = ActualsOutcome()
        if n == 0:
            return outcome
        keys = entity_time_keys(store_ids, medication_ids, event_ms)
        observed: list[Alert] = []
        written = None
        with self._lock:  # matches, monitors and their journal record in one order
            found, versions, predictions, segments = self.predictions.match_keys(keys)
            losses = np.abs(forecast_residuals(actuals, predictions))
            fed = np.unique(versions[found]).tolist()
            for version in fed:
                mine = found & (versions == version)
                observed.extend(self._feed_errors(int(version), losses[mine], int(event_ms[mine].max())))
            lines = self._feed_segments(found, versions, segments, event_ms, losses)
            if found.any():
                written = self._journal(
                    {
                        "op": "actuals",
                        "matched": uints_to_text(keys[found]),
                        "monitors": {str(v): self._monitors[v].to_dict() for v in fed},
                        "concept_clean": {
                            str(v): list(self._concept_clean[v]) for v in fed if v in self._concept_clean
                        },
                        "segments": [self.segments.to_dict(line) for line in lines],
                    }
                )
        if sync:
            self._sync(written)
        outcome.matched = int(found.sum())
        outcome.unmatched = int(n - outcome.matched)
        ACTUALS.labels("matched").inc(outcome.matched)
        ACTUALS.labels("unmatched").inc(outcome.unmatched)
        outcome.alerts = [self._raised(alert) for alert in observed]
        with self._lock:
            opened, self._concept_opened = self._concept_opened, []
        for incident in opened:
            self._opened(incident)
        return outcome

    def _feed_errors(self, model_version: int, losses: np.ndarray, data_ms: int) -> list[Alert]:
        """Feed a version's losses to its monitor; the alerts opened (not yet
        announced: `_raised` does that outside the lock). Under the lock."""
        monitor = self._monitors.get(model_version)
        if monitor is None:
            reference = self._references.get(model_version)
            errors = None
            if reference is not None and reference.error is not None and reference.error.count > 0:
                if reference.error_scale == POISSON_SCALE:
                    errors = reference.error.sketch
                else:  # not the losses' scale: the stream's first losses stand in for the holdout
                    log.warning(
                        "holdout errors not on the served losses' scale",
                        model_version=model_version,
                        error_scale=reference.error_scale,
                    )
            monitor = ErrorStreamMonitor(self.settings.detectors, errors, seed=model_version)
            self._monitors[model_version] = monitor
        before, level_before = monitor.samples, monitor.level_total
        detections = monitor.update(losses)
        for quantity, value in monitor.state().items():
            DETECTOR_STATE.labels(str(model_version), quantity).set(value)
        fed, level = monitor.samples - before, monitor.level_total - level_before
        if not detections:
            self._concept_steps(model_version, fed, level, monitor.floor)
            return []
        self._concept_clean[model_version] = (0, 0.0)
        reason = "; ".join(d.describe() for d in detections)
        self._concept_opened.extend(
            self.incidents.observe(
                model_version,
                incident_kinds.CONCEPT_DRIFT,
                Firing({ERRORS: reason}, {ERRORS: {"detections": [dataclasses.asdict(d) for d in detections]}}),
                WindowRef(f"errors-v{model_version}-{monitor.samples}", data_ms, data_ms),
                self._now_ms(),
                confirm_windows=1,  # the monitor's detectors confirm a rise already
                judged=_WHOLE_STREAM,
            )
        )
        alert = self.alerts.observe(
            model_version,
            alert_kinds.CONCEPT_DRIFT,
            {PREDICTION: "; ".join(d.describe() for d in detections)},
            detector=detections[0].detector,
            data_ms=data_ms,
            now_ms=self._now_ms(),
        )
        return [] if alert is None else [alert]

    def _feed_segments(
        self, found: np.ndarray, versions: np.ndarray, segments: np.ndarray, event_ms: np.ndarray, losses: np.ndarray
    ) -> list[str]:
        """Feed matched losses to their lines' segments and hand each judged
        day to the incident book; the lines fed. Under the lock."""
        if not self.settings.segments.by:
            return []
        fed_versions, row_version = np.unique(np.where(found, versions, 0), return_inverse=True)
        line_of = [self.incidents.line(int(v)) if v else "" for v in fed_versions.tolist()]
        row_lines = np.array(line_of, dtype=object)[row_version.reshape(-1)]
        fed = sorted({line for line, v in zip(line_of, fed_versions.tolist(), strict=True) if v})
        for line in fed:
            mine = found & (row_lines == line)
            days = self.segments.update(line, segments[mine], event_ms[mine], losses[mine], versions[mine])
            for day in sorted({d.day for d in days}):
                self._segment_day(line, [d for d in days if d.day == day])
        return fed

    def _segment_day(self, line: str, days: list[SegmentDay]) -> None:
        """One judged day of a line's segments: the rises that fire are a
        concept-drift cause of the line's serving version (the cause belongs to
        the line: the version that made the forecasts was refitted since)."""
        by = self.settings.segments.by
        for d in days:
            SEGMENT_ERROR.labels(line, d.segment).set(d.mean / d.baseline if d.baseline > 0 else 0.0)
        fires = [d for d in days if d.fires]
        version = self.incidents.serving(line) or max(d.model_version for d in days)
        first = days[0]
        self._concept_opened.extend(
            self.incidents.observe(
                version,
                incident_kinds.CONCEPT_DRIFT,
                Firing(
                    {segment_feature(d.segment): d.describe(by) for d in fires},
                    {segment_feature(d.segment): {"segment_by": by, **d.evidence()} for d in fires},
                ),
                WindowRef(f"errors-{line or 'default'}-day{first.day}", first.start_ms, first.start_ms + DAY_MS - 1),
                self._now_ms(),
                confirm_windows=1,  # the days in a row confirmed the rise already
                judged=frozenset(segment_feature(d.segment) for d in days),
            )
        )

    def observe_year_over_year(self, day: int, judged: list[SeasonalDay]) -> list[Incident]:
        """One judged day of the segments' inputs against a year before
        (rxcast.drift.seasonal), handed to every line's serving version: the
        change is the feed's, each line's model is retrained and cleared on its
        own (as a data-drift cause both lines show). The incidents it opened.

        Only the segments that fire are judged for the book: a day back within
        the ratio is no clean window. The ratio returns to 1 as a lasting change
        enters the trend it is divided by (four weeks), whether or not the
        line's model learned it; the line's own windows say when it has."""
        s = self.settings.seasonal
        for d in judged:
            YEAR_OVER_YEAR.labels(d.segment).set(d.ratio)
        fires = [d for d in judged if d.fires]
        if not fires:
            return []
        firing = Firing(
            {yoy_feature(d.segment): d.describe(s.field, s.by, s.year_days) for d in fires},
            {yoy_feature(d.segment): {"segment_by": s.by, "field": s.field, **d.evidence(s)} for d in fires},
        )
        segments = frozenset(firing.reasons)
        opened = []
        with self._lock:
            for line, version in sorted(self.incidents.serving_lines().items()):
                start = fires[0].start_ms
                window = WindowRef(f"yoy-{line or 'default'}-day{day}", start, start + DAY_MS - 1)
                opened += self.incidents.observe(
                    version,
                    incident_kinds.DATA_DRIFT,
                    firing,
                    window,
                    self._now_ms(),
                    confirm_windows=1,  # the days in a row confirmed it already
                    judged=segments,
                )
        for incident in opened:
            self._opened(incident)
        return opened

    def _concept_steps(self, model_version: int, fed: int, level: float, floor: float) -> None:
        """Judge the errors since the last detection in steps of
        concept_clean_samples / clean_windows. The detectors adapt to a new
        error level after they fire, so silence alone does not end an episode:
        a step counts as clean only when its mean scaled loss is back below the floor;
        a step still above it keeps the open episode open."""
        step = max(1, self.settings.concept_clean_samples // self.settings.clean_windows)
        count, total = self._concept_clean.get(model_version, (0, 0.0))
        count, total = count + fed, total + level
        steps = count // step
        if steps:
            mean = total / count
            if mean < floor:
                where = WindowRef(f"errors-v{model_version}", 0, 0)
                for _ in range(steps):
                    self.alerts.observe(model_version, alert_kinds.CONCEPT_DRIFT, {})
                    self.incidents.observe(
                        model_version, incident_kinds.CONCEPT_DRIFT, Firing({}), where, self._now_ms(), 1, _WHOLE_STREAM
                    )
            elif self.alerts.open_episodes(model_version, alert_kinds.CONCEPT_DRIFT):
                self.alerts.observe(
                    model_version,
                    alert_kinds.CONCEPT_DRIFT,
                    {PREDICTION: f"error level {mean:.3f} still above {floor:.3f}"},
                )
            count, total = count - steps * step, total - mean * steps * step
        self._concept_clean[model_version] = (count, total)

    # ------------------------------------------------------------ lists and watching

    def windows_awaiting_scoring(self) -> int:
        """Closed windows not scored yet."""
        with self._lock:
            return len(self._closing)

    def list_reports(self, model_version: int = 0, limit: int = 0) -> list[DriftReport]:
        if model_version < 0 or limit < 0:
            raise InvalidArgument("model_version and limit must be >= 0")
        return self.reports.list(model_version, limit or 50)

    def list_incidents(self, model_version: int = 0, open_only: bool = False, limit: int = 0) -> list[Incident]:
        if model_version < 0 or limit < 0:
            raise InvalidArgument("model_version and limit must be >= 0")
        return self.incidents.list(model_version, open_only, limit or 100)

    def get_incident(self, incident_id: str) -> Incident:
        if not incident_id:
            raise InvalidArgument("incident_id: is empty")
        return self.incidents.get(incident_id)

    def acknowledge_incident(self, incident_id: str, by: str, note: str = "") -> Incident:
        if not incident_id:
            raise InvalidArgument("incident_id: is empty")
        return self.incidents.acknowledge(incident_id, by, note, self._now_ms())

    def watch_incidents(self, after_revision: int, active: Callable[[], bool]) -> Iterator[Incident]:
        if after_revision < -1:
            raise InvalidArgument(f"after_revision: must be >= -1, got {after_revision}")
        return self.incidents.watch(after_revision, active)

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
        """End watchers; checkpoint everything, so the next start replays nothing."""
        self.alerts.close()
        self.incidents.close()
        if self._state is None:
            return
        with self._lock:
            checkpoint = self._capture()
            predictions = None if checkpoint is None else self._snapshot_predictions()
        self._write_checkpoint(checkpoint)
        if predictions is not None:
            self._write_predictions(predictions, checkpoint[0])

    # ------------------------------------------------------------ state on disk

    def _journal(self, record: dict[str, Any] | None) -> int | None:
        """Write a record before the change it describes is made (under the
        lock, so the journal's order is the changes' order); `_sync` what
        it returns before the call returns. A call whose record cannot be
        written fails, and changes nothing."""
        if self._state is None or record is None:
            return None
        try:
            return self._state.append(record)
        except OSError as exc:
            raise Unavailable(f"drift state: cannot write the journal: {exc}") from None

    def sync(self) -> None:
        """Wait until everything logged so far is on disk: a call that logged
        with `sync=False` is acknowledged after this."""
        if self._state is not None:
            self._sync(self._state.written)

    def _sync(self, written: int | None) -> None:
        """Wait until a journal record is on disk: what makes a call
        acknowledged. Outside the lock: concurrent calls share the wait."""
        if written is None:
            return
        try:
            self._state.sync(written)
        except OSError as exc:
            raise Unavailable(f"drift state: the journal did not reach the disk: {exc}") from None

    def _checkpoint(self) -> None:
        """Checkpoint the engine after windows closed and were scored: the
        journal before it is then needed only for the prediction log. (A
        window being scored by another call is in the checkpoint as closing.)"""
        with self._lock:
            checkpoint = self._capture()
        self._write_checkpoint(checkpoint)

    def _capture(self) -> tuple[int, dict[str, Any]] | None:
        """Start a journal segment and take the engine checkpoint the segment
        follows (under the lock; windows are copied, encoded outside it); None
        without a data dir or when no segment could be started (the current
        one holds on, and the next close retries)."""
        if self._state is None:
            return None
        try:
            segment = self._state.rotate()
        except OSError as exc:
            log.error("journal segment not started; checkpoint skipped", error=str(exc))
            return None
        return segment, {
            "windows": [buffer.copy() for buffer in self._windows.values()],
            "closing": list(self._closing.values()),
            "monitors": {str(v): monitor.to_dict() for v, monitor in self._monitors.items()},
            "concept_clean": {str(v): list(clean) for v, clean in self._concept_clean.items()},
            "segments": self.segments.to_dict(),
        }

    def _write_checkpoint(self, checkpoint: tuple[int, dict[str, Any]] | None) -> None:
        if checkpoint is None:
            return
        segment, captured = checkpoint
        doc = {
            **captured,
            "windows": [buffer.to_dict() for buffer in captured["windows"]],
            "closing": [window.to_dict() for window in captured["closing"]],
        }
        try:
            self._state.write_engine(doc, segment)
        except OSError as exc:  # the journal still holds everything since the last one
            log.error("engine checkpoint not written", error=str(exc))

    def _snapshot_predictions(self) -> Snapshot:
        """The prediction log to save, taken with the checkpoint's segment (under the lock)."""
        snapshot = self.predictions.snapshot()
        self._journaled_rows, self._snapshot_rows = 0, snapshot.rows
        return snapshot

    def _write_predictions(self, snapshot: Snapshot, segment: int) -> None:
        try:
            self._state.write_predictions(snapshot.meta(), snapshot.arrays(), segment)
        except OSError as exc:
            log.error("prediction-log snapshot not written", error=str(exc))

    def _compact_if_due(self) -> None:
        """Snapshot the prediction log once the journal holds as many logged
        rows again as the last snapshot did (at least COMPACT_MIN_ROWS), so the
        journal and the time to replay it stay bounded and each row is
        rewritten a bounded number of times; the writing happens outside the lock."""
        with self._lock:
            if (
                self._state is None
                or self._compacting
                or self._journaled_rows < max(COMPACT_MIN_ROWS, self._snapshot_rows)
            ):
                return
            checkpoint = self._capture()
            if checkpoint is None:
                return
            predictions = self._snapshot_predictions()
            self._compacting = True
        try:
            self._write_checkpoint(checkpoint)
            self._write_predictions(predictions, checkpoint[0])
        finally:
            self._compacting = False

    def _recover(self) -> None:
        """Restore windows, monitors and logged predictions from the last
        checkpoints and the journal after them; score windows a crash closed
        before their report; checkpoint what was replayed."""
        legacy = self.data_dir / "state.pkl"
        if legacy.exists():
            quarantine(legacy, "pickled state of an earlier release: not read (the service reads no pickle)")
        found = self._state.recover()
        engine_lost = found.engine_lost
        if found.engine is not None:
            try:
                self._restore_engine(found.engine)
            except (StateError, ValueError, TypeError, KeyError) as exc:
                quarantine(self._state.engine_path, f"unreadable content: {exc}")
                self._windows, self._closing, self._monitors, self._concept_clean = {}, {}, {}, {}
                self.segments = SegmentErrors(self.settings.segments)
                engine_lost = True
        predictions_from = found.predictions_from
        if found.predictions is not None:
            try:
                self.predictions.restore(*found.predictions)
                self._snapshot_rows = len(self.predictions)
            except StateError as exc:
                quarantine(self._state.predictions_path, f"unreadable content: {exc}")
                predictions_from = 0
        replayed = 0
        for segment, records in found.segments:
            windows = not engine_lost and segment >= found.engine_from
            monitors = engine_lost or segment >= found.engine_from
            for index, record in enumerate(records):
                try:
                    self._replay(record, windows, monitors, segment >= predictions_from)
                    replayed += 1
                except (StateError, ValueError, TypeError, KeyError, RxcastError) as exc:
                    log.error(
                        "journal record not applied",
                        segment=segment,
                        record=index + 1,
                        error=getattr(exc, "message", str(exc)),
                    )
                    self._state.damaged.add(segment)
        self._score_unscored()
        log.info(
            "drift state restored",
            open_windows=sum(b.rows for b in self._windows.values()),
            monitors=len(self._monitors),
            logged_predictions=len(self.predictions),
            replayed_records=replayed,
            engine_checkpoint=found.engine is not None and not engine_lost,
        )
        if replayed or self._state.damaged or engine_lost:
            with self._lock:
                checkpoint = self._capture()
                predictions = None if checkpoint is None else self._snapshot_predictions()
            self._write_checkpoint(checkpoint)
            if predictions is not None:
                self._write_predictions(predictions, checkpoint[0])

    def _restore_engine(self, doc: dict[str, Any]) -> None:
        doc = require(doc, ("windows", "closing", "monitors", "concept_clean"), "engine checkpoint")
        slot_ms = int(self.settings.window_seconds * 1000)
        windows = {}
        for item in doc["windows"]:
            buffer = WindowBuffer.from_dict(item, self.settings.window_rows, slot_ms)
            windows[buffer.model_version] = buffer
        closing = {w.window_id: w for w in map(Window.from_dict, doc["closing"])}
        monitors = {int(v): self._restored_monitor(int(v), m) for v, m in doc["monitors"].items()}
        concept_clean = {int(v): _clean_pair(c) for v, c in doc["concept_clean"].items()}
        self._windows, self._closing, self._monitors, self._concept_clean = windows, closing, monitors, concept_clean
        self.segments = SegmentErrors(self.settings.segments)
        if "segments" in doc:  # checkpoints before segments hold none
            self.segments.restore(doc["segments"])
        for version, buffer in windows.items():
            OPEN_WINDOW_ROWS.labels(str(version)).set(buffer.rows)

    def _restored_monitor(self, model_version: int, saved: Any) -> ErrorStreamMonitor:
        """A saved monitor, unless it judges served losses against holdout
        errors on another scale (saved by a release that did not read the
        profile's `error_scale`): that one starts over on its first served losses."""
        monitor = ErrorStreamMonitor.from_dict(saved, self.settings.detectors)
        reference = self._references.get(model_version)
        judged_against = monitor.reference_losses
        if (
            judged_against is None
            or reference is None
            or reference.error_scale == POISSON_SCALE
            or reference.error is None
            or not np.array_equal(judged_against, _losses(reference.error.sketch))
        ):
            return monitor
        log.warning(
            "monitor judged served losses against holdout errors on another scale: it starts over",
            model_version=model_version,
            error_scale=reference.error_scale,
        )
        return ErrorStreamMonitor(self.settings.detectors, None, seed=model_version)

    def _replay(self, record: Any, windows: bool, monitors: bool, predictions: bool) -> None:
        """Apply a journal record again: to the windows and monitors when the
        engine checkpoint does not hold it, to the prediction log when its
        snapshot does not."""
        op = require(record, ("op",), "journal record")["op"]
        if op == "log":
            require(record, ("model_version", "store_ids", "medication_ids", "rows"), "log record")
            version = integer(record["model_version"], "log record.model_version")
            batch = Batch.from_dict(record["rows"])
            stores = list_to_strings(record["store_ids"], "log record.store_ids")
            medications = list_to_strings(record["medication_ids"], "log record.medication_ids")
            if stores.size and (stores.size != len(batch) or medications.size != len(batch)):
                raise StateError("log record: one store and medication id per row")
            if not predictions:
                stores = medications = np.zeros(0, dtype=object)
            reference = self._replay_reference(version) if windows else None
            if reference is not None:
                self._add_rows(version, reference, batch, stores, medications)
            elif stores.size:
                self.predictions.add(
                    version, stores, medications, batch.event_times_ms, batch.predictions, self._segments(batch)
                )
                self._journaled_rows += int(stores.size)
        elif op == "flush":
            version = integer(require(record, ("model_version",), "flush record")["model_version"], "flush record")
            buffer = self._windows.get(version)
            window = buffer.close() if windows and buffer is not None else None
            if window is not None:
                self._closing[window.window_id] = window
        elif op == "actuals":
            require(record, ("matched", "monitors", "concept_clean"), "actuals record")
            if predictions:
                self.predictions.mark_matched(text_to_uints(record["matched"], "actuals record.matched"))
            if monitors:
                for version, monitor in record["monitors"].items():
                    self._monitors[int(version)] = self._restored_monitor(int(version), monitor)
                for version, clean in record["concept_clean"].items():
                    self._concept_clean[int(version)] = _clean_pair(clean)
                for line in record.get("segments", []):
                    self.segments.restore(line)
        else:
            raise StateError(f"journal record: unknown op {op!r}")

    def _replay_reference(self, model_version: int) -> ReferenceProfile | None:
        try:
            return self.reference(model_version)
        except RxcastError as exc:  # its file was set aside and the trainer cannot give it now
            log.error("logged rows not windowed again: no reference", model_version=model_version, reason=exc.message)
            return None

    def _score_unscored(self) -> None:
        """Score the windows a crash closed before their report; keep window
        ids unique after state that was set aside (a new window never takes
        the id of a reported one)."""
        reported: dict[int, set[str]] = {}
        for report in self.reports.list(0, self.settings.max_reports):
            reported.setdefault(report.model_version, set()).add(report.window_id)
        for window in list(self._closing.values()):
            if window.window_id in reported.get(window.model_version, set()):
                self._closing.pop(window.window_id)
                continue
            try:
                reference = self.reference(window.model_version)
            except RxcastError as exc:
                log.error("closed window not scored: no reference", window_id=window.window_id, reason=exc.message)
                self._closing.pop(window.window_id)
                continue
            self._score_closed(window, reference)
        for version, ids in reported.items():
            used = max((int(w.rsplit("-w", 1)[-1]) for w in ids if w.rsplit("-w", 1)[-1].isdigit()), default=0)
            self._first_sequence[version] = used + 1
            buffer = self._windows.get(version)
            if buffer is not None and buffer.sequence <= used:
                log.warning(
                    "open window renumbered after the windows reported",
                    model_version=version,
                    was=buffer.sequence,
                    now=used + 1,
                )
                buffer.sequence = used + 1


def _major(result: FeatureResult, thresholds: Thresholds, factor: float) -> bool:
    """Whether a drifted feature moved enough to start an incident on its
    own: a structural change (values outside the reference's range,
    categories it never saw, a change of scale beyond the ratio squared) or a
    distribution shift `factor` times its effect floor. A winter's rise of
    demand that a model trained in the autumn follows moves aggregates just
    past the floors for weeks; that is for the error (concept drift, the
    estimated error) to judge, not a page."""
    fired = {s.name: s for s in result.signals if s.fired}
    if "out_of_range" in fired or "unseen_mass" in fired:
        return True
    ratio = fired.get("mean_ratio")
    if ratio is not None and not thresholds.mean_ratio**-2 < ratio.value < thresholds.mean_ratio**2:
        return True
    floors = (
        {"js": thresholds.categorical_js}
        if result.kind == CATEGORICAL
        else {"wasserstein": thresholds.wasserstein, "psi": thresholds.psi, "js": thresholds.js}
    )
    return any(name in fired and fired[name].value >= factor * floor for name, floor in floors.items())


def unit_change(result: FeatureResult, thresholds: Thresholds) -> str:
    """The reason a drifted numeric feature reads as a unit change (an
    upstream system reporting in other units), or "": its mean and its
    spread both scaled beyond the ratio squared, in the same direction and
    by about the same factor (within the ratio threshold of each other), as
    multiplying every value by one constant does. Real change moves a
    whole feature's level and spread less, and not in lockstep: a demand
    shock on some medications, stores in a new region."""
    ratios = {s.name: s.value for s in result.signals if s.name in ("mean_ratio", "std_ratio")}
    mean, std = ratios.get("mean_ratio", 1.0), ratios.get("std_ratio", 1.0)
    if result.kind != NUMERIC or mean <= 0 or std <= 0:
        return ""
    beyond = thresholds.mean_ratio**2
    scaled = (mean >= beyond and std >= beyond) or (mean <= 1 / beyond and std <= 1 / beyond)
    if not scaled or max(mean / std, std / mean) > thresholds.mean_ratio:
        return ""
    return f"unit change: values scaled x{mean:.3g} (mean ratio {mean:.3g}, std ratio {std:.3g}); {result.reason}"


def _column_profile(reference: ReferenceProfile, name: str):
    if name == PREDICTION:
        return reference.prediction
    return reference.numeric.get(name) or reference.categorical.get(name)


def _clean_pair(value: Any) -> tuple[int, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise StateError("concept_clean: expected [count, sum]")
    return integer(value[0], "concept_clean.count"), number(value[1], "concept_clean.sum")


def _check_version(model_version: int) -> None:
    if model_version <= 0:
        raise InvalidArgument(f"model_version: must be > 0, got {model_version}")


def _losses(errors: np.ndarray) -> np.ndarray:
    """Errors as a monitor's transform holds them: finite absolute values, sorted."""
    errors = np.abs(np.asarray(errors, dtype=float))
    return np.sort(errors[np.isfinite(errors)])
