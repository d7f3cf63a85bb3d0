"""Scoring a current sample against a reference profile: signals per feature,
multiple-testing correction, and a verdict per feature with its reason.

A feature's distribution has drifted when its test is significant after
correction across the report's features AND its effect size is above a
floor, so that a trivial shift in a huge sample is not an alarm:
  - numeric (and the predictions): the KS test; effects are the Wasserstein
    distance in reference standard deviations, PSI and JS distance on the
    reference's quantile bins, and the share of values outside the
    reference's range (new entities, new extremes; the one effect a feature
    that was constant in the reference can show). Mean and std ratios are
    reported to name a scale change; they do not decide on their own.
  - categorical: the chi-square test on the union of categories; the effect
    is the JS distance between category frequencies. The mass in categories
    the reference never saw is a signal that decides on its own.
Data quality is judged apart, and a fired data-quality signal names the
verdict (the pipeline is the likelier cause than the world): a change in the
null rate or the rate of infinities (a two-proportion test, corrected across
features, with a floor on the absolute change), and a column gone constant
when the reference makes that outcome improbable.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping
from typing import Any, Literal, get_args

import numpy as np
from scipy import stats as scipy_stats

from rxcast.drift import stats
from rxcast.model.profile import PREDICTION, CategoricalProfile, NumericProfile, ReferenceProfile, categorical_values
from rxcast.runtime.errors import InvalidArgument

NUMERIC = "numeric"
CATEGORICAL = "categorical"

NO_DRIFT = "no_drift"
DRIFT = "drift"
DATA_QUALITY = "data_quality"
INSUFFICIENT_DATA = "insufficient_data"
#: Verdicts from least to most severe; a report's verdict is its worst.
SEVERITY = (NO_DRIFT, INSUFFICIENT_DATA, DATA_QUALITY, DRIFT)

Correction = Literal["bh", "bonferroni", "none"]
CORRECTIONS: tuple[str, ...] = get_args(Correction)


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """When signals fire. Documented in services/drift/README.md."""

    #: Level the corrected p-values of tests are compared with.
    alpha: float = 0.01
    #: Correction across a report's features: Benjamini–Hochberg, Bonferroni or none.
    correction: str = "bh"
    #: Fewest current values a distribution test is run on.
    min_count: int = 30
    #: Effect floors for numeric features (any one suffices with a significant KS test).
    wasserstein: float = 0.25
    psi: float = 0.2
    js: float = 0.15
    #: Share of current values outside the reference's [min, max].
    out_of_range: float = 0.025
    #: A ratio above this or below its inverse fires (descriptive).
    mean_ratio: float = 1.5
    std_ratio: float = 1.5
    #: Effect floor for categorical features (with a significant chi-square test).
    categorical_js: float = 0.1
    #: Share of current values in categories the reference never saw.
    unseen_mass: float = 0.05
    #: Absolute change in the null rate (and in the rate of infinities) that
    #: fires when its test is also significant.
    null_rate_delta: float = 0.05
    infinite_rate_delta: float = 0.01
    #: A column gone constant fires when the reference gives that outcome a
    #: probability below this.
    constant_probability: float = 1e-6

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise InvalidArgument(f"thresholds.alpha: must be in (0, 1), got {self.alpha}")
        if self.correction not in CORRECTIONS:
            raise InvalidArgument(f"thresholds.correction: must be one of {', '.join(CORRECTIONS)}")
        if self.min_count < 1:
            raise InvalidArgument(f"thresholds.min_count: must be >= 1, got {self.min_count}")
        if self.mean_ratio <= 1 or self.std_ratio <= 1:
            raise InvalidArgument("thresholds.mean_ratio and std_ratio: must be > 1")
        for name in (
            "wasserstein",
            "psi",
            "js",
            "out_of_range",
            "categorical_js",
            "unseen_mass",
            "null_rate_delta",
            "infinite_rate_delta",
            "constant_probability",
        ):
            if not getattr(self, name) > 0:
                raise InvalidArgument(f"thresholds.{name}: must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Signal:
    """One statistic of a feature and whether it crossed its threshold."""

    name: str
    value: float
    threshold: float
    p_value: float | None = None
    adjusted_p_value: float | None = None
    fired: bool = False

    def __post_init__(self) -> None:
        self.value = _finite(self.value)

    def describe(self) -> str:
        if self.adjusted_p_value is not None:
            return f"{self.name} {self.value:.4g} (adjusted p {self.adjusted_p_value:.3g} vs {self.threshold:g})"
        return f"{self.name} {self.value:.4g} (threshold {self.threshold:g})"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signal:
        return cls(**data)


@dataclasses.dataclass
class FeatureResult:
    """The verdict on one feature (or on the predictions) and its evidence."""

    feature: str
    kind: str
    verdict: str
    reason: str
    signals: list[Signal]
    current_count: int

    def signal(self, name: str) -> Signal | None:
        return next((s for s in self.signals if s.name == name), None)

    def fired(self) -> list[Signal]:
        return [s for s in self.signals if s.fired]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "signals": [s.to_dict() for s in self.signals]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureResult:
        return cls(**{**data, "signals": [Signal.from_dict(s) for s in data["signals"]]})


@dataclasses.dataclass
class Scores:
    """Every feature's result, and the predictions' when they were scored."""

    features: list[FeatureResult]
    prediction: FeatureResult | None
    current_rows: int

    @property
    def verdict(self) -> str:
        results = [*self.features, *([self.prediction] if self.prediction else [])]
        return max((r.verdict for r in results), key=SEVERITY.index, default=INSUFFICIENT_DATA)


# ---------------------------------------------------------------- scoring


@dataclasses.dataclass
class _Pending:
    """A feature's signals before the corrected p-values decide its verdict."""

    feature: str
    kind: str
    current_count: int
    signals: list[Signal]
    test: Signal | None = None
    effects: list[Signal] = dataclasses.field(default_factory=list)
    decisive: list[Signal] = dataclasses.field(default_factory=list)
    quality_tests: list[Signal] = dataclasses.field(default_factory=list)
    quality: list[Signal] = dataclasses.field(default_factory=list)
    note: str = ""


