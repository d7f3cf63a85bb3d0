"""The drift service's settings (flags and RXCAST_DRIFT_* variables)."""

from __future__ import annotations

import dataclasses

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from rxcast.drift.detectors import DetectorSettings
from rxcast.drift.engine import EngineSettings
from rxcast.drift.scoring import Correction, Thresholds
from rxcast.drift.seasonal import SeasonalSettings
from rxcast.drift.segments import SegmentSettings
from rxcast.runtime.config import GrpcPort, MetricsPort, MinFreeMb, ServerSettings, SettingError, env_variable, flag

_THRESHOLDS = Thresholds()
_DETECTORS = DetectorSettings()
_SEGMENTS = SegmentSettings()
_SEASONAL = SeasonalSettings()


class DriftConfig(ServerSettings):
    """rxcast drift service: data, prediction and concept drift, and alerts."""

    model_config = SettingsConfigDict(env_prefix="RXCAST_DRIFT_")

    port: GrpcPort = 50055
    metrics_port: MetricsPort = 9155
    data_dir: str = Field("data/drift", min_length=1, description="references, reports, alerts and episodes live here")
    min_free_mb: MinFreeMb = 64
    window_rows: int = Field(5000, ge=1, description="a version's window closes at this many rows")
    window_seconds: float = Field(
        86_400.0, gt=0, description="...or when rows of a later event-time slot this long arrive"
    )
    max_reports: int = Field(1000, ge=1, description="drift reports kept")
    clean_windows: int = Field(3, ge=1, description="consecutive clean windows that end a drift episode")
    concept_clean_samples: int = Field(
        10_000, ge=1, description="errors without a detection that end a concept-drift episode"
    )
    max_logged_predictions: int = Field(1_000_000, ge=1, description="logged predictions kept for matching actuals")
    ignore_features: str = Field(
        "day_of_week,day_of_year,week_of_year",
        description="comma-separated features left out of drift scoring: the calendar moves by construction",
    )
    alpha: float = Field(_THRESHOLDS.alpha, gt=0, lt=1, description="level for corrected p-values of drift tests")
    correction: Correction = Field(_THRESHOLDS.correction, description="multiple-testing correction across features")
    min_count: int = Field(_THRESHOLDS.min_count, ge=1, description="fewest current values a feature is tested on")
    wasserstein: float = Field(
        _THRESHOLDS.wasserstein, gt=0, description="effect floor: Wasserstein distance in reference stds"
    )
    psi: float = Field(_THRESHOLDS.psi, gt=0, description="effect floor: population stability index")
    js: float = Field(
        _THRESHOLDS.js, gt=0, le=1, description="effect floor: Jensen-Shannon distance of numeric features (bits)"
    )
    out_of_range: float = Field(
        _THRESHOLDS.out_of_range, gt=0, le=1, description="effect floor: share of values outside the reference range"
    )
    categorical_js: float = Field(
        _THRESHOLDS.categorical_js, gt=0, le=1, description="effect floor: JS distance of categories (bits)"
    )
    unseen_mass: float = Field(
        _THRESHOLDS.unseen_mass, gt=0, le=1, description="share of values in unseen categories that fires"
    )
    null_rate_delta: float = Field(
        _THRESHOLDS.null_rate_delta, gt=0, le=1, description="absolute null-rate change that fires"
    )
    adwin_delta: float = Field(
        _DETECTORS.adwin_delta, gt=0, lt=1, description="ADWIN confidence (default: river's, 0.002)"
    )
    ph_threshold: float = Field(
        _DETECTORS.ph_threshold, gt=0, description="Page-Hinkley alarm level (calibrated default)"
    )
    segment_by: str = Field(
        _SEGMENTS.by,
        description="logged column whose values are segments: each one's errors are judged against its own recent "
        'days too ("" judges none)',
    )
    segment_rise: float = Field(
        _SEGMENTS.rise, gt=0, description="a segment's day rises at this fraction above its recent days' median..."
    )
    segment_z: float = Field(_SEGMENTS.z, gt=0, description="...and this many spreads above it")
    yoy_by: str = Field(
        _SEASONAL.by,
        pattern=r"^(|medication_category|store_region)$",
        description="record attribute (medication_category, store_region) whose values are segments: each one's daily units dispensed is judged against "
        'the same weekday a year before, from the feature service\'s history (needs --feature-address; "" judges none)',
    )
    yoy_ratio: float = Field(
        _SEASONAL.ratio, gt=1, description="a segment's day fires at this ratio to a year before (or its inverse)..."
    )
    yoy_confirm_days: int = Field(_SEASONAL.confirm_days, ge=1, description="...on this many days in a row")
    yoy_min_count: int = Field(
        _SEASONAL.min_count, ge=1, description="fewest records of a segment a day (and its year-ago day) is judged on"
    )
    trainer_address: str = Field("", description="trainer host:port: fetch unknown versions' reference profiles")
    retrain_on_alert: bool = Field(
        False,
        description="deprecated (use --retrain-on-incident): submit a retraining trigger to the trainer for every "
        "new alert (needs --trainer-address)",
    )
    retrain_on_incident: bool = Field(
        False,
        description="submit a retraining trigger to the trainer for every new incident a model can address (not "
        "data quality, which pages); the trainer's policies decide when (needs --trainer-address)",
    )
    confirm_windows: int = Field(
        2, ge=1, description="consecutive windows in which a cause fires before it opens an incident"
    )
    incident_effect: float = Field(
        2.0, ge=1, description="a distribution shift starts an incident only at this many times its effect floor"
    )
    incident_follow_days: float = Field(
        14.0,
        ge=0,
        description="days after an incident's change in which a family starting to fire with it, or a rise of the "
        "error, joins it (event time); later, it is a cause of its own",
    )
    alertmanager_url: str = Field(
        "", description="Alertmanager base URL (http://127.0.0.1:9093): post incidents, firing and resolved"
    )
    alertmanager_resend_seconds: float = Field(
        60.0, gt=0, description="how often open incidents are posted to Alertmanager again"
    )
    retrain_days: int = Field(90, ge=1, description="days of data a drift-triggered training job uses")
    feature_address: str = Field(
        "", description="feature service host:port: collect actuals of logged predictions, judge inputs a year back"
    )
    collect_seconds: float = Field(
        60.0, gt=0, description="how often to ask the feature service for actuals and for days to judge"
    )
    actuals_retry_seconds: float = Field(
        3600.0,
        ge=0,
        description="how long a prediction whose actual was not there yet waits before it is asked for again",
    )

    @model_validator(mode="after")
    def _retrain_needs_a_trainer(self) -> DriftConfig:
        for name in ("retrain_on_alert", "retrain_on_incident"):
            if getattr(self, name) and not self.trainer_address:
                trainer = f"{flag('trainer_address')} or {env_variable(type(self), 'trainer_address')}"
                raise SettingError(name, f"needs a trainer to submit retraining triggers to: set {trainer}")
        return self

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            window_rows=self.window_rows,
            window_seconds=self.window_seconds,
            max_reports=self.max_reports,
            clean_windows=self.clean_windows,
            confirm_windows=self.confirm_windows,
            incident_effect=self.incident_effect,
            incident_follow_days=self.incident_follow_days,
            concept_clean_samples=self.concept_clean_samples,
            max_logged_predictions=self.max_logged_predictions,
            ignore_features=tuple(name.strip() for name in self.ignore_features.split(",") if name.strip()),
            thresholds=dataclasses.replace(
                _THRESHOLDS,
                alpha=self.alpha,
                correction=self.correction,
                min_count=self.min_count,
                wasserstein=self.wasserstein,
                psi=self.psi,
                js=self.js,
                out_of_range=self.out_of_range,
                categorical_js=self.categorical_js,
                unseen_mass=self.unseen_mass,
                null_rate_delta=self.null_rate_delta,
            ),
            detectors=dataclasses.replace(_DETECTORS, adwin_delta=self.adwin_delta, ph_threshold=self.ph_threshold),
            segments=dataclasses.replace(_SEGMENTS, by=self.segment_by, rise=self.segment_rise, z=self.segment_z),
            seasonal=dataclasses.replace(
                _SEASONAL,
                by=self.yoy_by,
                ratio=self.yoy_ratio,
                confirm_days=self.yoy_confirm_days,
                min_count=self.yoy_min_count,
            ),
        )
