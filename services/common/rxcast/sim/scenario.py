"""What to simulate: the size of the chain, the calendar, the seed and the drift
events, as plain data that round-trips through JSON or YAML."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rxcast.runtime.errors import InvalidArgument
from rxcast.sim.catalog import CATEGORIES, FLAG_FIELDS, NUMERIC_FIELDS, REGIONS


def _integer(lo: int | None = None, hi: int | None = None) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise InvalidArgument(f"{name}: must be an integer, got {value!r}")
        value = int(value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise InvalidArgument(f"{name}: must be in [{lo}, {hi if hi is not None else 'inf'}], got {value}")
        return value

    return check


def _number(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Callable[[str, Any], float]:
    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidArgument(f"{name}: must be a finite number, got {value!r}")
        value = float(value)
        if lo is not None and (value <= lo if lo_open else value < lo):
            raise InvalidArgument(f"{name}: must be {'>' if lo_open else '>='} {lo}, got {value}")
        if hi is not None and value > hi:
            raise InvalidArgument(f"{name}: must be <= {hi}, got {value}")
        return value

    return check


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: None if value is None else check(name, value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{name}: must be a non-empty string, got {value!r}")
    return value.strip()


def _one_of(*choices: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in choices:
            raise InvalidArgument(f"{name}: must be one of {', '.join(choices)}; got {value!r}")
        return value

    return check


def _text_list(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise InvalidArgument(f"{name}: must be a non-empty list of strings, got {value!r}")
    return tuple(_text(f"{name}[{i}]", v) for i, v in enumerate(value))


def _multipliers(name: str, value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{name}: must be a mapping of category to multiplier, got {value!r}")
    positive = _number(0.0, lo_open=True)
    return {_text(f"{name} key", k): positive(f"{name}[{k}]", v) for k, v in value.items()}


def _weekly(name: str, value: Any) -> tuple[float, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or len(value) != 7:
        raise InvalidArgument(f"{name}: must be 7 day-of-week multipliers (Monday first), got {value!r}")
    positive = _number(0.0, lo_open=True)
    return tuple(positive(f"{name}[{i}]", v) for i, v in enumerate(value))


def _record_value(name: str, value: Any) -> float | bool:
    if isinstance(value, bool):
        return value
    return _number()(name, value)


# Per drift kind: parameter -> (default, check). The checks return the normalized value.
_PARAMS: dict[str, dict[str, tuple[Any, Callable[[str, Any], Any]]]] = {
    "new_medication": {
        "n": (5, _integer(1)),
        # None: spread over the existing categories; a name not in the catalogue
        # opens a brand-new category.
        "category": (None, _optional(_text)),
        "popularity_scale": (1.0, _number(0.0, lo_open=True)),
        "adoption_days": (28, _integer(1)),
    },
    "demand_shock": {
        "multiplier": (2.0, _number(0.0, lo_open=True)),
        "categories": (None, _optional(_text_list)),
        "regions": (None, _optional(_text_list)),
        "ramp_days": (14, _integer(0)),
        # None: the shock persists to the end of the scenario.
        "duration_days": (None, _optional(_integer(1))),
    },
    "new_region": {
        "region": ("coastal", _text),
        "n_stores": (6, _integer(1)),
        "demand_scale": (1.3, _number(0.0, lo_open=True)),
        "price_factor": (1.08, _number(0.0, lo_open=True)),
        "category_multipliers": (
            {"allergy": 1.8, "dermatology": 1.8, "cardiovascular": 1.4, "respiratory": 0.6, "antiviral": 0.6},
            _multipliers,
        ),
        "flu_peak_day_of_year": (80, _integer(1, 366)),
        "allergy_peak_day_of_year": (100, _integer(1, 366)),
        # A holiday region: busy weekends.
        "weekly_pattern": ((0.85, 0.85, 0.9, 0.95, 1.15, 1.4, 1.1), _weekly),
    },
    "unit_change": {
        "field": ("units_on_hand", _one_of(*NUMERIC_FIELDS)),
        "factor": (10.0, _number(0.0, lo_open=True)),
        # None: every store's app reports in the new unit.
        "stores": (None, _optional(_text_list)),
    },
    "missing_values": {
        "field": ("prescriptions_written", _one_of(*NUMERIC_FIELDS)),
        "rate": (0.3, _number(0.0, 1.0, lo_open=True)),
    },
    "constant_column": {
        "field": ("unit_price", _one_of(*NUMERIC_FIELDS, *FLAG_FIELDS)),
        # None: the field's fallback value (1.0 for unit_price, 0 for counts, false for flags).
        "value": (None, _optional(_record_value)),
    },
    "concept_change": {
        # decouple_prescriptions: prescriptions written stop telling which way
        # dispensing goes (their level and spread stay the same);
        # promotion_effect: promotions still run, discounts still show, but
        # demand no longer answers them as before.
        "mode": ("decouple_prescriptions", _one_of("decouple_prescriptions", "promotion_effect")),
        "strength": (1.0, _number(0.0, 1.0, lo_open=True)),
        "promo_lift": (1.0, _number(0.0, lo_open=True)),
        "categories": (None, _optional(_text_list)),
    },
}

DRIFT_KINDS: tuple[str, ...] = tuple(_PARAMS)


def drift_kind_defaults() -> dict[str, dict[str, Any]]:
    """Each drift kind's parameters with their default values."""
    return {kind: {name: plain_data(default) for name, (default, _) in spec.items()} for kind, spec in _PARAMS.items()}


