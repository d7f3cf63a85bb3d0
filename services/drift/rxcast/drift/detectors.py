"""Concept-drift detectors on a model's error stream, independent of the
errors' scale, as fast as a plain ADWIN and calibrated to a target
false-alarm rate.

Each error's loss (|actual - prediction|, or a 0/1 misclassification) is put
on the reference losses' scale (the holdout errors in the version's profile)
twice. The randomized probability integral transform
u = F(loss-) + V * (F(loss) - F(loss-)), V uniform, is uniform on [0, 1]
while the errors behave as on the holdout, whatever their scale, shape or
ties: Page–Hinkley runs on it, calibrated once by simulation. The
mid-distribution transform (F(loss-) + F(loss)) / 2, scaled so the smallest
and largest reference losses map to 0 and 1, adds no noise: a 0/1 loss stays
the 0/1 stream itself (what a plain ADWIN is fed) and a continuous loss is
its reference percentile. ADWIN (river, its default delta) runs on it, and
the monitor's level (and the engine's) is its mean. Without reference errors
the first `warmup` losses of the stream serve as the reference.

Page–Hinkley is primed with the reference losses themselves (up to
PRIME_SAMPLES of their quantiles, in a seeded random order) before the first
served loss. It compares each sample with the mean of those before it, so
unprimed it would take a stream whose errors are larger from its very first
sample for its normal: a version that serves only after the world changed
(a model refitted every day) would show no change at all. ADWIN, which finds
a cut between two parts of its window, is left as river's plain ADWIN, alarm
for alarm.

Both are one-sided: only a rise of the loss is an alarm (ADWIN's cuts that
lower the level are counted apart), and only a rise of at least `min_rise`
(in units of the uniform's spread: the effect floor, so that a trivial rise
in a huge stream is not an alarm). An ADWIN cut is an alarm at once when the
newest samples clear the floor by RECENT_Z standard errors (the window ADWIN
keeps after a cut still holds the samples before the change, so its own mean
lags), or later, within ADWIN_PENDING_SAMPLES, when they do. A
Page–Hinkley detection is an alarm when the JUDGED_SAMPLES samples after it
clear the floor: that confirmation keeps Page–Hinkley within the target on
skewed losses, and costs no delay, since ADWIN fires first.

A monitor's whole state (transform and its random stream, warm-up losses,
the newest losses, both detectors, detections being confirmed) goes to JSON
and back (`to_dict`/`from_dict`), so a restarted service continues the same
stream.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
import river
from river import drift as river_drift

from rxcast.drift.codec import StateError, floats_to_text, integer, number, require, text_to_floats
from rxcast.runtime.errors import InvalidArgument
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.detectors")

ADWIN = "adwin"
PAGE_HINKLEY = "page_hinkley"
DETECTORS = (ADWIN, PAGE_HINKLEY)


@dataclasses.dataclass(frozen=True)
class DetectorSettings:
    """Detector parameters. ADWIN's are river's defaults (the plain ADWIN to
    be as fast as); Page–Hinkley's are calibrated (see rxcast.drift.calibrate);
    together at most TARGET_FALSE_ALARMS_PER_10K false alarms per 10,000
    samples of a stream whose errors behave as the reference's."""

    #: ADWIN's confidence: smaller cuts less often (river's default).
    adwin_delta: float = 0.002
    #: How often ADWIN looks for a cut, in samples.
    adwin_clock: int = 32
    #: Page–Hinkley's tolerated rise of the mean of u before it accumulates evidence.
    ph_delta: float = 0.02
    #: Page–Hinkley's alarm level on the accumulated evidence.
    ph_threshold: float = 15.0
    #: Samples before Page–Hinkley may fire.
    ph_min_instances: int = 100
    #: Losses that stand in for the reference when the profile has no errors.
    warmup: int = 500
    #: Effect floor: a detection is an alarm only when the level of the scaled
    #: losses has risen at least this far above its null level, in units of the
    #: uniform's spread (0.03: errors about 10% larger, for normal errors; for
    #: 0/1 losses at error rate p, 0.03 * sqrt(12 p (1 - p)): 0.015 at 2%), so
    #: that a trivial rise in a huge stream is not an alarm.
    min_rise: float = 0.03

    def __post_init__(self) -> None:
        if not 0 < self.adwin_delta < 1:
            raise InvalidArgument(f"detectors.adwin_delta: must be in (0, 1), got {self.adwin_delta}")
        if self.adwin_clock < 1 or self.ph_min_instances < 1 or self.warmup < 10:
            raise InvalidArgument("detectors: adwin_clock and ph_min_instances must be >= 1, warmup >= 10")
        if self.ph_delta < 0 or self.ph_threshold <= 0:
            raise InvalidArgument("detectors: ph_delta must be >= 0 and ph_threshold > 0")
        if not 0 <= self.min_rise < 0.5:
            raise InvalidArgument(f"detectors.min_rise: must be in [0, 0.5), got {self.min_rise}")