def score(
    reference: ReferenceProfile,
    features: Mapping[str, Any],
    predictions: np.ndarray | None = None,
    thresholds: Thresholds | None = None,
    ignore: Collection[str] = (),
) -> Scores:
    """Score `features` (name -> column: floats with NaN missing for numeric
    features, strings with "" or None missing for categorical ones) and
    `predictions` against `reference`.

    Features the reference lacks are an error; reference features absent
    from `features` get an INSUFFICIENT_DATA result saying so. Features in
    `ignore` are left out of the report (and of the multiple-testing
    correction): those expected to move by construction, like the calendar.
    """
    thresholds = thresholds or Thresholds()
    features = {name: column for name, column in features.items() if name not in ignore}
    unknown = sorted(set(features) - set(reference.features))
    if unknown:
        raise InvalidArgument(f"features: not in the reference profile: {unknown}")
    lengths = {name: len(column) for name, column in features.items()}
    if predictions is not None and len(predictions) > 0:
        lengths[PREDICTION] = len(predictions)
    if len(set(lengths.values())) > 1:
        raise InvalidArgument(f"features: columns differ in length: {lengths}")
    rows = max(lengths.values(), default=0)

    pending: list[_Pending] = []
    for name in reference.features:
        if name in ignore:
            continue
        if name not in features:
            kind = NUMERIC if name in reference.numeric else CATEGORICAL
            pending.append(_Pending(name, kind, 0, [], note="absent from the data"))
        elif name in reference.numeric:
            pending.append(_numeric_signals(name, reference.numeric[name], features[name], thresholds))
        else:
            pending.append(_categorical_signals(name, reference.categorical[name], features[name], thresholds))
    prediction_pending = None
    if predictions is not None and len(predictions) > 0:
        if reference.prediction is None:
            raise InvalidArgument("predictions: the reference profile has no predictions to compare with")
        prediction_pending = _numeric_signals(PREDICTION, reference.prediction, predictions, thresholds)

    everything = [*pending, *([prediction_pending] if prediction_pending else [])]
    _adjust([p.test for p in everything if p.test is not None], thresholds)
    _adjust([s for p in everything for s in p.quality_tests], thresholds)
    results = [_decide(p, thresholds) for p in pending]
    return Scores(results, _decide(prediction_pending, thresholds) if prediction_pending else None, rows)


