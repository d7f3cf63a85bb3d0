"""Training parameters: defaults, validation, and the LightGBM parameter dict.

Every parameter is checked here, naming the parameter on failure, so that a
bad request is refused when the job is started rather than failing later in
a worker. LightGBM then validates the whole set once on a tiny matrix, which
catches what only it knows (value types of `extra`, ranges of its own knobs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, get_args

import lightgbm as lgb
import numpy as np

from rxcast.runtime.errors import InvalidArgument
from rxcast.runtime.validation import quote

#: Objectives that suit non-negative counts (or at least do not assume
#: positivity); gamma and the like reject the many zero-demand rows.
Objective = Literal["tweedie", "poisson", "regression", "regression_l1", "huber"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)

#: Parameters the trainer sets itself, or that would make LightGBM read or
#: write files or leave the machine; `extra` may not name them (or aliases).
RESERVED = frozenset(
    {
        "task", "data", "valid", "input_model", "output_model", "output_result", "save_binary",
        "categorical_feature", "label_column", "weight_column", "group_column", "ignore_column",
        "machine_list_filename", "machines", "num_machines", "local_listen_port", "device_type",
        "num_iterations", "learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction",
        "objective", "seed", "num_threads", "deterministic", "verbosity", "header", "forcedsplits_filename",
        "forcedbins_filename", "config", "snapshot_freq", "convert_model", "convert_model_language",
    }
)  # fmt: skip


def _aliases() -> dict[str, str]:
    """Every LightGBM parameter name and alias → its canonical name."""
    try:
        table = lgb.basic._ConfigAliases._get_all_param_aliases()
    except AttributeError:  # a LightGBM without the table: accept names as given
        return {}
    return {alias: name for name, aliases in table.items() for alias in (name, *aliases)}


_ALIASES = _aliases()


@dataclasses.dataclass(frozen=True)
class TrainingParams:
    """A training job's parameters, with the trainer's defaults."""

    num_boost_round: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 63
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.9
    objective: str = "tweedie"
    seed: int = 42
    holdout_days: int = 14
    extra: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        def check(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise InvalidArgument(f"params.{name}: must be {rule}, got {getattr(self, name)!r}")

        check(0 < self.num_boost_round <= 100_000, "num_boost_round", "in 1..100000")
        check(0.0 < self.learning_rate <= 1.0, "learning_rate", "in (0, 1]")
        check(2 <= self.num_leaves <= 131_072, "num_leaves", "in 2..131072")
        check(self.min_data_in_leaf >= 1, "min_data_in_leaf", ">= 1")
        check(0.0 < self.feature_fraction <= 1.0, "feature_fraction", "in (0, 1]")
        check(self.objective in OBJECTIVES, "objective", f"one of {', '.join(OBJECTIVES)}")
        check(1 <= self.holdout_days <= 366, "holdout_days", "in 1..366")
        for key in self.extra:
            canonical = _ALIASES.get(key, key)
            if _ALIASES and key not in _ALIASES:
                raise InvalidArgument(f"params.extra[{quote(key)}]: not a LightGBM parameter")
            if canonical in RESERVED:
                raise InvalidArgument(
                    f"params.extra[{quote(key)}]: set by the trainer or by a field of params, not through extra"
                )

    def with_overrides(self, overrides: Mapping[str, Any]) -> TrainingParams:
        """These defaults with the given fields replaced (validated again)."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InvalidArgument(f"params: unknown fields {sorted(unknown)}")
        return dataclasses.replace(self, **overrides)

    def lightgbm_params(self, num_threads: int) -> dict[str, Any]:
        """The parameter dict for `lightgbm.train` (rounds are passed apart)."""
        params: dict[str, Any] = {
            "objective": self.objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "seed": self.seed,
            # Same data and seed give the same model, byte for byte.
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": num_threads,
            "verbosity": -1,
        }
        if self.objective == "tweedie":
            params["tweedie_variance_power"] = 1.2
        params.update(self.extra)
        return params

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _lightgbm_error(params: TrainingParams) -> str | None:
    """LightGBM's complaint about a parameter set, tried on a tiny matrix."""
    rng = np.random.default_rng(0)
    matrix = rng.random((32, 2))
    labels = rng.poisson(2.0, 32).astype(np.float64)
    lgb_params = params.lightgbm_params(num_threads=1)
    try:
        dataset = lgb.Dataset(matrix, labels, params=lgb_params, free_raw_data=True)
        lgb.train(lgb_params, dataset, num_boost_round=1)
    except (lgb.basic.LightGBMError, TypeError, ValueError) as exc:
        return str(exc).splitlines()[0]
    return None


def validate_with_lightgbm(params: TrainingParams) -> None:
    """Let LightGBM check the whole parameter set; name the `extra` entry at fault."""
    message = _lightgbm_error(params)
    if message is None:
        return
    # LightGBM's messages do not always name the parameter: find it by trying
    # each extra entry alone.
    for key, value in params.extra.items():
        alone = _lightgbm_error(dataclasses.replace(params, extra={key: value}))
        if alone is not None:
            raise InvalidArgument(f"params.extra[{quote(key)}]: {value!r} rejected by LightGBM: {alone}")
    raise InvalidArgument(f"params: rejected by LightGBM: {message}")