#: The false-alarm rate the default settings are calibrated to.
TARGET_FALSE_ALARMS_PER_10K = 0.1


class LossTransform:
    """Randomized probability integral transform of losses under reference losses."""

    def __init__(self, reference_losses: np.ndarray, seed: int = 0):
        reference = np.sort(np.asarray(reference_losses, dtype=float))
        reference = reference[np.isfinite(reference)]
        if reference.size == 0:
            raise InvalidArgument("reference losses: none are finite")
        self.reference = reference
        self._rng = np.random.default_rng(seed)
        # The mid-distribution transform m = (F(loss-) + F(loss)) / 2 spans
        # [m(smallest reference loss), m(largest)]; scaled to [0, 1] over that
        # span it is `scaled`. Its mean over the reference is exactly 0.5 before
        # scaling, so `null_level` is the scaled stream's level under the null.
        n = reference.size
        self._low = np.searchsorted(reference, reference[0], side="right") / (2 * n)
        self._high = 1.0 - (n - np.searchsorted(reference, reference[-1], side="left")) / (2 * n)
        self.null_level = self._scale(0.5) if self._high > self._low else 0.0
        #: The scaled losses' standard deviation under the null (the reference's own).
        self.null_std = float(np.std(self.scaled(reference)))

    def _scale(self, mid: float | np.ndarray) -> float | np.ndarray:
        return np.clip((mid - self._low) / (self._high - self._low), 0.0, 1.0)

    def scaled(self, losses: np.ndarray) -> np.ndarray:
        """The losses' mid-distribution transform under the reference, scaled
        so the smallest and largest reference losses map to 0 and 1: no
        randomization, so a 0/1 loss stays exactly the 0/1 stream (what a plain
        ADWIN sees), and a continuous loss is its reference percentile."""
        losses = np.asarray(losses, dtype=float)
        if self._high <= self._low:  # every reference loss equal: above it or not
            return (losses > self.reference[0]).astype(float)
        below = np.searchsorted(self.reference, losses, side="left")
        at_or_below = np.searchsorted(self.reference, losses, side="right")
        return self._scale((below + at_or_below) / (2 * self.reference.size))

    def __call__(self, losses: np.ndarray) -> np.ndarray:
        below = np.searchsorted(self.reference, losses, side="left")
        at_or_below = np.searchsorted(self.reference, losses, side="right")
        jitter = self._rng.random(losses.size)
        return (below + jitter * (at_or_below - below)) / self.reference.size

    def to_dict(self) -> dict[str, Any]:
        return {"reference": floats_to_text(self.reference), "rng": self._rng.bit_generator.state}

    @classmethod
    def from_dict(cls, data: Any) -> LossTransform:
        data = require(data, ("reference", "rng"), "transform")
        try:
            transform = cls(text_to_floats(data["reference"], "transform.reference"))
            if not isinstance(data["rng"], dict) or data["rng"].get("bit_generator") != "PCG64":
                raise StateError("transform.rng: expected a PCG64 state")
            transform._rng.bit_generator.state = data["rng"]
        except (InvalidArgument, TypeError, ValueError, KeyError) as exc:
            raise StateError(f"transform: {exc}") from None
        return transform


