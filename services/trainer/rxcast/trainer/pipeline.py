"""One training job, start to end: load, train, evaluate, publish, promote.

Pure orchestration of the domain modules; the job manager runs it on a
worker and relays its progress reports to watchers.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd

from rxcast.model import FeatureEncoder, ModelBundle, ModelManifest
from rxcast.model.bundle import sha256_bytes
from rxcast.model.timebase import day_text
from rxcast.runtime.errors import FailedPrecondition, InvalidArgument, RxcastError
from rxcast.runtime.logs import get_logger
from rxcast.trainer import metrics
from rxcast.trainer.dataset import LoadRequest, TimeSplit, TrainingSet, TrainingSetSource, split_by_time
from rxcast.trainer.distributed import DaskFitter
from rxcast.trainer.evaluation import BASELINE_FEATURE, Evaluation, error_statistics, evaluate
from rxcast.trainer.fit import FittedModel, fit_model, threads_for
from rxcast.trainer.params import TrainingParams
from rxcast.trainer.priors import CATEGORY_FEATURE, REGION_FEATURE, cold_start_priors, entities_seen
from rxcast.trainer.promotion import AliasManager
from rxcast.trainer.reference import reference_profile, sample_rows
from rxcast.trainer.registry import alias_name

log = get_logger("rxcast.trainer.pipeline")


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """What a training job is asked to do."""

    start_day: int
    end_day: int
    params: TrainingParams
    reason: str = ""
    promote: bool = False
    alias: str = "champion"
    #: Ship a model refitted on every labelled row of the window (holdout and
    #: embargo included) once the holdout has judged the recipe.
    refit: bool = False
    #: The gate's relative margin for this job; None takes the trainer's.
    gate_margin: float | None = None


class Stage:
    QUEUED = "queued"
    LOADING = "loading"
    TRAINING = "training"
    EVALUATING = "evaluating"
    PUBLISHING = "publishing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class ProgressReport(Protocol):
    """Where a running job reports its progress."""

    def stage(self, stage: str, message: str) -> None: ...
    def rows(self, loaded: int, total: int) -> None: ...
    def rounds(self, done: int, total: int) -> None: ...
    def evaluated(self, evaluation: Evaluation) -> None: ...


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    version: int
    evaluation: Evaluation
    promoted: bool
    #: Why promotion was refused, when it was asked for and refused.
    refusal: str = ""


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    #: The forecast horizon; 0 (the service's setting) takes the source's own
    #: (the feature service defines the target), read once.
    horizon_days: int = 0
    num_threads: int = 2
    min_train_rows: int = 200
    min_holdout_rows: int = 50
    #: A Dask scheduler to fit on (rxcast.trainer.distributed); "" fits in this process.
    dask_scheduler: str = ""


@dataclasses.dataclass(frozen=True)
class _Champion:
    """The version a job is judged against (bundle None: none, or unloadable)."""

    bundle: ModelBundle | None
    version: int
    note: str = ""


def library_versions() -> dict[str, str]:
    return {
        "lightgbm": lgb.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
    }


class TrainingPipeline:
    """Runs jobs against one training-set source, registry and gate."""

    def __init__(self, source: TrainingSetSource, aliases: AliasManager, settings: PipelineSettings):
        self.source = source
        self.aliases = aliases
        self.registry = aliases.registry
        self.settings = settings
        self._horizon = settings.horizon_days
        self.dask = DaskFitter(settings.dask_scheduler) if settings.dask_scheduler else None

    def horizon_days(self) -> int:
        """The horizon jobs train for: the settings', else the source's definition of the target."""
        if not self._horizon:
            horizon = self.source.schema().horizon_days
            if horizon <= 0:
                raise FailedPrecondition("the training-set source defines no forecast horizon")
            self._horizon = horizon
        return self._horizon

    def check(self, spec: JobSpec) -> None:
        """Refuse, before any work, a job whose window cannot hold a training set."""
        if spec.end_day < spec.start_day:
            raise InvalidArgument(
                f"window: end_day {day_text(spec.end_day)} is before start_day {day_text(spec.start_day)}"
            )
        days = spec.end_day - spec.start_day + 1
        # Training days, the embargo between them and the holdout, the holdout.
        horizon = self.horizon_days()
        needed = 1 + horizon + spec.params.holdout_days
        if days < needed:
            raise InvalidArgument(
                f"window: {days} days from {day_text(spec.start_day)} to {day_text(spec.end_day)} is too short: "
                f"a {spec.params.holdout_days}-day holdout after a {horizon}-day embargo "
                f"needs at least {needed} days"
            )
        alias_name(spec.alias)

    def run(self, spec: JobSpec, report: ProgressReport, should_stop: Callable[[], bool]) -> JobOutcome:
        threads = self.settings.num_threads
        with self._stage(
            report, Stage.LOADING, f"loading rows of {day_text(spec.start_day)}..{day_text(spec.end_day)}"
        ):
            champion = self._champion(spec.alias)
            data, split = self._load(spec, champion, report)

        first_day = day_text(int(split.train.row_days.min()))
        message = f"boosting on {split.train.rows} rows of {first_day}..{day_text(split.last_train_day)}"
        with self._stage(report, Stage.TRAINING, message):
            fit = self.dask.fit if self.dask is not None else fit_model
            fitted = fit(split.train, spec.params, threads, report.rounds, should_stop)

        with self._stage(report, Stage.EVALUATING, f"scoring {split.holdout.rows} holdout rows"):
            encoder = FeatureEncoder(fitted.manifest)
            predictions = fitted.predict(encoder.encode(split.holdout.columns).matrix, threads)
            evaluation = evaluate(predictions, split.holdout, split.describe(), champion.bundle, threads)
            if champion.bundle is None and champion.version:
                evaluation = dataclasses.replace(
                    evaluation, champion_version=champion.version, champion_note=champion.note
                )
            report.evaluated(evaluation)
            self._export(evaluation)
            manifest = self._manifest(spec, data, split, fitted, evaluation, predictions)

        validation_text = None
        if spec.refit:
            message = f"refitting on all {data.rows} labelled rows through {day_text(split.holdout_end)}"
            with self._stage(report, Stage.TRAINING, message):
                shipped = fit_model(data, spec.params, threads, report.rounds, should_stop)
            # The refit may have seen categorical levels the holdout's model did not.
            manifest = manifest.with_updates(
                categorical_levels=shipped.manifest.categorical_levels,
                fit={
                    "kind": "refit",
                    "fitted_through": day_text(split.holdout_end),
                    "rows": data.rows,
                    "validated_through": day_text(split.last_train_day),
                    "validation_sha256": sha256_bytes(fitted.model_text),
                    "validation_categorical_levels": fitted.manifest.categorical_levels,
                },
                training_data_sha256=shipped.training_data_sha256,
            )
            validation_text, fitted = fitted.model_text, shipped
        else:
            manifest = manifest.with_updates(
                fit={"kind": "holdout", "fitted_through": day_text(split.last_train_day), "rows": split.train.rows}
            )

        with self._stage(report, Stage.PUBLISHING, "writing the version to the registry"):
            info = self.registry.publish(fitted.model_text, manifest, validation_text)
            metrics.VERSIONS_PUBLISHED.inc()
        if not spec.promote:
            return JobOutcome(info.version, evaluation, promoted=False)
        promotion = self.aliases.promote_evaluated(spec.alias, info.version, evaluation, spec.reason, spec.gate_margin)
        return JobOutcome(info.version, evaluation, promotion.promoted, promotion.refusal)

    @contextmanager
    def _stage(self, report: ProgressReport, stage: str, message: str) -> Iterator[None]:
        started = time.monotonic()
        report.stage(stage, message)
        yield
        metrics.STAGE_SECONDS.labels(stage).observe(time.monotonic() - started)

    def _load(self, spec: JobSpec, champion: _Champion, report: ProgressReport) -> tuple[TrainingSet, TimeSplit]:
        """The window's labelled rows, with what the baseline, the priors and
        the champion need besides the model's features, split in time."""
        extra = (BASELINE_FEATURE, CATEGORY_FEATURE, REGION_FEATURE)
        if champion.bundle is not None:
            extra += champion.bundle.manifest.feature_names
        request = LoadRequest(spec.start_day, spec.end_day, extra, self.horizon_days())
        data = self.source.load(request, report.rows)
        metrics.ROWS_LOADED.inc(data.rows)
        settings = self.settings
        return data, split_by_time(data, spec.params.holdout_days, settings.min_train_rows, settings.min_holdout_rows)

    def _manifest(
        self,
        spec: JobSpec,
        data: TrainingSet,
        split: TimeSplit,
        fitted: FittedModel,
        evaluation: Evaluation,
        predictions: np.ndarray,
    ) -> ModelManifest:
        """Everything the version records besides its number and checksum."""
        params, threads = spec.params, self.settings.num_threads
        sample = sample_rows(split.train.rows, params.seed)
        features = {name: split.train.columns[name][sample] for name in fitted.manifest.feature_names}
        sample_predictions = fitted.predict(FeatureEncoder(fitted.manifest).encode(features).matrix, threads)
        return fitted.manifest.with_updates(
            params={**params.to_dict(), "lightgbm": params.lightgbm_params(threads_for(split.train.rows, threads))},
            training_window={"start_day": day_text(spec.start_day), "end_day": day_text(spec.end_day)},
            holdout_window=split.describe(),
            training_data_sha256=fitted.training_data_sha256,
            rows={"loaded": data.rows, "train": split.train.rows, "holdout": split.holdout.rows},
            metrics={
                **evaluation.to_dict(),
                "holdout_error": error_statistics(split.holdout.labels, predictions),
                "baseline_feature": BASELINE_FEATURE,
            },
            priors=cold_start_priors(data),
            entities_seen=entities_seen(data),
            library_versions=library_versions(),
            reason=spec.reason,
            reference_profile=reference_profile(
                features,
                split.train.schema.categorical,
                sample_predictions,
                split.holdout.labels,
                predictions,
                {name: split.holdout.columns[name] for name in fitted.manifest.feature_names},
                split.holdout.row_days,
            ),
        )

    def _champion(self, alias: str) -> _Champion:
        """The alias's current version as the gate judges it, loaded; or why it
        could not be. A refitted version has learnt the candidate's holdout
        days: the model its own holdout judged stands in for it, so both are
        scored on days neither has trained on."""
        state = self.registry.alias(alias)
        if state is None or state.version == 0:
            return _Champion(None, 0)
        try:
            validation = self.registry.load_validation_bundle(state.version)
            if validation is not None:
                return _Champion(validation, state.version)
            return _Champion(self.registry.load_bundle(state.version), state.version)
        except (RxcastError, OSError) as exc:
            error = exc.message if isinstance(exc, RxcastError) else str(exc)
            log.warning("champion_unloadable", alias=alias, version=state.version, error=error)
            return _Champion(None, state.version, f"v{state.version} could not be loaded: {error}")

    @staticmethod
    def _export(evaluation: Evaluation) -> None:
        scored: dict[str, Any] = {"candidate": evaluation.model, "baseline": evaluation.baseline}
        if evaluation.champion is not None:
            scored["champion"] = evaluation.champion
        for model, values in scored.items():
            for metric in ("mae", "rmse", "wape"):
                metrics.LAST_HOLDOUT_METRIC.labels(model, metric).set(values.get(metric))
