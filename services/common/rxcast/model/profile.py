"""Reference profiles: what a model version's training data looked like, in a
bounded, mergeable, JSON-serializable summary that drift scoring compares
production windows against.

Per numeric feature (and for the predictions and the holdout errors):
  - `count` finite values, `null_count` missing values (NaN), `infinite_count`
    values that were +-inf (kept apart from missing: they are a data-quality
    fault of their own and take no part in the distribution);
  - mean, std (sample, ddof=1), min, max, and the sum of squared deviations
    (`m2`) so that profiles merge exactly (Chan et al.'s parallel update);
  - a sorted `sketch` of at most `sketch_size` values. While the feature has
    at most `sketch_size` finite values the sketch is the data itself
    (`sketch_exact`), so KS and Wasserstein against it are exact. Beyond that
    it holds the values at the mid-ranks (i + 0.5) / sketch_size of the data
    (each standing for count / sketch_size values), so its ECDF is within
    1 / sketch_size of the data's everywhere: the KS statistic is off by at
    most that much, and test p-values still use the real `count`;
  - quantile bin edges (`bin_edges`, the interior edges at k / bins, deduplicated
    for features with heavy ties) and the reference mass in each bin
    (`bin_counts`), bins being (-inf, e0], (e0, e1], ..., (e_last, inf).

Per categorical feature: counts per category and `null_count` (None, "" or a
float NaN count as missing). At most `max_categories` categories are kept
(the most frequent); the rest are summed in `other_count`.

Merging (e.g. profiles built over partitions) adds counts and moments
exactly; sketches are merged as weighted samples and re-cut at the mid-ranks
(exact again while the union fits in the sketch), and bins are re-cut from
the merged sketch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from rxcast.model.error_estimator import RETIRED_FORMATS, ErrorEstimator
from rxcast.model.residuals import POISSON_SCALE, UNITS_SCALE
from rxcast.runtime.errors import InvalidArgument

PROFILE_FORMAT = "rxcast.drift.profile/1"
#: Largest sketch per numeric column: 2048 values keep a 20-feature profile
#: around 1 MB of JSON and the KS statistic within 1/2048 of exact.
DEFAULT_SKETCH_SIZE = 2048
#: Quantile bins for PSI and JS distance (deciles, the usual PSI binning).
DEFAULT_BINS = 10
#: Most categories kept per categorical feature.
DEFAULT_MAX_CATEGORIES = 10_000
#: Sketch size of each stratum's profile: strata are many and small, and
#: 256 values keep the KS statistic within 1/256 while the manifest stays small.
DEFAULT_STRATA_SKETCH_SIZE = 256
#: The name predictions are reported under.
PREDICTION = "prediction"


def _float_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclasses.dataclass(frozen=True, eq=False)
class NumericProfile:
    """The distribution of one numeric column. See the module docstring."""

    count: int
    null_count: int
    infinite_count: int
    mean: float
    m2: float
    min: float
    max: float
    sketch: np.ndarray
    sketch_exact: bool
    bin_edges: np.ndarray
    bin_counts: np.ndarray

    @property
    def rows(self) -> int:
        return self.count + self.null_count + self.infinite_count

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); 0 with fewer than two values."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    @property
    def null_rate(self) -> float:
        return self.null_count / self.rows if self.rows else 0.0

    @property
    def sketch_weight(self) -> float:
        """How many values each sketch value stands for."""
        return self.count / len(self.sketch) if len(self.sketch) else 0.0

    @property
    def bin_fractions(self) -> np.ndarray:
        total = self.bin_counts.sum()
        return self.bin_counts / total if total > 0 else np.zeros_like(self.bin_counts)

    @classmethod
    def build(
        cls, values: Any, sketch_size: int = DEFAULT_SKETCH_SIZE, bins: int = DEFAULT_BINS, name: str = "values"
    ) -> NumericProfile:
        array = _as_float_array(values, name)
        nulls = np.isnan(array)
        infinite = np.isinf(array)
        finite = np.sort(array[~(nulls | infinite)])
        count = int(finite.size)
        mean = float(finite.mean()) if count else 0.0
        m2 = float(np.square(finite - mean).sum()) if count else 0.0
        if count <= sketch_size:
            sketch, exact = finite, True
        else:
            sketch, exact = _midrank_values(finite, np.ones(count), sketch_size), False
        edges, counts = _quantile_bins(finite, np.ones(count), bins)
        return cls(
            count=count,
            null_count=int(nulls.sum()),
            infinite_count=int(infinite.sum()),
            mean=mean,
            m2=m2,
            min=float(finite[0]) if count else math.nan,
            max=float(finite[-1]) if count else math.nan,
            sketch=sketch,
            sketch_exact=exact,
            bin_edges=edges,
            bin_counts=counts,
        )

    def merge(
        self, other: NumericProfile, sketch_size: int = DEFAULT_SKETCH_SIZE, bins: int = DEFAULT_BINS
    ) -> NumericProfile:
        count = self.count + other.count
        if count == 0:
            mean, m2 = 0.0, 0.0
        else:
            delta = other.mean - self.mean
            mean = self.mean + delta * other.count / count
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        values = np.concatenate([self.sketch, other.sketch])
        weights = np.concatenate(
            [np.full(self.sketch.size, self.sketch_weight), np.full(other.sketch.size, other.sketch_weight)]
        )
        order = np.argsort(values, kind="stable")
        values, weights = values[order], weights[order]
        exact = self.sketch_exact and other.sketch_exact and count <= sketch_size
        sketch = values if exact else _midrank_values(values, weights, sketch_size)
        edges, counts = _quantile_bins(values, weights, bins)
        return NumericProfile(
            count=count,
            null_count=self.null_count + other.null_count,
            infinite_count=self.infinite_count + other.infinite_count,
            mean=mean,
            m2=m2,
            min=float(np.fmin(self.min, other.min)),
            max=float(np.fmax(self.max, other.max)),
            sketch=sketch,
            sketch_exact=exact,
            bin_edges=edges,
            bin_counts=counts,
        )

    def scaled(self, factor: float) -> NumericProfile:
        """The same distribution standing for `factor` times as many rows
        (a stratum's weight in a mixture): counts scale, the shape does not."""
        count = round(self.count * factor)
        return dataclasses.replace(
            self,
            count=count,
            null_count=round(self.null_count * factor),
            infinite_count=round(self.infinite_count * factor),
            m2=self.m2 * count / self.count if self.count else 0.0,
            sketch_exact=self.sketch_exact and count == self.count,
            bin_counts=self.bin_counts * (count / self.count) if self.count else self.bin_counts,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "null_count": self.null_count,
            "infinite_count": self.infinite_count,
            "mean": self.mean,
            "std": self.std,
            "m2": self.m2,
            "min": _float_or_none(self.min),
            "max": _float_or_none(self.max),
            "sketch": self.sketch.tolist(),
            "sketch_exact": self.sketch_exact,
            "bin_edges": self.bin_edges.tolist(),
            "bin_counts": self.bin_counts.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> NumericProfile:
        try:
            sketch = np.asarray(data["sketch"], dtype=float)
            edges = np.asarray(data["bin_edges"], dtype=float)
            counts = np.asarray(data["bin_counts"], dtype=float)
            profile = cls(
                count=int(data["count"]),
                null_count=int(data["null_count"]),
                infinite_count=int(data.get("infinite_count", 0)),
                mean=float(data["mean"]),
                m2=float(data["m2"]),
                min=math.nan if data.get("min") is None else float(data["min"]),
                max=math.nan if data.get("max") is None else float(data["max"]),
                sketch=sketch,
                sketch_exact=bool(data["sketch_exact"]),
                bin_edges=edges,
                bin_counts=counts,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"{where}: malformed numeric profile ({type(exc).__name__}: {exc})") from None
        profile._check(where)
        return profile

    def _check(self, where: str) -> None:
        if min(self.count, self.null_count, self.infinite_count) < 0:
            raise InvalidArgument(f"{where}: counts must be >= 0")
        if self.sketch.ndim != 1 or not np.isfinite(self.sketch).all() or np.any(np.diff(self.sketch) < 0):
            raise InvalidArgument(f"{where}.sketch: must be a sorted list of finite numbers")
        if (self.count > 0) != (self.sketch.size > 0) or self.sketch.size > max(self.count, 0):
            raise InvalidArgument(f"{where}.sketch: has {self.sketch.size} values for a count of {self.count}")
        if self.sketch_exact and self.sketch.size != self.count:
            raise InvalidArgument(f"{where}.sketch: exact sketch must hold all {self.count} values")
        if self.bin_counts.size != self.bin_edges.size + 1 or np.any(self.bin_counts < 0):
            raise InvalidArgument(f"{where}: needs one more bin count than bin edges, all >= 0")
        if not np.isfinite(self.bin_edges).all() or np.any(np.diff(self.bin_edges) <= 0):
            raise InvalidArgument(f"{where}.bin_edges: must be strictly increasing finite numbers")
        if not (math.isfinite(self.mean) and math.isfinite(self.m2) and self.m2 >= 0):
            raise InvalidArgument(f"{where}: mean and m2 must be finite, m2 >= 0")


@dataclasses.dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """The distribution of one categorical column. See the module docstring."""

    counts: dict[str, int]
    null_count: int
    other_count: int = 0

    @property
    def count(self) -> int:
        """Non-missing values."""
        return sum(self.counts.values()) + self.other_count

    @property
    def rows(self) -> int:
        return self.count + self.null_count

    @property
    def null_rate(self) -> float:
        return self.null_count / self.rows if self.rows else 0.0

    @classmethod
    def build(
        cls, values: Any, max_categories: int = DEFAULT_MAX_CATEGORIES, name: str = "values"
    ) -> CategoricalProfile:
        present, missing = categorical_values(values, name)
        categories, counts = np.unique(present, return_counts=True)
        return cls._bounded(
            dict(zip(categories.tolist(), counts.tolist(), strict=True)), int(missing), 0, max_categories
        )

    @classmethod
    def _bounded(
        cls, counts: dict[str, int], null_count: int, other_count: int, max_categories: int
    ) -> CategoricalProfile:
        if len(counts) > max_categories:
            # Most frequent first; ties by name so the result is deterministic.
            kept = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_categories]
            other_count += sum(counts.values()) - sum(c for _, c in kept)
            counts = dict(kept)
        return cls(counts=dict(sorted(counts.items())), null_count=null_count, other_count=other_count)

    def merge(self, other: CategoricalProfile, max_categories: int = DEFAULT_MAX_CATEGORIES) -> CategoricalProfile:
        counts = dict(self.counts)
        for key, value in other.counts.items():
            counts[key] = counts.get(key, 0) + value
        return self._bounded(
            counts, self.null_count + other.null_count, self.other_count + other.other_count, max_categories
        )

    def scaled(self, factor: float) -> CategoricalProfile:
        """The same category shares standing for `factor` times as many rows."""
        return CategoricalProfile(
            {k: round(v * factor) for k, v in self.counts.items()},
            round(self.null_count * factor),
            round(self.other_count * factor),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "null_count": self.null_count, "other_count": self.other_count}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> CategoricalProfile:
        try:
            counts = {str(k): int(v) for k, v in dict(data["counts"]).items()}
            profile = cls(
                counts=counts, null_count=int(data["null_count"]), other_count=int(data.get("other_count", 0))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"{where}: malformed categorical profile ({type(exc).__name__}: {exc})") from None
        if profile.null_count < 0 or profile.other_count < 0 or any(v < 0 for v in counts.values()):
            raise InvalidArgument(f"{where}: counts must be >= 0")
        return profile


@dataclasses.dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """A model version's reference: its training features, predictions and
    holdout errors (`error_scale` says how computed), each profiled."""

    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    prediction: NumericProfile | None = None
    error: NumericProfile | None = None
    feature_order: tuple[str, ...] = ()
    sketch_size: int = DEFAULT_SKETCH_SIZE
    bins: int = DEFAULT_BINS
    max_categories: int = DEFAULT_MAX_CATEGORIES
    #: The features whose values split the rows into strata (e.g. region and weekday)...
    strata_by: tuple[str, ...] = ()
    #: ...and each stratum's profile, by its key (`stratum_keys`), without holdout errors.
    strata: dict[str, ReferenceProfile] = dataclasses.field(default_factory=dict)
    #: The holdout's model of the absolute error (`rxcast.model.error_estimator`), if fitted
    #: in a format this release reads.
    error_estimator: ErrorEstimator | None = None
    #: How `error` was computed: POISSON_SCALE (`forecast_residuals`, what the
    #: drift service computes from actuals) or UNITS_SCALE (actual - prediction,
    #: profiles before the scale was recorded).
    error_scale: str = POISSON_SCALE

    @property
    def features(self) -> tuple[str, ...]:
        """Feature names, in the order they were given."""
        return self.feature_order or (*self.numeric, *self.categorical)

    @property
    def rows(self) -> int:
        """Rows the profile was computed from."""
        columns = [*self.numeric.values(), *self.categorical.values()]
        if self.prediction is not None:
            columns.append(self.prediction)
        return max((c.rows for c in columns), default=0)

    def kind(self, feature: str) -> str | None:
        """ "numeric", "categorical", or None for a feature the profile lacks."""
        if feature in self.numeric:
            return "numeric"
        if feature in self.categorical:
            return "categorical"
        return None

    def merge(self, other: ReferenceProfile) -> ReferenceProfile:
        """The profile of both profiles' data together.

        Both must profile the same features, and both or neither the
        predictions. Holdout errors may come with one side only (they are
        profiled apart from the training partitions) and are kept.
        """
        if set(self.numeric) != set(other.numeric) or set(self.categorical) != set(other.categorical):
            raise InvalidArgument(
                "profile merge: schemas differ "
                f"(numeric {sorted(self.numeric)} vs {sorted(other.numeric)}, "
                f"categorical {sorted(self.categorical)} vs {sorted(other.categorical)})"
            )
        if (self.prediction is None) != (other.prediction is None):
            raise InvalidArgument("profile merge: only one of the profiles has predictions")
        size, bins = self.sketch_size, self.bins
        if self.error is not None and other.error is not None and self.error_scale != other.error_scale:
            raise InvalidArgument(f"profile merge: holdout errors in {self.error_scale} and {other.error_scale}")
        return ReferenceProfile(
            error_scale=self.error_scale if self.error is not None else other.error_scale,
            numeric={n: p.merge(other.numeric[n], size, bins) for n, p in self.numeric.items()},
            categorical={n: p.merge(other.categorical[n], self.max_categories) for n, p in self.categorical.items()},
            prediction=_merge_optional(self.prediction, other.prediction, size, bins),
            error=_merge_optional(self.error, other.error, size, bins),
            feature_order=self.feature_order,
            sketch_size=size,
            bins=bins,
            max_categories=self.max_categories,
        )

    def scaled(self, factor: float) -> ReferenceProfile:
        """Every column standing for `factor` times as many rows."""
        return dataclasses.replace(
            self,
            numeric={n: p.scaled(factor) for n, p in self.numeric.items()},
            categorical={n: p.scaled(factor) for n, p in self.categorical.items()},
            prediction=None if self.prediction is None else self.prediction.scaled(factor),
            strata={},
        )

    def for_strata(self, rows: Mapping[str, int]) -> ReferenceProfile:
        """The reference of a window's population: the profiles of its strata
        (key -> the window's rows in it) mixed in the window's proportions,
        standing for as many rows as those strata hold in the reference. A
        window of mostly northern stores on a Saturday is compared with
        northern and southern Saturdays weighted as it holds them. Strata the
        reference lacks (a new region) add nothing: their rows are judged
        against strata they do not belong to, which is the drift to find.
        No known stratum: the whole profile."""
        known = sorted(k for k in rows if k in self.strata and rows[k] > 0 and self.strata[k].rows > 0)
        if not known:
            return self
        window = sum(rows[k] for k in known)
        total = sum(self.strata[k].rows for k in known)
        parts = [self.strata[k].scaled(rows[k] / window * total / self.strata[k].rows) for k in known]
        merged = parts[0]
        for part in parts[1:]:
            merged = merged.merge(part)
        return dataclasses.replace(
            merged,
            error=self.error,
            feature_order=self.features,
            strata_by=(),
            strata={},
            error_estimator=self.error_estimator,
            error_scale=self.error_scale,
        )

    def to_dict(self) -> dict[str, Any]:
        strata = (
            {"strata_by": list(self.strata_by), "strata": {k: p.to_dict() for k, p in self.strata.items()}}
            if self.strata_by
            else {}
        )
        estimator = {} if self.error_estimator is None else {"error_estimator": self.error_estimator.to_dict()}
        return {
            **strata,
            **estimator,
            "format": PROFILE_FORMAT,
            "rows": self.rows,
            "sketch_size": self.sketch_size,
            "bins": self.bins,
            "max_categories": self.max_categories,
            "feature_order": list(self.features),
            "numeric": {n: p.to_dict() for n, p in self.numeric.items()},
            "categorical": {n: p.to_dict() for n, p in self.categorical.items()},
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "error": None if self.error is None else self.error.to_dict(),
            "error_scale": self.error_scale,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        if not isinstance(data, Mapping):
            raise InvalidArgument(f"profile: must be a JSON object, got {type(data).__name__}")
        if data.get("format") != PROFILE_FORMAT:
            raise InvalidArgument(f"profile.format: {data.get('format')!r} is not {PROFILE_FORMAT!r}")
        numeric = data.get("numeric") or {}
        categorical = data.get("categorical") or {}
        if not isinstance(numeric, Mapping) or not isinstance(categorical, Mapping):
            raise InvalidArgument("profile: numeric and categorical must be JSON objects")
        both = set(numeric) & set(categorical)
        if both:
            raise InvalidArgument(f"profile: features {sorted(both)} are both numeric and categorical")
        prediction, error = data.get("prediction"), data.get("error")
        try:
            sketch_size = int(data.get("sketch_size", DEFAULT_SKETCH_SIZE))
            bins = int(data.get("bins", DEFAULT_BINS))
            max_categories = int(data.get("max_categories", DEFAULT_MAX_CATEGORIES))
        except (TypeError, ValueError):
            raise InvalidArgument("profile: sketch_size, bins and max_categories must be integers") from None
        order = tuple(str(n) for n in data.get("feature_order") or ())
        if order and set(order) != set(numeric) | set(categorical):
            raise InvalidArgument("profile.feature_order: must list exactly the profile's features")
        strata_by = tuple(str(n) for n in data.get("strata_by") or ())
        if set(strata_by) - set(numeric) - set(categorical):
            raise InvalidArgument(f"profile.strata_by: {list(strata_by)} must name the profile's features")
        strata = data.get("strata") or {}
        if not isinstance(strata, Mapping):
            raise InvalidArgument("profile.strata: must be a JSON object")
        error_scale = data.get("error_scale", UNITS_SCALE)
        if error_scale not in (POISSON_SCALE, UNITS_SCALE):
            raise InvalidArgument(f"profile.error_scale: {error_scale!r} is not {POISSON_SCALE!r} or {UNITS_SCALE!r}")
        estimator = data.get("error_estimator")
        if isinstance(estimator, Mapping) and estimator.get("format") in RETIRED_FORMATS:
            estimator = None  # a band this release does not read: the version is not judged on it
        return cls(
            error_estimator=None if estimator is None else ErrorEstimator.from_dict(estimator),
            strata_by=strata_by,
            strata={str(k): cls.from_dict(p) for k, p in strata.items()} if strata_by else {},
            numeric={str(n): NumericProfile.from_dict(p, f"profile.numeric.{n}") for n, p in numeric.items()},
            categorical={
                str(n): CategoricalProfile.from_dict(p, f"profile.categorical.{n}") for n, p in categorical.items()
            },
            prediction=None if prediction is None else NumericProfile.from_dict(prediction, "profile.prediction"),
            error=None if error is None else NumericProfile.from_dict(error, "profile.error"),
            error_scale=error_scale,
            feature_order=order,
            sketch_size=sketch_size,
            bins=bins,
            max_categories=max_categories,
        )


def build_reference_profile(
    features: Mapping[str, np.ndarray],
    categorical: Collection[str],
    predictions: np.ndarray | None = None,
    errors: np.ndarray | None = None,
    *,
    sketch_size: int = DEFAULT_SKETCH_SIZE,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    strata_by: Collection[str] = (),
    strata_sketch_size: int = DEFAULT_STRATA_SKETCH_SIZE,
) -> ReferenceProfile:
    """Profile a model version's training data.

    `features` maps each feature name to its column (numeric: floats with NaN
    for missing; categorical: strings with None or "" for missing); every
    name in `categorical` is profiled by category. `predictions` are the
    model's outputs on the same rows; `errors` are holdout residuals on the
    scale of Poisson noise (`rxcast.model.residuals.forecast_residuals`, as
    the drift service computes them from actuals), whose distribution
    standardizes the concept-drift detectors' error stream. With `strata_by` (features whose values split
    the rows into populations: region, weekday) each stratum is profiled
    too, with sketches of `strata_sketch_size` values, so a window can be
    compared with the same population (`ReferenceProfile.for_strata`).
    """
    if sketch_size < 2 or bins < 2 or max_categories < 1:
        raise InvalidArgument("profile: sketch_size and bins must be >= 2, max_categories >= 1")
    unknown = sorted(set(categorical) - set(features))
    if unknown:
        raise InvalidArgument(f"categorical: names features not given: {unknown}")
    if PREDICTION in features:
        raise InvalidArgument(f"features: {PREDICTION!r} is reserved for the predictions")
    lengths = {name: len(column) for name, column in features.items()}
    if predictions is not None:
        lengths[PREDICTION] = len(predictions)
    if len(set(lengths.values())) > 1:
        raise InvalidArgument(f"features: columns differ in length: {lengths}")
    numeric = {
        name: NumericProfile.build(column, sketch_size, bins, f"features.{name}")
        for name, column in features.items()
        if name not in categorical
    }
    categories = {
        name: CategoricalProfile.build(column, max_categories, f"features.{name}")
        for name, column in features.items()
        if name in categorical
    }
    strata_by = tuple(strata_by)
    missing = sorted(set(strata_by) - set(features))
    if missing:
        raise InvalidArgument(f"strata_by: names features not given: {missing}")
    strata = {}
    if strata_by:
        keys = stratum_keys(features, strata_by, categorical)
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)
            strata[str(key)] = build_reference_profile(
                {name: np.asarray(column)[rows] for name, column in features.items()},
                categorical,
                None if predictions is None else np.asarray(predictions)[rows],
                sketch_size=strata_sketch_size,
                bins=bins,
                max_categories=max_categories,
            )
    return ReferenceProfile(
        strata_by=strata_by,
        strata=strata,
        numeric=numeric,
        categorical=categories,
        prediction=None if predictions is None else NumericProfile.build(predictions, sketch_size, bins, "predictions"),
        error=None if errors is None else NumericProfile.build(errors, sketch_size, bins, "errors"),
        feature_order=tuple(features),
        sketch_size=sketch_size,
        bins=bins,
        max_categories=max_categories,
    )


def stratum_keys(features: Mapping[str, Any], strata_by: Collection[str], categorical: Collection[str]) -> np.ndarray:
    """Each row's stratum as a string, its `strata_by` values joined by "|"
    ("coastal|3"). Numeric strata columns hold integer codes (a weekday):
    they are rounded; missing values key as ""."""
    parts = []
    for name in strata_by:
        column = features[name]
        if name in categorical:
            objects = np.asarray(column, dtype=object)
            missing = np.equal(objects, None) | np.not_equal(objects, objects)
            parts.append(np.where(missing, "", objects.astype(str)))
        else:
            numbers = _as_float_array(column, name)
            finite = np.isfinite(numbers)
            parts.append(np.where(finite, np.round(np.where(finite, numbers, 0)).astype(np.int64).astype(str), ""))
    if not parts:
        raise InvalidArgument("strata_by: names no feature")
    keys = parts[0].astype(object)
    for part in parts[1:]:
        keys = keys + "|" + part.astype(object)
    return keys.astype(str)


def categorical_values(values: Any, name: str = "values") -> tuple[np.ndarray, int]:
    """The present values of a categorical column as a str array, and how many were missing.

    None, "" and float NaN (pandas' missing marker in object columns) are missing.
    """
    array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if array.ndim != 1:
        raise InvalidArgument(f"{name}: must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind in "US":
        present = array.astype(str)
        mask = present != ""
        return present[mask], int(array.size - mask.sum())
    objects = array.astype(object)
    # Element-wise comparisons run in C; NaN is the one value unequal to itself.
    missing = np.equal(objects, None) | np.equal(objects, "") | np.not_equal(objects, objects)
    present = objects[~missing].astype(str)
    return present, int(missing.sum())


def _as_float_array(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name}: numeric feature has non-numeric values") from None
    if array.ndim != 1:
        raise InvalidArgument(f"{name}: must be one-dimensional, got shape {array.shape}")
    return array


def _midrank_values(sorted_values: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """The values at mid-ranks (i + 0.5) / size of a sorted weighted sample."""
    cumulative = np.cumsum(weights)
    targets = (np.arange(size) + 0.5) * (cumulative[-1] / size)
    index = np.minimum(np.searchsorted(cumulative, targets, side="left"), sorted_values.size - 1)
    return sorted_values[index]


def _quantile_bins(sorted_values: np.ndarray, weights: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Interior quantile edges at k / bins (deduplicated) and the mass per bin.

    Edges are data values (the inverted-CDF quantile) and bins are closed on
    the right, so a value shared by many rows falls in one bin whole.
    """
    if sorted_values.size == 0:
        return np.empty(0), np.zeros(1)
    cumulative = np.cumsum(weights)
    total = cumulative[-1]
    # The first value whose cumulative mass reaches k / bins; the relative
    # slack keeps k * total / bins from landing a rounding error past it.
    targets = np.arange(1, bins) * (total / bins) * (1 - 1e-12)
    index = np.minimum(np.searchsorted(cumulative, targets, side="left"), sorted_values.size - 1)
    edges = np.unique(sorted_values[index])
    # Drop an edge at the maximum: the last bin would be empty by construction.
    edges = edges[edges < sorted_values[-1]]
    below = np.searchsorted(sorted_values, edges, side="right")
    mass_below = np.concatenate([[0.0], cumulative[below - 1] if below.size else [], [total]])
    return edges, np.diff(mass_below)


def _merge_optional(a: NumericProfile | None, b: NumericProfile | None, size: int, bins: int) -> NumericProfile | None:
    if a is None or b is None:
        return a if b is None else b
    return a.merge(b, size, bins)