@dataclasses.dataclass
class Detection:
    """A detector's alarm: the loss level rose."""

    detector: str
    sample: int  # 1-based index of the sample in the monitored stream
    level_before: float
    level_after: float
    #: The level while errors behave as on the reference.
    null_level: float = 0.5

    def describe(self) -> str:
        # level_before is the detector's own estimate before the change (after an
        # earlier rise it may already be high); level_after is the mean of the
        # samples after it: ADWIN's window after its cut, or Page–Hinkley's
        # fresh samples.
        where = (
            "the newest samples confirming ADWIN's cut (at it, or samples after the detection)"
            if self.detector == ADWIN
            else f"the {JUDGED_SAMPLES} samples after the detection"
        )
        return (
            f"{self.detector} at sample {self.sample}: mean scaled error level "
            f"{self.level_after:.3f} over {where} "
            f"({self.null_level:.3f} while errors behave as on holdout; {self.level_before:.3f} before it)"
        )


class ErrorStreamMonitor:
    """ADWIN and Page–Hinkley on one model version's stream of losses."""

    #: Sum of every u fed: the engine reads the stream's level from it.
    level_total = 0.0

    def __init__(
        self, settings: DetectorSettings | None = None, reference_errors: np.ndarray | None = None, seed: int = 0
    ):
        self.settings = settings or DetectorSettings()
        self._seed = seed
        self._transform = None if reference_errors is None else LossTransform(np.abs(reference_errors), seed)
        self._warmup: list[np.ndarray] = []
        # The newest scaled losses, to judge the level after an ADWIN cut.
        self._recent: deque[float] = deque(maxlen=JUDGED_SAMPLES)
        self.samples = 0
        self.level_drops = 0
        self.below_floor = 0
        # Detections being confirmed: detector -> [sum of the scaled losses since, samples since, level before].
        self._confirming: dict[str, list] = {}
        self._adwin = river_drift.ADWIN(delta=self.settings.adwin_delta, clock=self.settings.adwin_clock)
        self._ph = self._new_page_hinkley()
        if self._transform is not None:
            self._prime()

    def _prime(self) -> None:
        """Feed a fresh Page–Hinkley the reference's own losses, as the stream
        before the served one (neither counted nor judged), so a rise is a
        rise over the holdout whenever the stream starts."""
        reference = self._transform.reference
        if reference.size > PRIME_SAMPLES:
            reference = reference[np.linspace(0, reference.size - 1, PRIME_SAMPLES).round().astype(int)]
        reference = np.random.default_rng(self._seed).permutation(reference)
        # The reference is one population: an alarm within it (rare noise)
        # restarts Page–Hinkley, as if it had not been primed.
        for u in self._transform(reference).tolist():
            if self._ph.update(u):
                self._ph = self._new_page_hinkley()

    def _new_page_hinkley(self) -> PageHinkley:
        s = self.settings
        return PageHinkley(s.ph_min_instances, s.ph_delta, s.ph_threshold)

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": dataclasses.asdict(self.settings),
            "seed": self._seed,
            "transform": None if self._transform is None else self._transform.to_dict(),
            "warmup": floats_to_text(np.concatenate(self._warmup) if self._warmup else np.zeros(0)),
            "samples": self.samples,
            "level_drops": self.level_drops,
            "below_floor": self.below_floor,
            "recent": floats_to_text(np.array(self._recent, dtype=float)),
            "level_total": self.level_total,
            "confirming": {d: list(p) for d, p in self._confirming.items()},
            "adwin": _adwin_to_dict(self._adwin),
            "page_hinkley": self._ph.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, settings: DetectorSettings | None = None) -> ErrorStreamMonitor:
        """The monitor as saved. With other detector `settings` than it was
        saved with, the detectors start afresh under the new ones (the
        transform, counts and detections being confirmed are kept)."""
        fields = (
            "settings",
            "seed",
            "transform",
            "warmup",
            "samples",
            "level_drops",
            "below_floor",
            "level_total",
            "confirming",
            "adwin",
            "page_hinkley",
        )
        data = require(data, fields, "monitor")
        settings = settings or DetectorSettings()
        monitor = cls(settings, seed=integer(data["seed"], "monitor.seed"))
        monitor._transform = None if data["transform"] is None else LossTransform.from_dict(data["transform"])
        warmup = text_to_floats(data["warmup"], "monitor.warmup")
        monitor._warmup = [warmup] if warmup.size else []
        monitor.samples = integer(data["samples"], "monitor.samples")
        monitor.level_drops = integer(data["level_drops"], "monitor.level_drops")
        monitor.below_floor = integer(data["below_floor"], "monitor.below_floor")
        # A monitor saved before the newest losses were kept has none: its
        # next ADWIN cut is judged on the samples after it.
        if "recent" in data:
            monitor._recent.extend(text_to_floats(data["recent"], "monitor.recent").tolist())
        monitor.level_total = number(data["level_total"], "monitor.level_total")
        confirming = data["confirming"]
        if not isinstance(confirming, dict) or not set(confirming) <= set(DETECTORS):
            raise StateError("monitor.confirming: expected detections by detector")
        for detector, (total, count, level_before) in _triples(confirming):
            monitor._confirming[detector] = [
                number(total, "monitor.confirming"),
                integer(count, "monitor.confirming"),
                number(level_before, "monitor.confirming"),
            ]
        if data["settings"] == dataclasses.asdict(settings):
            monitor._adwin = _adwin_from_dict(data["adwin"], settings) or monitor._adwin
            monitor._ph = PageHinkley.from_dict(data["page_hinkley"], settings)
        else:
            if monitor._transform is not None:
                monitor._prime()
            log.warning(
                "detector settings changed: the detectors start afresh",
                saved=data["settings"],
                now=dataclasses.asdict(settings),
            )
        return monitor

    @property
    def reference_losses(self) -> np.ndarray | None:
        """The losses served losses are judged against (sorted), None while warming up."""
        return None if self._transform is None else self._transform.reference

    @property
    def warming_up(self) -> bool:
        return self._transform is None

    def state(self) -> dict[str, float]:
        """Gauges for operators: the detectors' current levels and window."""
        return {
            "samples": float(self.samples),
            "adwin_width": float(self._adwin.width),
            "adwin_level": float(self._adwin.estimation),
            "page_hinkley_level": float(self._ph.level_since_change),
            "detections_below_floor": float(self.below_floor),
            "warming_up": float(self.warming_up),
        }

    def update(self, losses: np.ndarray) -> list[Detection]:
        """Feed a batch of losses (non-negative; non-finite ones are skipped)."""
        losses = np.asarray(losses, dtype=float)
        losses = losses[np.isfinite(losses)]
        if self._transform is None:
            self._warmup.append(losses)
            collected = np.concatenate(self._warmup)
            if collected.size < self.settings.warmup:
                return []
            self._transform = LossTransform(collected[: self.settings.warmup], self._seed)
            self._warmup = []
            self._prime()
            losses = collected[self.settings.warmup :]
        return list(self._feed(self._transform(losses), self._transform.scaled(losses)))

    @property
    def null_level(self) -> float:
        """The level of the scaled losses while errors behave as on the
        reference: 0.5 for continuous losses, the error rate for 0/1 losses."""
        return 0.5 if self._transform is None else float(self._transform.null_level)

    @property
    def floor(self) -> float:
        """The level of the scaled losses an alarm must reach: the null level
        plus the effect floor, `min_rise` in units of the uniform's spread
        (for continuous losses min_rise itself; for 0/1 losses at error rate
        p, min_rise * sqrt(12 p (1 - p)): a rise as large against its noise)."""
        spread = 1.0 if self._transform is None else self._transform.null_std * 12**0.5
        return self.null_level + self.settings.min_rise * (spread or 1.0)

    def _recent_level_clears(self, floor: float) -> float | None:
        """The mean of the newest samples when it is above the floor beyond
        doubt (RECENT_Z standard errors, for the most convincing of the newest
        32, 64, ... samples; the spread bounded by that of a 0/1 variable at
        the floor); None otherwise."""
        if len(self._recent) < 32:
            return None
        newest = np.fromiter(reversed(self._recent), dtype=float)
        lengths = np.arange(32, newest.size + 1, 32)
        means = np.cumsum(newest)[lengths - 1] / lengths
        z = (means - floor) * np.sqrt(lengths) / np.sqrt(floor * (1.0 - floor))
        best = int(np.argmax(z))
        return float(means[best]) if z[best] >= RECENT_Z else None

    def _feed(self, uniforms: np.ndarray, scaled: np.ndarray) -> Iterator[Detection]:
        floor = self.floor
        self.level_total += float(scaled.sum())
        for u, v in zip(uniforms.tolist(), scaled.tolist(), strict=True):
            self.samples += 1
            self._recent.append(v)
            for pending in self._confirming.values():
                pending[0] += v
                pending[1] += 1
            # ADWIN on the scaled losses (a 0/1 loss is fed as itself, as a
            # plain ADWIN is): an alarm as soon as the newest samples clear
            # the floor beyond doubt, at the cut itself or within
            # ADWIN_PENDING_SAMPLES after it. (The window ADWIN keeps after a cut
            # still holds samples from before the change: its mean lags, and
            # on correlated real errors it crosses the floor by chance.)
            before = self._adwin.estimation
            self._adwin.update(v)
            if self._adwin.drift_detected:
                if self._adwin.estimation <= before:
                    self.level_drops += 1
                    self._confirming.pop(ADWIN, None)
                else:
                    self._confirming.setdefault(ADWIN, [0.0, 0, before])
            pending = self._confirming.get(ADWIN)
            if pending is not None:
                recent = self._recent_level_clears(floor)
                if recent is not None:
                    del self._confirming[ADWIN]
                    yield Detection(ADWIN, self.samples, pending[2], recent, self.null_level)
                elif pending[1] >= ADWIN_PENDING_SAMPLES:
                    del self._confirming[ADWIN]
                    self.below_floor += 1
            # Page–Hinkley on the uniform u, where its calibration holds; its
            # detections are confirmed by the samples after them (below).
            if self._ph.update(u):
                self._confirming.setdefault(PAGE_HINKLEY, [0.0, 0, self._ph_level_before()])
                self._ph = self._new_page_hinkley()
            # A Page–Hinkley detection becomes an alarm when the samples after
            # it confirm the rise: their mean is above the floor. Without it
            # Page–Hinkley alone would exceed the target false-alarm rate on
            # skewed losses; ADWIN, faster, needs no such wait.
            for detector in [d for d, p in self._confirming.items() if d != ADWIN and p[1] >= JUDGED_SAMPLES]:
                total, count, level_before = self._confirming.pop(detector)
                if total / count >= floor:
                    yield Detection(detector, self.samples, level_before, total / count, self.null_level)
                else:
                    self.below_floor += 1

    def _ph_level_before(self) -> float:
        """Page–Hinkley's level before its change point, on the scaled losses'
        scale (its own runs on u, whose mean equals the mid-transform's)."""
        return float(self._transform._scale(self._ph.mean_before_change)) if self._transform else 0.5