def _numeric_signals(name: str, ref: NumericProfile, column: Any, t: Thresholds) -> _Pending:
    try:
        values = np.asarray(column, dtype=float)
    except (TypeError, ValueError):
        raise InvalidArgument(f"features.{name}: a numeric feature needs numbers") from None
    if np.isfinite(values).all():
        current, null_count, infinite_count = np.sort(values), 0, 0
    else:
        nulls = np.isnan(values)
        infinite = np.isinf(values)
        current = np.sort(values[~(nulls | infinite)])
        null_count, infinite_count = int(nulls.sum()), int(infinite.sum())
    rows, count = values.size, current.size
    pending = _Pending(name, NUMERIC, count, [])
    _rate_signal(pending, "null_rate_delta", ref.null_count, ref.rows, null_count, rows, t.null_rate_delta)
    _rate_signal(
        pending, "infinite_rate_delta", ref.infinite_count, ref.rows, infinite_count, rows, t.infinite_rate_delta
    )
    if count >= 2 and current[0] == current[-1] and ref.count and ref.sketch[0] != ref.sketch[-1]:
        # P(all `count` values equal v) under the reference, v's mass read off the sketch.
        share = np.count_nonzero(ref.sketch == current[0]) / ref.sketch.size
        _constant_signal(pending, share, count, t)
    if _too_few(pending, ref.count, count, t):
        return pending

    statistic = stats.ks_statistic(ref.sketch, current)
    p = stats.ks_p_value(statistic, ref.count, count)
    pending.test = Signal("ks", statistic, t.alpha, p_value=p)
    scale = ref.std if ref.std > 0 else max(abs(ref.mean), 1.0)
    current_counts = stats.bin_counts(current, ref.bin_edges)
    pending.effects = [
        Signal("wasserstein", stats.wasserstein(ref.sketch, current) / scale, t.wasserstein),
        Signal("psi", stats.psi(ref.bin_counts, current_counts), t.psi),
        Signal("js", stats.js_distance(ref.bin_counts, current_counts), t.js),
        Signal("out_of_range", stats.outside_share(current, ref.min, ref.max), t.out_of_range),
    ]
    descriptive = []
    current_mean = float(current.mean())
    # A ratio of means names a scale change only for features whose level is
    # clearly away from zero.
    if abs(ref.mean) > 0.25 * ref.std and ref.mean != 0:
        descriptive.append(_ratio_signal("mean_ratio", current_mean / ref.mean, t.mean_ratio))
    if ref.std > 0 and count > 1:
        descriptive.append(_ratio_signal("std_ratio", float(current.std(ddof=1)) / ref.std, t.std_ratio))
    for signal in pending.effects:
        signal.fired = signal.value >= signal.threshold
    pending.signals = [pending.test, *pending.effects, *descriptive, *pending.signals]
    return pending


def _categorical_signals(name: str, ref: CategoricalProfile, column: Any, t: Thresholds) -> _Pending:
    array = np.asarray(column)
    if array.dtype.kind in "fiub":
        raise InvalidArgument(f"features.{name}: a categorical feature needs strings, got numbers")
    present, missing = categorical_values(array, f"features.{name}")
    rows, count = int(array.size), int(present.size)
    pending = _Pending(name, CATEGORICAL, count, [])
    _rate_signal(pending, "null_rate_delta", ref.null_count, ref.rows, missing, rows, t.null_rate_delta)
    categories, counts = np.unique(present, return_counts=True)
    if categories.size == 1 and count >= 2 and len(ref.counts) + (ref.other_count > 0) > 1:
        share = ref.counts.get(str(categories[0]), 0) / max(ref.count, 1)
        _constant_signal(pending, share, count, t)
    if _too_few(pending, ref.count, count, t):
        return pending

    known = np.isin(categories, np.array(list(ref.counts), dtype=str))
    union = sorted(set(ref.counts) | set(categories[known].tolist()))
    ref_counts = np.array([ref.counts[c] for c in union] + [ref.other_count], dtype=float)
    current_by_name = dict(zip(categories.tolist(), counts.tolist(), strict=True))
    # Categories the reference lacks share its "other" bucket (empty unless it was truncated).
    unseen = float(counts[~known].sum())
    current_counts = np.array([current_by_name.get(c, 0) for c in union] + [unseen], dtype=float)
    statistic, p, _ = stats.chi_square(ref_counts, current_counts)
    pending.test = Signal("chi2", statistic, t.alpha, p_value=p)
    pending.effects = [Signal("js", stats.js_distance(ref_counts, current_counts), t.categorical_js)]
    pending.effects[0].fired = pending.effects[0].value >= t.categorical_js
    unseen_mass = Signal("unseen_mass", unseen / count, t.unseen_mass)
    unseen_mass.fired = unseen_mass.value >= t.unseen_mass
    pending.decisive = [unseen_mass]
    pending.signals = [pending.test, *pending.effects, unseen_mass, *pending.signals]
    return pending


def _too_few(pending: _Pending, reference_count: int, count: int, t: Thresholds) -> bool:
    """Whether there are too few values to test; the note says which side lacks them."""
    if reference_count == 0:
        pending.note = "the reference has no values"
    elif count < t.min_count:
        pending.note = f"{count} current values < min_count {t.min_count}"
    return bool(pending.note)


