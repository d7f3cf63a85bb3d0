"""The manifest of a model version: everything needed to serve, judge and
reproduce it, as one JSON document next to the model file."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from rxcast.runtime.errors import InvalidArgument

MANIFEST_FORMAT = "rxcast.model/1"


@dataclasses.dataclass(frozen=True)
class ModelManifest:
    """A model version's manifest.

    `categorical_levels[name]` lists the levels seen in training; a level's
    code is its index in that list, and values outside it are passed to the
    model as missing. `priors` holds the fallback forecasts for entities the
    model cannot judge (keys "global", "by_category", "by_store",
    "by_region"). `reference_profile` is the drift service's profile of the
    training features and predictions (rxcast.model.profile).
    """

    version: int
    feature_names: tuple[str, ...]
    categorical_levels: dict[str, tuple[str, ...]]
    horizon_days: int
    sha256: str = ""
    model_file: str = "model.txt"
    created_time: str = ""
    objective: str = ""
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    training_window: dict[str, str] = dataclasses.field(default_factory=dict)
    holdout_window: dict[str, str] = dataclasses.field(default_factory=dict)
    training_data_sha256: str = ""
    rows: dict[str, int] = dataclasses.field(default_factory=dict)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    priors: dict[str, Any] = dataclasses.field(default_factory=dict)
    entities_seen: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    library_versions: dict[str, str] = dataclasses.field(default_factory=dict)
    reason: str = ""
    reference_profile: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: How the shipped model was fitted: "holdout" (on the rows before the
    #: holdout's embargo) or "refit" (on every labelled row once the holdout
    #: judged the recipe), and the newest business day it learnt from.
    fit: dict[str, Any] = dataclasses.field(default_factory=dict)
    format: str = MANIFEST_FORMAT

    def __post_init__(self) -> None:
        if not self.feature_names:
            raise InvalidArgument("manifest: feature_names is empty")
        if len(set(self.feature_names)) != len(self.feature_names):
            raise InvalidArgument("manifest: feature_names has duplicates")
        unknown = set(self.categorical_levels) - set(self.feature_names)
        if unknown:
            raise InvalidArgument(f"manifest: categorical_levels names unknown features {sorted(unknown)}")
        if self.horizon_days <= 0:
            raise InvalidArgument(f"manifest: horizon_days must be > 0, got {self.horizon_days}")

    @property
    def categorical_features(self) -> tuple[str, ...]:
        """Categorical features, in model input order."""
        return tuple(n for n in self.feature_names if n in self.categorical_levels)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelManifest:
        if data.get("format") != MANIFEST_FORMAT:
            raise InvalidArgument(f"manifest: format {data.get('format')!r} is not {MANIFEST_FORMAT!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["feature_names"] = tuple(values.get("feature_names", ()))
        values["categorical_levels"] = {k: tuple(v) for k, v in values.get("categorical_levels", {}).items()}
        values["entities_seen"] = {k: tuple(v) for k, v in values.get("entities_seen", {}).items()}
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> ModelManifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"manifest: not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def with_updates(self, **changes: Any) -> ModelManifest:
        return dataclasses.replace(self, **changes)