#: Reference losses (at most; quantiles of larger references) the detectors are primed with.
PRIME_SAMPLES = 2048
#: Samples after a detection whose mean confirms it against the floor.
JUDGED_SAMPLES = 1000
#: Samples after an ADWIN cut within which the newest samples may confirm it.
ADWIN_PENDING_SAMPLES = 5000
#: Standard errors by which the newest samples' mean must clear the floor to
#: confirm an ADWIN cut at once.
RECENT_Z = 3.0


class PageHinkley:
    """The one-sided Page–Hinkley test for a rise of the mean (Page, 1954),
    as river.drift.PageHinkley(alpha=1, mode="up") computes it, plus the
    estimated change point: the sample where the cumulative sum was lowest,
    and the mean before and since it (to judge an alarm's size)."""

    def __init__(self, min_instances: int, delta: float, threshold: float):
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.count = 0
        self.mean = 0.0
        self.cumulative = 0.0
        self.minimum = float("inf")
        self._total = 0.0
        self._total_at_minimum = 0.0
        self._count_at_minimum = 0

    def update(self, x: float) -> bool:
        """Add a sample; True when the mean has risen beyond the threshold."""
        self.count += 1
        self._total += x
        self.mean += (x - self.mean) / self.count
        self.cumulative += x - self.mean - self.delta
        if self.cumulative < self.minimum:
            self.minimum = self.cumulative
            self._total_at_minimum, self._count_at_minimum = self._total, self.count
        return self.count >= self.min_instances and self.cumulative - self.minimum > self.threshold

    @property
    def level_since_change(self) -> float:
        since = self.count - self._count_at_minimum
        return (self._total - self._total_at_minimum) / since if since else self.mean

    @property
    def mean_before_change(self) -> float:
        return self._total_at_minimum / self._count_at_minimum if self._count_at_minimum else self.mean

    def to_dict(self) -> dict[str, Any]:
        # Before its first sample the minimum is +inf, which JSON cannot hold: null.
        return {
            "count": self.count,
            "mean": self.mean,
            "cumulative": self.cumulative,
            "minimum": None if self.minimum == float("inf") else self.minimum,
            "total": self._total,
            "total_at_minimum": self._total_at_minimum,
            "count_at_minimum": self._count_at_minimum,
        }

    @classmethod
    def from_dict(cls, data: Any, settings: DetectorSettings) -> PageHinkley:
        data = require(
            data,
            ("count", "mean", "cumulative", "minimum", "total", "total_at_minimum", "count_at_minimum"),
            "page_hinkley",
        )
        ph = cls(settings.ph_min_instances, settings.ph_delta, settings.ph_threshold)
        ph.count = integer(data["count"], "page_hinkley.count")
        ph.mean = number(data["mean"], "page_hinkley.mean")
        ph.cumulative = number(data["cumulative"], "page_hinkley.cumulative")
        ph.minimum = float("inf") if data["minimum"] is None else number(data["minimum"], "page_hinkley.minimum")
        ph._total = number(data["total"], "page_hinkley.total")
        ph._total_at_minimum = number(data["total_at_minimum"], "page_hinkley.total_at_minimum")
        ph._count_at_minimum = integer(data["count_at_minimum"], "page_hinkley.count_at_minimum")
        return ph