def _rate_signal(
    pending: _Pending, name: str, ref_hits: int, ref_rows: int, hits: int, rows: int, threshold: float
) -> None:
    if rows == 0 or ref_rows == 0:
        return
    delta = hits / rows - ref_hits / ref_rows
    signal = Signal(name, delta, threshold, p_value=stats.proportion_p_value(ref_hits, ref_rows, hits, rows))
    signal.fired = abs(delta) >= threshold  # and significant: settled after correction
    pending.signals.append(signal)
    pending.quality_tests.append(signal)


#: A column constant at a value that holds at least this share of the
#: reference is the world settling (every store past its first 28 days, no
#: promotion anywhere), not a broken pipeline: that pins a column to a
#: fallback or a stale value, which the reference rarely holds.
COMMON_SHARE = 0.5


def _constant_signal(pending: _Pending, share: float, count: int, t: Thresholds) -> None:
    probability = math.exp(count * math.log(share)) if share > 0 else 0.0
    fired = bool(probability < t.constant_probability and share < COMMON_SHARE)
    signal = Signal("constant", 1.0, 1.0, p_value=probability, fired=fired)
    pending.signals.append(signal)
    if signal.fired:
        pending.quality.append(signal)


def _ratio_signal(name: str, ratio: float, threshold: float) -> Signal:
    return Signal(name, ratio, threshold, fired=ratio >= threshold or ratio <= 1 / threshold)


def _adjust(tests: list[Signal], t: Thresholds) -> None:
    """Fill in adjusted p-values across one family of tests."""
    if not tests:
        return
    raw = np.array([s.p_value for s in tests], dtype=float)
    if t.correction == "bh":
        adjusted = scipy_stats.false_discovery_control(raw, method="bh")
    elif t.correction == "bonferroni":
        adjusted = np.minimum(raw * raw.size, 1.0)
    else:
        adjusted = raw
    for signal, value in zip(tests, adjusted, strict=True):
        signal.adjusted_p_value = float(value)


def _decide(p: _Pending, t: Thresholds) -> FeatureResult:
    for signal in p.quality_tests:
        signal.fired = signal.fired and signal.adjusted_p_value < t.alpha
        if signal.fired:
            p.quality.append(signal)
    significant = p.test is not None and p.test.adjusted_p_value < t.alpha
    effects = [s for s in p.effects if s.fired]
    if p.test is not None:
        p.test.fired = significant and bool(effects)
    decisive = [s for s in p.decisive if s.fired]

    if p.quality:
        verdict, because = DATA_QUALITY, p.quality
        reason = "data quality: " + "; ".join(_describe_rate(s) for s in because)
        if p.test is not None and p.test.fired:
            reason += "; distribution also moved: " + ", ".join(s.describe() for s in [p.test, *effects])
    elif (p.test is not None and p.test.fired) or decisive:
        verdict = DRIFT
        parts = [s.describe() for s in decisive]
        if p.test is not None and p.test.fired:
            parts.append(f"{p.test.describe()} with " + ", ".join(s.describe() for s in effects))
        named = [s.describe() for s in p.signals if s.name in ("mean_ratio", "std_ratio") and s.fired]
        reason = "drift: " + "; ".join(parts) + (f"; scale change: {', '.join(named)}" if named else "")
    elif p.test is None:
        verdict, reason = INSUFFICIENT_DATA, f"insufficient data: {p.note}"
    elif significant:
        verdict = NO_DRIFT
        reason = (
            f"no drift: {p.test.describe()} is significant but no effect reaches its floor ("
            + ", ".join(s.describe() for s in p.effects)
            + ")"
        )
    else:
        verdict, reason = NO_DRIFT, f"no drift: {p.test.describe()} is not significant"
    return FeatureResult(p.feature, p.kind, verdict, reason, p.signals, p.current_count)


def _describe_rate(signal: Signal) -> str:
    if signal.name == "constant":
        return f"constant column (probability {signal.p_value:.3g} under the reference)"
    return f"{signal.name} {signal.value:+.4g} (|change| >= {signal.threshold:g}, adjusted p {signal.adjusted_p_value:.3g})"


def _finite(value: float) -> float:
    """A float that JSON and dashboards can carry: infinities are clipped to the largest double."""
    value = float(value)
    if math.isnan(value):
        raise ValueError("a signal value is NaN")
    return max(-np.finfo(float).max, min(np.finfo(float).max, value))