CONSTANT_FALLBACK: dict[str, float | bool] = {
    "unit_price": 1.0,
    "units_dispensed": 0.0,
    "units_received": 0.0,
    "units_on_hand": 0.0,
    "prescriptions_written": 0.0,
    "on_promotion": False,
    "stock_out": False,
}


def parse_day(value: Any, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidArgument(f"{name}: must be a day as YYYY-MM-DD, got {value!r}") from None


@dataclass(frozen=True)
class DriftEvent:
    """One injected change. `day` is the day index from the scenario's start
    (0-based) or a "YYYY-MM-DD" string; the change applies from that day on."""

    kind: str
    day: int | str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Plain lists and dicts, so events compare equal however they were built or read.
        if isinstance(self.params, Mapping):
            object.__setattr__(self, "params", plain_data(self.params))

    def __hash__(self) -> int:
        return hash((self.kind, self.day, json.dumps(self.params, sort_keys=True, default=str)))

    def resolved_params(self, where: str = "event") -> dict[str, Any]:
        """The parameters with defaults filled in and values checked."""
        if self.kind not in _PARAMS:
            raise InvalidArgument(f"{where}.kind: must be one of {', '.join(DRIFT_KINDS)}; got {self.kind!r}")
        spec = _PARAMS[self.kind]
        if not isinstance(self.params, Mapping):
            raise InvalidArgument(f"{where}.params: must be a mapping, got {self.params!r}")
        unknown = sorted(set(self.params) - set(spec))
        if unknown:
            raise InvalidArgument(
                f"{where}.params: unknown parameter(s) {', '.join(unknown)} for {self.kind}; known: {', '.join(spec)}"
            )
        resolved = {}
        for name, (default, check) in spec.items():
            value = self.params.get(name, default)
            resolved[name] = check(f"{where}.params.{name}", value) if value is not None else None
        return resolved

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "day": self.day, "params": plain_data(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftEvent:
        if not isinstance(data, Mapping):
            raise InvalidArgument(f"event: must be a mapping with kind, day and params, got {data!r}")
        unknown = sorted(set(data) - {"kind", "day", "params"})
        if unknown:
            raise InvalidArgument(f"event: unknown key(s) {', '.join(unknown)}")
        for key in ("kind", "day"):
            if key not in data:
                raise InvalidArgument(f"event.{key}: required")
        return cls(kind=data["kind"], day=data["day"], params=dict(data.get("params") or {}))

    @classmethod
    def parse(cls, text: str) -> DriftEvent:
        """Parse `kind@day` or `kind@day:name=value,name=value` (values in YAML
        flow syntax, e.g. `demand_shock@400:multiplier=2.5,categories=[antiviral]`)."""
        import yaml

        head, _, tail = text.partition(":")
        kind, at, day = head.partition("@")
        if not at or not kind or not day:
            raise InvalidArgument(f"event: expected kind@day[:name=value,...], got {text!r}")
        day_value: int | str = int(day) if day.strip().lstrip("-").isdigit() else day.strip()
        params: dict[str, Any] = {}
        for item in _split_top_level(tail) if tail else []:
            name, eq, value = item.partition("=")
            if not eq or not name.strip():
                raise InvalidArgument(f"event {text!r}: expected name=value, got {item!r}")
            try:
                params[name.strip()] = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise InvalidArgument(f"event {text!r}: cannot read the value of {name.strip()}: {exc}") from None
        return cls(kind=kind.strip(), day=day_value, params=params)


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets or braces."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def plain_data(value: Any) -> Any:
    """Tuples to lists and mappings to dicts, so JSON and YAML dumps are plain."""
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    return value


@dataclass(frozen=True)
class Scenario:
    """A pharmacy world to simulate. Every day from `start_day` on is a
    business day (pharmacies open daily). `history_days` marks how many of the
    `n_days` count as history (the rest is "to play", e.g. in a demo); None
    means all of them."""

    n_stores: int = 30
    n_medications: int = 100
    start_day: str = "2025-01-01"
    n_days: int = 485
    seed: int = 7
    events: tuple[DriftEvent, ...] = ()
    history_days: int | None = None

    def __post_init__(self) -> None:
        _integer(1)("scenario.n_stores", self.n_stores)
        _integer(1)("scenario.n_medications", self.n_medications)
        _integer(8)("scenario.n_days", self.n_days)
        _integer(0, 2**63 - 1)("scenario.seed", self.seed)
        start = parse_day(self.start_day, "scenario.start_day")
        object.__setattr__(self, "start_day", start.isoformat())
        if self.history_days is not None:
            _integer(1, self.n_days)("scenario.history_days", self.history_days)
        events = tuple(e if isinstance(e, DriftEvent) else DriftEvent.from_dict(e) for e in self.events)
        object.__setattr__(self, "events", tuple(self._resolve_day(i, e) for i, e in enumerate(events)))
        self._check_names()

    def _resolve_day(self, index: int, event: DriftEvent) -> DriftEvent:
        where = f"scenario.events[{index}]"
        day = event.day
        if isinstance(day, str) and not day.lstrip("-").isdigit():
            day = (parse_day(day, f"{where}.day") - dt.date.fromisoformat(self.start_day)).days
        day = _integer()(f"{where}.day", int(day) if isinstance(day, str) else day)
        if not 0 <= day < self.n_days:
            raise InvalidArgument(f"{where}.day: must fall inside the scenario's {self.n_days} days, got {day}")
        event.resolved_params(where)
        return replace(event, day=day)

    def _check_names(self) -> None:
        """Categories and regions named by events must exist by then or be created by an event."""
        categories = set(CATEGORIES)
        regions = {r.name for r in REGIONS}
        for i, event in enumerate(self.events):
            params = event.resolved_params()
            where = f"scenario.events[{i}].params"
            if event.kind == "new_medication" and params["category"]:
                categories.add(params["category"])
            if event.kind == "new_region":
                if params["region"] in regions:
                    raise InvalidArgument(f"{where}.region: region {params['region']!r} exists already")
                regions.add(params["region"])
        for i, event in enumerate(self.events):
            params = event.resolved_params()
            where = f"scenario.events[{i}].params"
            for key, known in (("categories", categories), ("regions", regions)):
                unknown = sorted(set(params.get(key) or ()) - known)
                if unknown:
                    raise InvalidArgument(f"{where}.{key}: unknown {key} {', '.join(unknown)}")

    @property
    def days_to_play(self) -> int:
        return self.n_days - (self.history_days or self.n_days)

    def with_events(self, *events: DriftEvent) -> Scenario:
        """This scenario with more events."""
        return replace(self, events=(*self.events, *events))

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_stores": self.n_stores,
            "n_medications": self.n_medications,
            "start_day": self.start_day,
            "n_days": self.n_days,
            "seed": self.seed,
            "history_days": self.history_days,
            "events": [e.to_dict() for e in self.events],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        if not isinstance(data, Mapping):
            raise InvalidArgument(f"scenario: must be a mapping, got {type(data).__name__}")
        known = {"n_stores", "n_medications", "start_day", "n_days", "seed", "history_days", "events"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgument(f"scenario: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        events = data.get("events") or []
        if not isinstance(events, list | tuple):
            raise InvalidArgument(f"scenario.events: must be a list, got {events!r}")
        fields = {k: v for k, v in data.items() if k != "events"}
        return cls(**fields, events=tuple(DriftEvent.from_dict(e) for e in events))

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Scenario:
        return cls.from_dict(json.loads(text))

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> Scenario:
        """Read YAML (which also reads JSON)."""
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"scenario: not valid YAML or JSON: {exc}") from None
        return cls.from_dict(data)


def default_scenario(seed: int = 7, events: tuple[DriftEvent, ...] | list[DriftEvent] = ()) -> Scenario:
    """The small world the demo and tests use: 30 stores, 100 medications, a
    year of history and 120 days to play, from 2025-01-01; runs in seconds."""
    return Scenario(
        n_stores=30,
        n_medications=100,
        start_day="2025-01-01",
        n_days=365 + 120,
        seed=seed,
        events=tuple(events),
        history_days=365,
    )