def _triples(confirming: dict) -> Iterator[tuple[str, list]]:
    for detector, pending in confirming.items():
        if not isinstance(pending, list) or len(pending) != 3:
            raise StateError(f"monitor.confirming.{detector}: expected [sum, count, level before]")
        yield detector, pending


# river's ADWIN keeps its window in a Rust object whose only serialized form is
# its own binary encoding (__getstate__/__setstate__, what pickle would use). It
# is stored with river's version and a checksum: bytes from another river
# release or altered on disk are never handed to the Rust decoder (which
# aborts on garbage); such an ADWIN starts afresh, as it does after a detection.
def _adwin_to_dict(adwin: river_drift.ADWIN) -> dict[str, Any]:
    raw = adwin._helper.__getstate__()
    return {
        "river": river.__version__,
        "state": base64.b64encode(raw).decode("ascii"),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "drift_detected": bool(adwin.drift_detected),
    }


def _adwin_from_dict(data: Any, settings: DetectorSettings) -> river_drift.ADWIN | None:
    data = require(data, ("river", "state", "sha256", "drift_detected"), "adwin")
    if data["river"] != river.__version__:
        log.warning(
            "ADWIN saved by another river release starts afresh", saved=data["river"], installed=river.__version__
        )
        return None
    try:
        raw = base64.b64decode(data["state"], validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise StateError(f"adwin.state: not base64 ({exc})") from None
    if hashlib.sha256(raw).hexdigest() != data["sha256"]:
        raise StateError("adwin.state: checksum mismatch")
    adwin = river_drift.ADWIN(delta=settings.adwin_delta, clock=settings.adwin_clock)
    try:
        adwin._helper.__setstate__(raw)
    except BaseException as exc:  # pyo3's PanicException derives from BaseException
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        raise StateError(f"adwin.state: {exc}") from None
    adwin._drift_detected = bool(data["drift_detected"])
    return adwin
